"""Changesets: every bulk change recorded row by row, previewed before it is made, undone after.

A bulk operation (an import, an API batch, a merge, a reassign, a bulk admin
action) runs inside::

    with changesets.recording("import", user=user, label="customers.xlsx", source={...}) as cs:
        ...  # saves and deletes as usual

and every history entry written inside the block (``core/history.py``: single
saves and deletes, deletions batched with their cascade, ``bulk_history_create``,
``delete_with_history``) becomes a :class:`ChangesetRow` of ``cs`` with the
record's values before and after. An operation that writes only through saves and
deletes that leave history is therefore recorded, and undoable, with no code of
its own; a bare ``QuerySet.update()`` is not (it leaves no history either).

A log that a record's save writes beside it, without history of its own (a deal's
stage log), is recorded too when its foreign key to the record says so
(``on_delete=LOG_CASCADE``): its rows created, and deleted by a cascade or by
:func:`log_rows_deleted`, are rows of the changeset, and an undo puts the log back
as it was, following its record (skipped with it; the record's restoring save writes
no entry of its own, :func:`restores_log`).

The rows are written as the history is, in the same transaction and savepoints:
an item of a batch that rolls back takes its rows with it. With ``dry_run=True``
the block runs the same way inside a savepoint that is rolled back at the end;
``cs`` is then unsaved and ``cs.preview`` holds the rows it would have had.

:func:`undo` puts the previous state back through the models' own saves and
deletes (so history, events and search indexes follow), itself recorded as a
changeset of kind ``undo``: undoing that one redoes the first. A change of more than
records (a custom field's type, with its values converted) declares what its undo does
besides (:func:`undo_step`).
"""

import datetime
import decimal
import uuid
from contextlib import contextmanager
from contextvars import ContextVar

from django.conf import settings
from django.db import IntegrityError, models, transaction
from django.db.models import CASCADE, Count
from django.db.models.fields import DateField, DateTimeField
from django.db.models.signals import post_save
from django.utils import timezone
from django.utils.translation import gettext_lazy as _

from core.rowlocks import locking

KINDS = ("import", "batch", "merge", "reassign", "action", "undo")
CREATED, UPDATED, DELETED = "created", "updated", "deleted"
_HISTORY_OPS = {"+": CREATED, "~": UPDATED, "-": DELETED}

_active = ContextVar("changeset_recording", default=None)


class Changeset(models.Model):
    """One bulk change: who, when, from what, and how many records of each kind it touched."""

    class Kind(models.TextChoices):
        IMPORT = "import", _("import")
        BATCH = "batch", _("API batch")
        MERGE = "merge", _("merge")
        REASSIGN = "reassign", _("reassign")
        ACTION = "action", _("bulk action")
        UNDO = "undo", _("undo")

    class Status(models.TextChoices):
        APPLIED = "applied", _("applied")
        UNDONE = "undone", _("undone")

    kind = models.CharField(_("kind"), max_length=16, choices=Kind.choices)
    label = models.CharField(_("label"), max_length=200, blank=True, default="")
    user = models.ForeignKey(
        settings.AUTH_USER_MODEL,
        verbose_name=_("user"),
        on_delete=models.SET_NULL,
        null=True,
        blank=True,
        related_name="changesets",
    )
    created_at = models.DateTimeField(_("created at"), default=timezone.now)
    # Where the change came from: file name and sha256, request id, action name...
    source = models.JSONField(_("source"), default=dict, blank=True)
    # {"customers.customer": {"created": 2, "updated": 5, "deleted": 0}, ...}
    counts = models.JSONField(_("counts"), default=dict, blank=True)
    status = models.CharField(_("status"), max_length=16, choices=Status.choices, default=Status.APPLIED)
    undoes = models.ForeignKey(
        "self",
        verbose_name=_("undoes"),
        on_delete=models.SET_NULL,
        null=True,
        blank=True,
        related_name="undone_by_changesets",
    )
    undone_by = models.ForeignKey(
        settings.AUTH_USER_MODEL,
        verbose_name=_("undone by"),
        on_delete=models.SET_NULL,
        null=True,
        blank=True,
        related_name="+",
    )
    undone_at = models.DateTimeField(_("undone at"), null=True, blank=True)

    class Meta:
        app_label = "core"
        ordering = ["-created_at", "-id"]
        verbose_name = _("changeset")
        verbose_name_plural = _("changesets")
        indexes = [models.Index(fields=["user", "-created_at"], name="changeset_user_created_idx")]

    def __str__(self):
        return f"#{self.pk} {self.get_kind_display()}" + (f": {self.label}" if self.label else "")

    @property
    def total(self):
        return sum(sum(ops.values()) for ops in (self.counts or {}).values())


