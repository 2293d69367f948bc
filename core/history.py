"""Change history of the CRM's records (django-simple-history), shared by the admin and the API.

``CRMHistoricalRecords`` is ``HistoricalRecords`` with three additions (and ``Model.history``
made without building a class on each use):

- a save that changes none of the tracked fields (an unchanged form or API body
  saved anyway) writes no "changed" record: an entry must show a change;
- inside :func:`batched_delete_history`, the "deleted" records of every object
  removed (a customer's interactions and opportunities included, through the
  cascade) are collected and written with one ``bulk_create`` per model, instead
  of one INSERT per deleted row;
- inside :func:`history_for_loaded_records` (``manage.py loaddata``), the records
  saved raw, which django-simple-history leaves without history, are noted: those
  inserted that have no history at the end get their "created" entry, those that
  replaced a row already there (``loaddata --replace``) a "changed" entry, unless
  their tracked fields are those of their latest entry.
"""

from contextlib import contextmanager
from functools import cached_property
from threading import local

from django.db import connections
from django.db.models import BigIntegerField, CharField, DateTimeField, OuterRef, Subquery, Value
from django.utils import timezone
from django.utils.translation import gettext_noop
from simple_history.manager import HistoryDescriptor, HistoryManager
from simple_history.models import HistoricalChanges, HistoricalRecords
from simple_history.signals import post_create_historical_record

from core import events
from core.rowlocks import locking

_state = local()

# Labels of django-simple-history's admin templates, which ships no Chinese
# translation: listed here so that our catalogue carries them.
THIRD_PARTY_LABELS = (
    gettext_noop("Object"),
    gettext_noop("Changed by"),
    gettext_noop("Change reason"),
    gettext_noop("Changes"),
    gettext_noop("Created"),
    gettext_noop("Changed"),
    gettext_noop("Deleted"),
    gettext_noop("Compare"),
    gettext_noop("View history: %s"),
    gettext_noop("Change history: %s"),
    gettext_noop("Choose a date from the list below to revert to a previous version of this object."),
    gettext_noop("This object doesn't have a change history."),
    gettext_noop("Revert %s"),
    gettext_noop("View %s"),
)


class CRMHistoryManager(HistoryManager):
    def bulk_history_create(self, objs, batch_size=None, update=False, **kwargs):
        """History entries, and the events of the same changes, for records written in bulk."""
        objs = list(objs)
        previous = self.latest_records([obj.pk for obj in objs]) if update else None
        created = super().bulk_history_create(objs, batch_size=batch_size, update=update, **kwargs)
        _changesets().history_bulk_written(self.model.instance_type, objs, created or [], previous=previous)
        events.record_bulk(self.model.instance_type, objs, update=update, previous=previous, using=self.db)
        return created

    def latest_records(self, pks):
        """{pk: the latest history entry} of the records ``pks``, in one query per 500."""
        records = self.model.objects.using(self.db)
        pk_name = self.model.instance_type._meta.pk.attname
        newest = (
            records.filter(**{pk_name: OuterRef(pk_name)}).order_by("-history_date", "-history_id").values("history_id")
        )
        latest = {}
        for start in range(0, len(pks), 500):
            chunk = records.filter(**{f"{pk_name}__in": pks[start : start + 500]}, history_id=Subquery(newest[:1]))
            latest.update((getattr(record, pk_name), record) for record in chunk)
        return latest


class _HistoryDescriptor(HistoryDescriptor):
    """``Model.history``: django-simple-history's, with the manager's class made once.

    Its own makes the class anew (``Manager.from_queryset``, which inspects every method of the
    queryset) on each use, and every save that leaves history uses it.
    """

    @cached_property
    def manager(self):
        return self.manager_class.from_queryset(self.queryset_class)

    def __get__(self, instance, owner):
        return self.manager(self.model, instance)