class ChangesetRow(models.Model):
    """One record created, updated or deleted by a changeset, with its values before and after.

    An update holds only the fields it changed; a creation its values after, a
    deletion its values before (all the tracked fields). ``history_id`` is the
    history entry the change wrote: a record whose latest entry is another has
    changed since, and its undo is a conflict.
    """

    class Op(models.TextChoices):
        CREATED = CREATED, _("created")
        UPDATED = UPDATED, _("updated")
        DELETED = DELETED, _("deleted")

    changeset = models.ForeignKey(Changeset, verbose_name=_("changeset"), on_delete=models.CASCADE, related_name="rows")
    seq = models.PositiveIntegerField(_("order"))
    model = models.CharField(_("model"), max_length=100)
    object_id = models.BigIntegerField(_("object id"))
    op = models.CharField(_("change"), max_length=8, choices=Op.choices)
    before = models.JSONField(_("before"), null=True, blank=True)
    after = models.JSONField(_("after"), null=True, blank=True)
    history_id = models.BigIntegerField(_("history entry"), null=True, blank=True)
    name = models.CharField(_("record"), max_length=300, blank=True, default="")

    class Meta:
        app_label = "core"
        ordering = ["changeset", "seq"]
        verbose_name = _("changeset row")
        verbose_name_plural = _("changeset rows")
        constraints = [models.UniqueConstraint(fields=["changeset", "seq"], name="changeset_row_seq_unique")]

    def __str__(self):
        return f"{self.get_op_display()} {self.model} {self.object_id}"

    def changes(self):
        """[(field, before, after)] of the row, in the fields' order."""
        before, after = self.before or {}, self.after or {}
        names = list(before) + [name for name in after if name not in before]
        return [(name, before.get(name), after.get(name)) for name in names]


# -- values ------------------------------------------------------------------


def tracked_fields(model):
    """The fields of ``model`` its history keeps (and so a changeset records); all of a log's."""
    if model in LOGS:
        return model._meta.concrete_fields
    return model.history.model.tracked_fields


def _json(value):
    if isinstance(value, datetime.datetime | datetime.date | datetime.time):
        return value.isoformat()
    if isinstance(value, decimal.Decimal | uuid.UUID):
        return str(value)
    return value


def values_of(model, source, names=None):
    """{attname: JSON value} of the tracked fields of ``source`` (a record or a history entry)."""
    return {
        field.attname: _json(getattr(source, field.attname))
        for field in tracked_fields(model)
        if names is None or field.attname in names
    }


def python_values(model, values):
    """The values of a row (``values_of``) back as Python values of the model's fields."""
    fields = {field.attname: field for field in tracked_fields(model)}
    return {name: fields[name].to_python(value) for name, value in values.items() if name in fields}


def _name(instance):
    try:
        return str(instance)[:300]
    except Exception:  # noqa: BLE001 - a name is for display; a record that cannot name itself still counts
        return f"{type(instance).__name__} {instance.pk}"


def _model(label):
    from django.apps import apps

    return apps.get_model(label)


# -- recording ---------------------------------------------------------------


class _Recording:
    def __init__(self, changeset):
        self.changeset = changeset
        self.seq = 0

    def add(self, rows):
        if not rows:
            return
        for row in rows:
            self.seq += 1
            row.seq, row.changeset = self.seq, self.changeset
        if len(rows) == 1:
            rows[0].save(force_insert=True)
        else:
            ChangesetRow.objects.bulk_create(rows, batch_size=500)


def active():
    """The changeset being recorded now, or None."""
    state = _active.get()
    return state.changeset if state is not None else None


@contextmanager
def unrecorded():
    """Changes made inside the block are no rows of the changeset being recorded (their history and events are
    written all the same): for records a change writes beside the ones it is about, outside its user's book."""
    token = _active.set(None)
    try:
        yield
    finally:
        _active.reset(token)


class _DryRun(Exception):
    pass


@contextmanager
def recording(kind, *, user, label="", source=None, dry_run=False):
    """Record every change made inside the block as one changeset (see the module's docstring).

    Inside another recording the block joins it (the outer changeset is yielded).
    The changeset is saved with the block's writes, in its transaction; a block
    that changed nothing leaves none (``cs.pk`` is None).
    """
    if kind not in KINDS:
        raise ValueError(f"Unknown changeset kind {kind!r}; one of {', '.join(KINDS)}.")
    outer = _active.get()
    if outer is not None:
        yield outer.changeset
        return
    changeset = Changeset(
        kind=kind,
        user=user if user is not None and user.is_authenticated else None,
        label=(label or "")[:200],
        source=dict(source or {}),
    )
    changeset.dry_run = dry_run
    changeset.preview = None
    try:
        with transaction.atomic():
            changeset.save(force_insert=True)
            state = _Recording(changeset)
            token = _active.set(state)
            try:
                yield changeset
            finally:
                _active.reset(token)
            changeset.counts = _counts(changeset)
            if dry_run:
                changeset.preview = list(changeset.rows.order_by("seq"))
                raise _DryRun()
            if state.seq:
                changeset.save(update_fields=["counts"])
            else:
                changeset.delete()
                changeset.pk = None
    except _DryRun:
        changeset.pk = None
        for row in changeset.preview:
            row.pk = None
    except BaseException:
        # Rolled back with the block's writes.
        changeset.pk = None
        raise


def _counts(changeset):
    counts = {}
    rows = changeset.rows.order_by().values_list("model", "op").annotate(n=Count("*"))
    for model, op, n in rows:
        counts.setdefault(model, {CREATED: 0, UPDATED: 0, DELETED: 0})[op] = n
    return dict(sorted(counts.items()))


# -- the hooks (called by core.history) ---------------------------------------


def _row(model, pk, op, before, after, history_id, name):
    return ChangesetRow(
        model=model._meta.label_lower,
        object_id=pk,
        op=op,
        before=before,
        after=after,
        history_id=history_id,
        name=name,
    )


def _update_values(model, previous, current):
    """(before, after) of the fields that differ between two states (history entries or records)."""
    if previous is None or getattr(previous, "history_type", None) == "-":
        return None, values_of(model, current)
    before, after = values_of(model, previous), values_of(model, current)
    changed = [name for name in after if before.get(name) != after[name]]
    return {name: before[name] for name in changed}, {name: after[name] for name in changed}


def history_written(model, instance, record, previous=None):
    """A single save or delete wrote ``record`` (a history entry of ``instance``)."""
    state = _active.get()
    if state is None:
        return
    op = _HISTORY_OPS[record.history_type]
    if op == CREATED:
        before, after = None, values_of(model, record)
    elif op == DELETED:
        before, after = values_of(model, record), None
    else:
        before, after = _update_values(model, previous, record)
    pk = getattr(record, model._meta.pk.attname)  # a deleted instance has lost its own
    state.add([_row(model, pk, op, before, after, record.history_id, _name(instance))])


def history_bulk_written(model, instances, records, *, previous=None):
    """``bulk_history_create`` (or a batched deletion) wrote ``records`` for ``instances``."""
    state = _active.get()
    if state is None or not records:
        return
    rows = []
    for instance, record in zip(instances, records, strict=False):
        op = _HISTORY_OPS[record.history_type]
        if op == CREATED:
            before, after = None, values_of(model, record)
        elif op == DELETED:
            before, after = values_of(model, record), None
        else:
            before, after = _update_values(model, (previous or {}).get(getattr(record, model._meta.pk.attname)), record)
        pk = getattr(record, model._meta.pk.attname)
        rows.append(_row(model, pk, op, before, after, record.history_id, _name(instance)))
    state.add(rows)


def rows_deleted(queryset, history_date):
    """``delete_with_history`` is about to delete ``queryset`` (its history entries dated ``history_date``).

    Returns a callable to call once the history entries are written, which records
    the rows with their history ids; None when nothing is being recorded.
    """
    state = _active.get()
    if state is None:
        return None
    model = queryset.model
    instances = list(
        model._base_manager.using(queryset.db).filter(pk__in=queryset.order_by().values("pk")).order_by("pk")
    )

    def written():
        history = model.history.model.objects.using(queryset.db)
        pk_name = model._meta.pk.attname
        ids = {}
        pks = [instance.pk for instance in instances]
        for start in range(0, len(pks), 500):
            ids.update(
                history.filter(
                    **{f"{pk_name}__in": pks[start : start + 500]}, history_type="-", history_date=history_date
                ).values_list(pk_name, "history_id")
            )
        state.add(
            [
                _row(model, obj.pk, DELETED, values_of(model, obj), None, ids.get(obj.pk), _name(obj))
                for obj in instances
            ]
        )

    return written