class CRMHistoricalRecords(HistoricalRecords):
    def __init__(self, *args, **kwargs):
        kwargs.setdefault("history_manager", CRMHistoryManager)
        super().__init__(*args, **kwargs)

    def finalize(self, sender, **kwargs):
        super().finalize(sender, **kwargs)
        descriptor = sender.__dict__.get(self.manager_name)
        if type(descriptor) is HistoryDescriptor:
            replacement = _HistoryDescriptor(descriptor.model, descriptor.manager_class, descriptor.queryset_class)
            setattr(sender, self.manager_name, replacement)

    def create_historical_record(self, instance, history_type, using=None):
        previous = instance.__dict__.get("_history_previous") if history_type == "~" else None
        # A changeset being recorded (core/changesets.py) takes the entry as one of its rows.
        instance._changeset_previous = previous
        try:
            super().create_historical_record(instance, history_type, using=using)
        finally:
            instance.__dict__.pop("_changeset_previous", None)

    def post_save(self, instance, created, using=None, **kwargs):
        loaded = getattr(_state, "loaded", None)
        if kwargs.get("raw", False) and loaded is not None:
            noted = loaded.setdefault(type(instance), {})
            # Saved again in the same load (a deferred field, the same object twice): still a row it inserted.
            inserted = created or noted.get(instance.pk, (None, False))[1]
            noted[instance.pk] = (instance, inserted)
        # A merge's survivor (core/merges.py) records what was merged into it even when it kept its values.
        forced = instance.__dict__.pop("_history_force", False)
        if not created and not kwargs.get("raw", False) and self.matches_last_record(instance) and not forced:
            return
        super().post_save(instance, created, using=using, **kwargs)

    def matches_last_record(self, instance):
        """Whether the tracked fields of ``instance`` are those of its latest history record."""
        last = getattr(instance, self.manager_name).order_by("-history_date", "-history_id").first()
        # The event of this save (core.events) takes its old values from here.
        instance._history_previous = last
        return holds_values_of(last, instance, self.fields_included(instance))

    def post_delete(self, instance, using=None, **kwargs):
        pending = getattr(_state, "pending", None)
        if pending is None:
            return super().post_delete(instance, using=using, **kwargs)
        record = self.build_deletion_record(instance, using)
        record._deleted = instance
        pending.setdefault(self, []).append(record)

    def build_deletion_record(self, instance, using=None):
        manager = getattr(instance, self.manager_name)
        attrs = {field.attname: getattr(instance, field.attname) for field in self.fields_included(instance)}
        return manager.model(
            history_date=getattr(instance, "_history_date", timezone.now()),
            history_type="-",
            history_user=self.get_history_user(instance),
            history_change_reason=self.get_change_reason_for_object(instance, "-", using),
            **attrs,
        )


def holds_values_of(entry, instance, fields):
    """Whether the history ``entry`` (None: no history) records ``instance`` with its ``fields`` as they are now.

    A save whose record it holds writes no "changed" entry (no change to show).
    """
    if entry is None or entry.history_type == "-":
        return False
    return all(getattr(instance, field.attname) == getattr(entry, field.attname) for field in fields)


def keeps_history(model):
    """Whether ``model``'s rows are records with a change history, or are such history entries themselves."""
    return hasattr(model._meta, "simple_history_manager_attribute") or issubclass(model, HistoricalChanges)


def _changesets():
    # core.changesets imports this module; the hooks are looked up when called.
    from core import changesets

    return changesets


def _record_written(sender, instance, history_instance, **kwargs):
    """A single save or delete wrote ``history_instance``: a row of the changeset being recorded, if any."""
    _changesets().history_written(
        type(instance), instance, history_instance, instance.__dict__.get("_changeset_previous")
    )


post_create_historical_record.connect(_record_written, dispatch_uid="core.history.changesets")