# -- logs without history ---------------------------------------------------

# {log model: its foreign key to the record it logs}: every foreign key declared ``on_delete=LOG_CASCADE``
# (``install``).
LOGS = {}


def LOG_CASCADE(collector, field, sub_objs, using):  # noqa: N802 - named as Django's own on_delete handlers
    """``on_delete`` of the foreign key of a log without history (a deal's stage log) to the record it logs.

    Django's ``CASCADE``, the rows still deleted with one statement (no signals are connected to the log, so
    the collector deletes them fast); inside a recording they are recorded first, one query per batch of
    records deleted. Declaring it also makes the log's new rows rows of the changeset being recorded.
    """
    from django.contrib.admin.utils import NestedObjects

    # The admin's list of what a deletion would take (its confirmation page) deletes nothing.
    if not isinstance(collector, NestedObjects):
        log_rows_deleted(sub_objs)
    CASCADE(collector, field, sub_objs, using)


# The collector hands the rows over unread: read only when recording.
LOG_CASCADE.lazy_sub_objs = True


def _log_saved(sender, instance, created, raw=False, **kwargs):
    state = _active.get()
    if state is not None and created and not raw:
        state.add([_row(sender, instance.pk, CREATED, None, values_of(sender, instance), None, _name(instance))])


def _record_log_deletion(model, instances):
    state = _active.get()
    if state is not None and instances:
        state.add([_row(model, obj.pk, DELETED, values_of(model, obj), None, None, _name(obj)) for obj in instances])


def log_rows_deleted(queryset):
    """Record the rows of a log that ``queryset`` is about to delete in bulk (one query; none outside a
    recording). The cascade calls it; so must a bulk delete of a log's rows of its own."""
    if _active.get() is None:
        return
    model = queryset.model
    rows = model._base_manager.using(queryset.db).filter(pk__in=queryset.order_by().values("pk")).order_by("pk")
    _record_log_deletion(model, list(rows))


def _log_parent(row):
    """(model label, id) of the record a row of a log logs; None for a row of anything else."""
    field = LOGS.get(_model(row.model))
    if field is None:
        return None
    return field.related_model._meta.label_lower, (row.before or row.after or {}).get(field.attname)


# -- undo --------------------------------------------------------------------


class UndoRefused(Exception):
    """An undo that cannot go ahead: already undone, or conflicts (``conflicts``: [{...}])."""

    def __init__(self, message, *, code, conflicts=()):
        super().__init__(message)
        self.message, self.code, self.conflicts = message, code, list(conflicts)


def _latest_rows(rows):
    """{(model, pk): the changeset's last row for that record}."""
    latest = {}
    for row in rows:
        key = (row.model, row.object_id)
        if key not in latest or latest[key].seq < row.seq:
            latest[key] = row
    return latest


def conflicts(changeset, rows=None, user=None):
    """The records ``changeset`` touched that changed since, each ``{model, object_id, name, reason}``.

    A record conflicts when its latest history entry is not the one the changeset
    wrote (changed or deleted since), or, for a deleted one, when its id is taken again;
    and, given the ``user`` who undoes, when it has left their book since (a customer
    reassigned, with its interactions and deals); and when the undo would give it back
    a foreign key to a record deleted since, which it does not make again. One query per
    model touched, one more per model for a user who does not see everything, and one per
    model such keys point at.
    """
    from core import access

    rows = list(changeset.rows.all()) if rows is None else rows
    by_model = {}
    for (label, pk), row in _latest_rows(rows).items():
        by_model.setdefault(label, {})[pk] = row
    found = []
    for label, latest in by_model.items():
        model = _model(label)
        if model in LOGS:
            continue  # a log's rows follow their record (``undo``)
        live = [pk for pk, row in latest.items() if row.op != DELETED]
        history = model.history.latest_records(live) if live else {}
        gone = [pk for pk, row in latest.items() if row.op == DELETED]
        taken = set(model._base_manager.filter(pk__in=gone).values_list("pk", flat=True)) if gone else set()
        outside = set()
        if user is not None and access.has_owner_path(model) and not access.sees_everything(user):
            if live:
                outside = set(live) - set(
                    access.scope(model._base_manager.filter(pk__in=live), user).values_list("pk", flat=True)
                )
            if gone:
                outside |= set(gone) - _made_again_in_book(model, model.history.latest_records(gone), user)
        for pk, row in sorted(latest.items()):
            reason = None
            if row.op == DELETED:
                if pk in taken:
                    reason = "recreated"
                elif pk in outside:
                    reason = "not_in_your_book"
            else:
                record = history.get(pk)
                if record is None or record.history_type == "-":
                    reason = "deleted"
                elif row.history_id is not None and record.history_id != row.history_id:
                    reason = "changed"
                elif pk in outside:
                    reason = "not_in_your_book"
            if reason:
                found.append({"model": label, "object_id": pk, "name": row.name, "reason": reason})
    found.extend(_pointing_at_deleted(rows, found))
    return found


def _pointing_at_deleted(rows, found):
    """Conflicts for the records the undo would give back a foreign key to a record deleted since (and not
    made again by this undo), such as a deleted interaction whose customer was deleted after it: written, it
    would fail the database's check when the undo commits."""
    latest = _latest_rows(rows)
    made_again = {key for key, row in latest.items() if row.op == DELETED}
    settled = {(conflict["model"], conflict["object_id"]) for conflict in found}
    restored = {}  # {(model, pk): {attname: value}}, each field as the undo leaves it: its oldest row's before
    for row in sorted(rows, key=lambda row: row.seq):
        key = (row.model, row.object_id)
        if key in settled or _model(row.model) in LOGS:
            continue
        if key not in restored and row.op == CREATED:
            settled.add(key)  # made by the changeset: the undo deletes it
            continue
        values = restored.setdefault(key, {})
        for name, value in (row.before or {}).items():
            values.setdefault(name, value)
    wanted = {}  # {foreign key field: {value: [keys of the records pointing there]}}
    for key, values in restored.items():
        for field in tracked_fields(_model(key[0])):
            value = values.get(field.attname)
            if not field.many_to_one or value is None:
                continue
            if field.target_field.primary_key and (field.related_model._meta.label_lower, value) in made_again:
                continue
            wanted.setdefault(field, {}).setdefault(value, []).append(key)
    pointing = set()
    for field, by_value in wanted.items():
        existing = set(
            field.related_model._base_manager.filter(**{f"{field.target_field.attname}__in": list(by_value)})
            .values_list(field.target_field.attname, flat=True)
            .distinct()
        )
        for value, keys in by_value.items():
            if value not in existing:
                pointing.update(keys)
    return [
        {"model": label, "object_id": pk, "name": latest[(label, pk)].name, "reason": "points_at_deleted"}
        for label, pk in sorted(pointing)
    ]


def _made_again_in_book(model, last_entries, user):
    """The ids of deleted records that, made again from ``last_entries`` (their last history entries), would
    be in ``user``'s book: along a path to them (``core.access``) from the records those entries name."""
    from core import access

    mine = set()
    for path in access.seen_by_paths(model):
        first, _sep, rest = path.partition("__")
        field = model._meta.get_field(first)
        if not field.concrete:
            continue  # a path through the records that point at this one: none do, once it is deleted
        values = {pk: getattr(entry, field.attname) for pk, entry in last_entries.items()}
        if not rest:
            mine |= {pk for pk, value in values.items() if value == user.pk}
            continue
        named = {value for value in values.values() if value is not None}
        reachable = set(
            field.related_model._base_manager.filter(pk__in=named, **{rest: user}).values_list("pk", flat=True)
        )
        mine |= {pk for pk, value in values.items() if value in reachable}
    return mine


CONFLICT_MESSAGES = {
    "changed": _("changed since"),
    "deleted": _("deleted since"),
    "recreated": _("its id is taken again"),
    "not_in_your_book": _("no longer in your book"),
    "taken": _("a value it would take back, such as its email, is another record's now"),
    "points_at_deleted": _("a record it belongs to was deleted since"),
}


def conflict_text(conflict):
    return f"{conflict['name'] or conflict['object_id']} ({CONFLICT_MESSAGES[conflict['reason']]})"