@contextmanager
def batched_delete_history():
    """Write the deletion history of everything deleted inside the block in bulk.

    Use it inside the deleting transaction, so that the records and the deletion
    commit or roll back together.
    """
    if getattr(_state, "pending", None) is not None:
        # Nested: the outer block writes.
        yield
        return
    _state.pending = {}
    events.collecting_deletions()
    try:
        yield
        for records in _state.pending.values():
            if records:
                written = type(records[0]).objects.bulk_create(records, batch_size=500)
                model = type(records[0]).instance_type
                _changesets().history_bulk_written(model, [record._deleted for record in written], written)
        events.write_collected()
    finally:
        _state.pending = None
        events.discard_collected()


# The reason of the "changed" entries of records a fixture replaced (``loaddata --replace``).
REPLACED_REASON = "Replaced from a fixture"


@contextmanager
def history_for_loaded_records(using="default", batch_size=500):
    """Give every record saved raw inside the block (a fixture's) the history entry of what it did.

    Fixtures are saved raw, and django-simple-history records nothing for raw
    saves, so a loaded record's first change would show every field as new.

    - A record the block inserted that has no history gets a "created" entry, dated at
      its ``created_at``, with its values as loaded. Records whose history the fixture
      carries too (a ``dumpdata`` of whole apps), or that had history before, are left alone.
    - A record whose row was there before and that the block overwrote (``loaddata --replace``)
      gets a "changed" entry dated now, and its ``<model>.updated`` event, as a save would:
      none when its tracked fields are those of its latest entry (nothing changed).

    Use it inside the loading transaction.
    """
    if getattr(_state, "loaded", None) is not None:
        yield
        return
    _state.loaded = {}
    try:
        yield
        for model, noted in _state.loaded.items():
            inserted = {pk: instance for pk, (instance, created) in noted.items() if created}
            replaced = [instance for instance, created in noted.values() if not created]
            _record_created(model, inserted, using, batch_size)
            _record_replaced(model, replaced, batch_size)
    finally:
        _state.loaded = None


def _record_created(model, instances, using, batch_size):
    history = model.history.model
    pks = list(instances)
    pk_name = model._meta.pk.name
    with_history = set()
    for start in range(0, len(pks), batch_size):
        chunk = pks[start : start + batch_size]
        with_history.update(
            history.objects.using(using).filter(**{f"{pk_name}__in": chunk}).values_list(pk_name, flat=True).distinct()
        )
    missing = [instance for pk, instance in instances.items() if pk not in with_history]
    record_creation(model, missing, batch_size=batch_size)


def _record_replaced(model, instances, batch_size):
    if not instances:
        return
    latest = model.history.latest_records([instance.pk for instance in instances])
    fields = model.history.model.tracked_fields
    changed = [instance for instance in instances if not holds_values_of(latest.get(instance.pk), instance, fields)]
    if changed:
        model.history.bulk_history_create(
            changed,
            batch_size=batch_size,
            update=True,
            default_user=current_history_user(),
            default_change_reason=REPLACED_REASON,
        )


def record_creation(model, instances, reason=None, batch_size=500):
    """The "created" history entries of records saved without signals (bulk or raw saves).

    Each is dated at the record's ``created_at`` (now, for a model without one)
    and attributed to whoever a change is attributed to at the time (nobody, from
    the command line).
    """
    for instance in instances:
        created_at = getattr(instance, "created_at", None)
        if created_at is not None:
            instance._history_date = created_at
    model.history.bulk_history_create(instances, batch_size=batch_size, default_change_reason=reason)


def current_history_user():
    """The user django-simple-history would record for a change made now (None outside a request)."""
    request = getattr(HistoricalRecords.context, "request", None)
    user = getattr(request, "user", None)
    return user if user is not None and user.is_authenticated else None