def undo_refusal(user, changeset):
    """Why ``user`` may not undo ``changeset`` (a message), or None; its visibility is ``scope()``'s.

    Writers only; and since an undo deletes what the changeset created, a role that
    may not delete a kind of record (a rep, customers) may not undo its creation;
    records the CRM keeps about others (``bookkeeping = True``, such as a merge's
    tombstones) go with the change that made them, as logs do (``LOGS``).
    """
    from core import access

    if not access.can_write(user):
        return str(_("Read-only users cannot change data."))
    for label, ops in sorted((changeset.counts or {}).items()):
        model = _model(label)
        goes_along = getattr(model, "bookkeeping", False) or model in LOGS
        if ops.get(CREATED) and not goes_along and not access.may_delete(user, model):
            return str(
                _("Undoing this deletes %(records)s, which your role may not delete; ask a manager.")
                % {"records": model._meta.verbose_name_plural}
            )
    return None


@contextmanager
def _acting(user):
    from core.history import acting_as, current_history_user

    if user is not None and current_history_user() is None:
        with acting_as(user):
            yield
    else:
        yield


def undo(changeset, user, skip_conflicts=False):
    """Put back the state before ``changeset``; return the changeset of the undo.

    Updated records get their old values back and created ones are deleted, through
    their models' saves and deletes; deleted ones are made again with their ids
    (parents before children: the rows in reverse order). Records changed since are
    conflicts: the undo is refused (:class:`UndoRefused`, with them listed) unless
    ``skip_conflicts``, which leaves them as they are. So is a record whose value that
    must be unique (an email, a domain) another record holds now, found as it is put
    back; skipping it leaves too the records that would point at it, were it made
    again. One transaction.
    """
    from core import events

    with transaction.atomic():
        # As an update (``FOR NO KEY UPDATE``): the undo changes its status, and points its own changeset at it.
        changeset = locking(Changeset.objects.filter(pk=changeset.pk)).get()
        if changeset.status == Changeset.Status.UNDONE:
            raise UndoRefused(str(_("This changeset has already been undone.")), code="already_undone")
        rows = list(changeset.rows.order_by("-seq"))
        found = conflicts(changeset, rows, user)
        if found and not skip_conflicts:
            raise UndoRefused(
                str(_("Records changed since: %(names)s.")) % {"names": "; ".join(map(conflict_text, found))},
                code="undo_conflict",
                conflicts=found,
            )
        skipped = {(conflict["model"], conflict["object_id"]) for conflict in found}
        latest = _latest_rows(rows)
        while True:
            # Records left deleted: the rows that would point at them are skipped with them.
            gone = {key for key in skipped if latest[key].op == DELETED and _reason(found, key) != "recreated"}
            skipped |= _depending_on(rows, gone)
            try:
                # In a savepoint: a try that finds a value taken is rolled back, and the undo tried without it.
                with (
                    transaction.atomic(),
                    _acting(user),
                    recording(
                        "undo",
                        user=user,
                        label=f"Undo of #{changeset.pk}" + (f": {changeset.label}" if changeset.label else ""),
                        source={"undoes": changeset.pk, "skipped": len(skipped)},
                    ) as done,
                ):
                    # A log's rows are skipped with their record.
                    _revert(
                        [
                            row
                            for row in rows
                            if (row.model, row.object_id) not in skipped and _log_parent(row) not in skipped
                        ]
                    )
                    steps = _undo_steps(changeset)
                break
            except _ValueTaken as taken:
                row = taken.row
                conflict = {"model": row.model, "object_id": row.object_id, "name": row.name, "reason": "taken"}
                if not skip_conflicts:
                    raise UndoRefused(
                        str(_("Records changed since: %(names)s.")) % {"names": conflict_text(conflict)},
                        code="undo_conflict",
                        conflicts=[conflict],
                    ) from None
                found.append(conflict)
                skipped.add((row.model, row.object_id))
        # Kept even when every record was skipped (it wrote nothing): the undo is answered by it.
        done.undoes = changeset
        done.source = {**done.source, **steps}
        done.save()
        changeset.status, changeset.undone_by, changeset.undone_at = Changeset.Status.UNDONE, user, timezone.now()
        changeset.save(update_fields=["status", "undone_by", "undone_at"])
        events.record_event(
            "changeset.undone",
            model=Changeset._meta.label_lower,
            object_id=changeset.pk,
            owner_id=changeset.user_id,
            actor_id=getattr(user, "pk", None),
            data={"changeset": changeset.pk, "undo_changeset": done.pk, "skipped": sorted(map(list, skipped))},
        )
    return done


# {source key: the step an undo takes for a changeset whose source names it} (``undo_step``).
UNDO_STEPS = {}


def undo_step(source_key, step):
    """Declare what undoing a changeset whose ``source`` holds ``source_key`` does besides putting its rows back.

    For a change of more than records: a custom field's type change (``core.customfields``),
    whose definition goes back with the values. ``step(value)`` gets the source's value under
    that key and runs in the undo's transaction, inside its recording, after the rows are put
    back; it may refuse the undo (:class:`UndoRefused`, nothing is kept) and returns the value
    the undo's own source holds under that key (so that undoing the undo takes the step again),
    or None.
    """
    UNDO_STEPS[source_key] = step


def _undo_steps(changeset):
    done = {}
    for key, step in UNDO_STEPS.items():
        if key in (changeset.source or {}):
            value = step(changeset.source[key])
            if value is not None:
                done[key] = value
    return done


class _ValueTaken(Exception):
    """Putting ``row`` back broke a unique rule: a value it held (an email, a domain) is another record's now."""

    def __init__(self, row):
        super().__init__(row)
        self.row = row


def _reason(found, key):
    return next((conflict["reason"] for conflict in found if (conflict["model"], conflict["object_id"]) == key), None)


def _depending_on(rows, gone):
    """The records whose rows would put back a foreign key to one of ``gone`` (records the undo leaves
    deleted), and those depending on them in turn: {(model, id)}."""
    gone, depending = set(gone), set()
    while gone:
        found = set()
        for row in rows:
            key = (row.model, row.object_id)
            if row.op == CREATED or key in depending or not row.before:
                continue
            for field in tracked_fields(_model(row.model)):
                if field.many_to_one and (field.related_model._meta.label_lower, row.before.get(field.attname)) in gone:
                    found.add(key)
                    break
        depending |= found
        gone = found
    return depending


# {model: attnames} whose updates an undo puts back in bulk (``restore_in_bulk``).
BULK_RESTORED = {}
# {model: function} giving the values a bulk restore writes from those it puts back (``restore_in_bulk``'s ``deriving``).
BULK_DERIVING = {}


def restore_in_bulk(model, *fields, deriving=None):
    """Declare that an undo may put back ``model``'s updated rows that changed only ``fields`` in bulk.

    For fields a mover sets with ``core.history.update_with_history`` (a merge's moved records: their
    customer or company): a run of such rows is restored with one ``update_with_history`` per set of
    values (history, events and the undo's rows in bulk), not a save per row, so that undoing a merge
    costs the same queries for 10 moved records or 10,000. Where the model's ``save()`` derives one of
    ``fields`` from the others (a customer's company text from its company, as it is now), ``deriving``
    does what it does, for a set of values: it returns the values to write. ``tests/core/test_merge_changesets.py``
    compares it with the save per row.
    """
    BULK_RESTORED.setdefault(model, set()).update(fields)
    if deriving is not None:
        BULK_DERIVING[model] = deriving


# {model: attnames} its ``save()`` takes from another record (``derived``).
DERIVED = {}


def derived(model, *fields):
    """Declare ``fields`` of ``model`` that its ``save()`` takes from another record, whose change writes them too
    (a customer's company text, its company's name, rewritten by the company's rename).

    An undo leaves an updated row that changed only these fields to the row of that record: putting the record back
    writes them again (the company renamed back renames its people), in bulk, where a save per row would cost a few
    queries per record and derive them again as they are.
    """
    DERIVED.setdefault(model, set()).update(fields)


def _derived(model, row):
    fields = DERIVED.get(model)
    return fields is not None and row.op == UPDATED and bool(row.before) and set(row.before) <= fields


def _in_bulk(model, row, logged):
    fields = BULK_RESTORED.get(model)
    return (
        fields is not None
        and row.op == UPDATED
        and bool(row.before)
        and set(row.before) <= fields
        and (row.model, row.object_id) not in logged
    )


def _restore_run(model, run):
    """Put back a run of updated rows of ``model`` (``restore_in_bulk``): one bulk update per set of values."""
    from core.history import update_with_history

    by_values = {}
    for row in run:
        by_values.setdefault(tuple(sorted(row.before.items())), []).append(row.object_id)
    deriving = BULK_DERIVING.get(model)
    for values, pks in by_values.items():
        values = python_values(model, dict(values))
        if deriving is not None:
            values = deriving(values)
        update_with_history(model._base_manager.filter(pk__in=pks), **values)