def delete_with_history(queryset):
    """Delete every row of ``queryset`` in two statements, recording each deletion in its history.

    Django's delete sends signals per row, so with history attached it loads every
    row first (a customer with 50,000 interactions: a thousand queries and seconds).
    Here the "deleted" history records are copied from the rows themselves with one
    ``INSERT ... SELECT``, and the rows go with one ``DELETE`` (their many-to-many links
    with one more per relation). Only for models with no other relation that must cascade
    from them. Returns the number of rows deleted.
    """
    model = queryset.model
    history_model = model.history.model
    tracked = [field for field in history_model._meta.concrete_fields if not field.name.startswith("history_")]
    user = current_history_user()
    history_date = timezone.now()
    recorded = _changesets().rows_deleted(queryset, history_date)
    source = (
        queryset.order_by()
        .annotate(
            _history_date=Value(history_date, output_field=DateTimeField()),
            _history_type=Value("-", output_field=CharField()),
            _history_user=Value(user.pk if user else None, output_field=BigIntegerField()),
            _history_reason=Value(None, output_field=CharField()),
        )
        .values_list(
            *[field.attname for field in tracked], "_history_date", "_history_type", "_history_user", "_history_reason"
        )
    )
    select_sql, params = source.query.sql_with_params()
    connection = connections[queryset.db]
    quote = connection.ops.quote_name
    columns = [field.column for field in tracked] + [
        "history_date",
        "history_type",
        "history_user_id",
        "history_change_reason",
    ]
    with connection.cursor() as cursor:
        cursor.execute(
            f"INSERT INTO {quote(history_model._meta.db_table)} ({', '.join(map(quote, columns))}) {select_sql}",
            params,
        )
    if recorded is not None:
        recorded()
    events.record_bulk_deletion(queryset)
    # The rows' many-to-many links (an opportunity's tags) go first, one DELETE per relation.
    for relation in model._meta.many_to_many:
        through = relation.remote_field.through
        links = through._base_manager.using(queryset.db).filter(
            **{f"{relation.m2m_field_name()}__in": queryset.order_by().values("pk")}
        )
        links._raw_delete(queryset.db)
    # The fast path Django itself takes when a delete has no signals or cascades to run.
    return queryset.order_by()._raw_delete(queryset.db)


@contextmanager
def acting_as(user, request_id=""):
    """Record the changes made inside as ``user``'s (history and events), outside a web request.

    For work that acts for a user without a request of theirs: the mail gateway
    logging an email for the owner of the address it was sent to.
    """

    class _Acting:
        pass

    acting = _Acting()
    acting.user, acting.request_id = user, request_id
    previous = getattr(HistoricalRecords.context, "request", None)
    HistoricalRecords.context.request = acting
    try:
        yield
    finally:
        if previous is None:
            del HistoricalRecords.context.request
        else:
            HistoricalRecords.context.request = previous


def update_with_history(queryset, reason=None, **values):
    """Set ``values`` on every row of ``queryset``, recording each change in its history; return the count.

    The rows are locked and read once, then written with one ``UPDATE ... WHERE id IN``
    per 500 (every row takes the same values: no per-row ``CASE`` of ``bulk_update``)
    and their history entries and events in bulk (``bulk_history_create``), so the
    number of queries grows by one per 500 rows, not per row. Never a
    ``QuerySet.update()`` alone, which would leave the change out of the history
    (and so out of what an undo replays).

    The lock is ``FOR NO KEY UPDATE`` (``core.rowlocks.locking``): the values set are no keys (a merge's movers
    point the rows at the survivor), and a write pointing a record at one of the rows meanwhile goes on.
    """
    model = queryset.model
    rows = list(locking(queryset))
    if not rows:
        return 0
    if any(field.name == "updated_at" for field in model._meta.concrete_fields):
        values = {**values, "updated_at": timezone.now()}
    for row in rows:
        for name, value in values.items():
            setattr(row, name, value)
    for start in range(0, len(rows), 500):
        chunk = [row.pk for row in rows[start : start + 500]]
        model._base_manager.using(queryset.db).filter(pk__in=chunk).update(**values)
    model.history.bulk_history_create(
        rows, batch_size=500, update=True, default_user=current_history_user(), default_change_reason=reason
    )
    return len(rows)