def _revert(rows):
    """Undo ``rows`` (newest first): each through its model's save or delete, or a run of updates
    declared ``restore_in_bulk`` together."""
    from core.history import batched_delete_history

    # Records whose log the rows put back themselves.
    logged = {_log_parent(row) for row in rows} - {None}
    rows = [row for row in rows if not _derived(_model(row.model), row)]
    bulk = {id(row) for row in rows if _in_bulk(_model(row.model), row, logged)}
    loaded = {}
    for row in rows:
        if row.op != DELETED and id(row) not in bulk:
            loaded.setdefault(row.model, set()).add(row.object_id)
    objects = {label: _model(label)._base_manager.in_bulk(list(pks)) for label, pks in loaded.items()}
    run, run_ids = [], set()
    for row in rows:
        model = _model(row.model)
        if run and (id(row) not in bulk or row.model != run[0].model or row.object_id in run_ids):
            _restore_run(_model(run[0].model), run)
            run, run_ids = [], set()
        if id(row) in bulk:
            run.append(row)
            run_ids.add(row.object_id)
        elif row.op == UPDATED:
            instance = objects[row.model].get(row.object_id)
            if instance is None or not row.before:
                continue
            for name, value in python_values(model, row.before).items():
                setattr(instance, name, value)
            try:
                _save(instance, restores_log=(row.model, row.object_id) in logged)
            except IntegrityError as exc:
                raise _ValueTaken(row) from exc
        elif row.op == CREATED:
            instance = objects[row.model].get(row.object_id)
            if instance is None or not model._base_manager.filter(pk=row.object_id).exists():
                # Gone with a parent deleted just before (a cascade).
                continue
            if model in LOGS:
                _record_log_deletion(model, [instance])
            with batched_delete_history():
                instance.delete()
        else:
            instance = model(**python_values(model, row.before or {}))
            instance.pk = row.object_id
            try:
                _save(instance, force_insert=True, restores_log=(row.model, row.object_id) in logged)
            except IntegrityError as exc:
                raise _ValueTaken(row) from exc
            objects.setdefault(row.model, {})[row.object_id] = instance
    if run:
        _restore_run(_model(run[0].model), run)


def _save(instance, restores_log=False, **kwargs):
    # A record made again keeps its creation date (auto_now_add would write "now"); its
    # ``updated_at`` (auto_now, not in the history) is the undo's: it did change now, and
    # clients that sync by it must see it again.
    instance._keep_stored_dates = True
    instance._restores_log = restores_log
    try:
        instance.save(**kwargs)
    finally:
        del instance._keep_stored_dates, instance._restores_log


def restoring(instance):
    """Whether ``instance`` is being saved by an undo, with values it had before (a model's
    ``save()`` that derives fields, such as a deal's ``closed_at``, keeps them as they are)."""
    return getattr(instance, "_keep_stored_dates", False)


def restores_log(instance):
    """Whether an undo saving ``instance`` puts back its log's rows itself (they are rows of the changeset):
    its save writes no log entry of its own (``LOG_CASCADE``)."""
    return getattr(instance, "_restores_log", False)


def _keep_stored_dates(pre_save):
    def wrapped(self, model_instance, add):
        if self.auto_now_add and not self.auto_now and restoring(model_instance):
            value = getattr(model_instance, self.attname)
            if value is not None:
                return value
        return pre_save(self, model_instance, add)

    wrapped._keeps_stored_dates = True
    return wrapped


def install():
    """Let a restoring save keep ``auto_now_add`` dates, and record the logs (from ``CoreConfig.ready``)."""
    from django.apps import apps

    for field_class in (DateField, DateTimeField):
        if not getattr(field_class.pre_save, "_keeps_stored_dates", False):
            field_class.pre_save = _keep_stored_dates(field_class.pre_save)
    for model in apps.get_models():
        for field in model._meta.concrete_fields:
            if field.many_to_one and field.remote_field.on_delete is LOG_CASCADE:
                LOGS[model] = field
                post_save.connect(_log_saved, sender=model, dispatch_uid=f"core.changesets.log:{model._meta.label}")
