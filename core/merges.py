"""Merging duplicate records into one: the rules every merge shares (customers, companies).

Each mergeable model has one service (``customers.services.merge_customers``,
``companies.services.merge_companies``) whose body is one function, in one
transaction; the steps common to them live here:

- :func:`lock_records`: the survivor and the records merged into it, checked
  (no record with itself, at most :data:`MAX_MERGED` at once, every id in the
  user's book, a writing role, nothing changed since the user looked) and locked;
- :func:`chosen_values`: each field from the survivor, unless the user chose
  another record's value for it or the survivor's is empty (then the first
  non-empty value of the others, in the order given: :func:`default_source`,
  which the admin's page preselects by too);
- :func:`united_tags` and :func:`merged_custom_fields`: the tags of all, the
  survivor's custom values with the gaps filled from the others (or chosen);
- :func:`bury`: the merged-away records deleted with their history, and a
  tombstone (``core.MergedRecord``) for each, so that their ids answer with the
  survivor's (:func:`merged_into`);
- :func:`note_merge`: the survivor's history entry naming what was merged in.

Every write goes through model saves and deletes that write history (or the
history managers' bulk helpers), never a bare ``QuerySet.update()``: the history
is the record of the merge, and what an undo replays.
"""

from contextlib import contextmanager

from django.core.exceptions import PermissionDenied
from django.db import transaction
from django.dispatch import Signal

from core import access, changesets, events
from core.history import batched_delete_history
from core.models import MergedRecord
from core.rowlocks import lock_keys, lock_rows
from core.tags import hold_tags_of

# Records merged into one survivor in one go.
MAX_MERGED = 10
# Tombstones followed from one id at most (a→b, then b→c, ...).
MAX_HOPS = 20
# The prefix of a choice for one custom field ("custom_fields.region": 7).
CUSTOM_PREFIX = "custom_fields."


class MergeRefused(ValueError):
    """A merge that breaks a rule; ``field`` names the input at fault (for a 400 on it)."""

    def __init__(self, message, field="merged_ids"):
        super().__init__(message)
        self.message = message
        self.field = field


def _pk(record):
    return getattr(record, "pk", record)


def lock_records(model, survivor, others, *, user, versions=None, parents=()):
    """(survivor, [others]): the records, re-read and locked, after checking the merge may happen.

    ``survivor`` and ``others`` are records or ids. ``versions`` maps ids to the
    ``updated_at`` the user saw (the admin's page): a record changed since then
    refuses the merge. ``parents`` names the foreign keys to parents the survivor may
    take from the others (a customer's company): those of every record are held first.
    """
    if not access.can_write(user):
        raise PermissionDenied("Read-only users cannot change data.")
    survivor_id = _pk(survivor)
    other_ids = [_pk(other) for other in others]
    if not other_ids:
        raise MergeRefused("Name at least one record to merge into the survivor.")
    if len(other_ids) > MAX_MERGED:
        raise MergeRefused(f"At most {MAX_MERGED} records can be merged at once.")
    if survivor_id in other_ids:
        raise MergeRefused("A record cannot be merged with itself.")
    if len(set(other_ids)) != len(other_ids):
        raise MergeRefused("Each record may be named once.")
    ids = [survivor_id, *other_ids]
    visible = set(access.scope(model.objects.filter(pk__in=ids), user).values_list("pk", flat=True))
    missing = [pk for pk in ids if pk not in visible]
    if missing:
        field = "survivor_id" if survivor_id in missing else "merged_ids"
        raise MergeRefused(f"No {model._meta.verbose_name} with id {', '.join(map(str, missing))}.", field)
    # The tags the survivor takes from the others: held before the records, as a rename holds them.
    hold_tags_of(model, ids)
    # Then the parents it may take, as their deletes lock them before the records pointing at them, with the lock
    # the key's check at COMMIT takes (``rowlocks.lock_keys``): taken only by that check, after the records, a
    # parent's delete waiting for one of them would deadlock the merge.
    for name in parents:
        parent = model._meta.get_field(name).related_model
        lock_keys(parent._base_manager.filter(pk__in=model._base_manager.filter(pk__in=ids).values(name)))
    # Then the records, by primary key as every writer of several records locks them, as the merge writes them
    # (``rowlocks.lock_rows``): the survivor as its save takes it, ``FOR NO KEY UPDATE`` (the writes pointing records
    # at it go on), the others then as their deletes take them, ``FOR UPDATE`` (those writes are waited for, and
    # their records moved to the survivor with the rest).
    rows = model._base_manager.filter(pk__in=ids).order_by("pk")
    lock_rows(rows)
    lock_rows(model._base_manager.filter(pk__in=other_ids), delete=True)
    found = {record.pk: record for record in rows}
    if len(found) != len(ids):  # deleted by another request since the scope's read
        raise MergeRefused(f"No {model._meta.verbose_name} with id {', '.join(map(str, set(ids) - set(found)))}.")
    for pk, seen in (versions or {}).items():
        record = found.get(pk)
        if record is not None and record.updated_at.isoformat() != seen:
            raise MergeRefused(f"{record} was changed meanwhile; look at it again before merging.", "ids")
    # Checked once they are locked (``FOR UPDATE``): no record can be put under them meanwhile.
    if _under_others_books(model, other_ids, user):
        raise MergeRefused(
            f"Records of another book belong to these {model._meta.verbose_name_plural}; ask a manager to merge them."
        )
    return found[survivor_id], [found[pk] for pk in other_ids]


def _under_others_books(model, ids, user):
    """Whether a record under the records ``ids`` of ``model`` (one pointing at them, which their merge moves or
    deletes: a company's people and deals) is outside ``user``'s book.

    A company is seen by every rep with a person there (``core.access``); its merge by one of them would move the
    others' people and deals, which are not theirs to change (nor to count: the merge's answer says what moved).
    """
    if access.sees_everything(user):
        return False
    for relation in model._meta.related_objects:
        below = relation.related_model
        if relation.one_to_many and access.has_owner_path(below):
            rows = below._base_manager.filter(**{f"{relation.field.name}__in": ids})
            if rows.exclude(pk__in=access.scope(rows, user).values("pk")).exists():
                return True
    return False


def _empty(value):
    return value is None or value == "" or value == [] or value == {}


def check_choices(fields, choices, records):
    """``choices`` (field → id of the record whose value it takes) as {field: record}; MergeRefused if invalid."""
    by_id = {record.pk: record for record in records}
    checked = {}
    for name, source in (choices or {}).items():
        if name not in fields and not name.startswith(CUSTOM_PREFIX):
            raise MergeRefused(f"{name} is not a field a merge can choose.", "fields")
        if source not in by_id:
            raise MergeRefused(f"{name}: {source} is not one of the records merged.", "fields")
        checked[name] = by_id[source]
    return checked


def value_of(record, name):
    """The value of ``name`` (a field, or ``custom_fields.<key>``) that a merge may take from ``record``."""
    if name.startswith(CUSTOM_PREFIX):
        return (record.custom_fields or {}).get(name.removeprefix(CUSTOM_PREFIX))
    return getattr(record, record._meta.get_field(name).attname)


def default_source(survivor, others, name):
    """The record whose value of ``name`` the survivor keeps when nobody chooses: its own, unless
    empty, then the first of the others (in the order given) that has one."""
    if not _empty(value_of(survivor, name)):
        return survivor
    return next((other for other in others if not _empty(value_of(other, name))), survivor)


def default_sources(records, survivor, names):
    """{name: id of the record it is taken from by default} when ``survivor`` stays (the admin's page)."""
    others = [record for record in records if record.pk != survivor.pk]
    return {name: default_source(survivor, others, name).pk for name in names}


def chosen_values(survivor, others, fields, choices):
    """{attname: value} of ``fields`` for the survivor: chosen, else the survivor's, else the first non-empty."""
    values = {}
    for name in fields:
        attname = survivor._meta.get_field(name).attname
        source = choices[name] if name in choices else default_source(survivor, others, name)
        values[attname] = getattr(source, attname)
    return values


def keep_owner(survivor, values, chosen, user):
    """Only a manager gives a record to someone (as in the API): for anyone else the survivor keeps its owner."""
    if "owner_id" not in values or access.is_manager(user) or values["owner_id"] == survivor.owner_id:
        return
    if "owner" in chosen:
        raise MergeRefused("Only managers choose the owner; keep the survivor's.", "fields")
    values["owner_id"] = survivor.owner_id


def united_tags(survivor, others):
    """The names of the tags of all the records, the survivor's first (the same tag once)."""
    from core.tags import MAX_PER_RECORD, name_key

    names = {}
    for record in (survivor, *others):
        for name in record.tags or []:
            names.setdefault(name_key(name), name)
    if len(names) > MAX_PER_RECORD:
        raise MergeRefused(f"Together the records have more than {MAX_PER_RECORD} tags; remove some first.", "tags")
    return list(names.values())


def merged_custom_fields(survivor, others, choices):
    """The survivor's custom values, a value it lacks taken from the first other that has one, or as chosen."""
    values = dict(survivor.custom_fields or {})
    for key in dict.fromkeys(key for other in others for key in (other.custom_fields or {})):
        name = f"{CUSTOM_PREFIX}{key}"
        value = value_of(default_source(survivor, others, name), name)
        if not _empty(value):
            values[key] = value
    for name, source in choices.items():
        if name.startswith(CUSTOM_PREFIX):
            key = name.removeprefix(CUSTOM_PREFIX)
            value = (source.custom_fields or {}).get(key)
            if _empty(value):
                values.pop(key, None)
            else:
                values[key] = value
    return values


def bury(survivor, others, *, user):
    """Delete ``others`` with their history and leave a tombstone of each pointing at ``survivor``.

    Their children must have moved to the survivor first: what is left cascades.
    """
    label = survivor._meta.label_lower
    for other in others:
        # Django clears a deleted instance's pk; the tombstones and the answer still need it.
        other._merged_pk = other.pk
    with batched_delete_history():
        for other in others:
            other.delete()
    for other in others:
        MergedRecord(model=label, old_id=other._merged_pk, survivor_id=survivor.pk, merged_by=user).save()


def note_merge(survivor, others):
    """Make the survivor's next save write a history entry naming the records merged into it, changed or not.

    After :func:`bury`, which remembered the merged-away ids."""
    names = ", ".join(f"#{other._merged_pk}" for other in others)
    survivor._change_reason = f"Merged in {names}"[:100]
    survivor._history_force = True


def merged_into(model, pk):
    """The id ``pk`` of ``model`` was merged into, following chains (a→b, b→c: c), or None."""
    label = model._meta.label_lower
    current, seen = pk, {pk}
    for _ in range(MAX_HOPS):
        survivor = (
            MergedRecord.objects.filter(model=label, old_id=current).values_list("survivor_id", flat=True).first()
        )
        if survivor is None or survivor in seen:
            break
        current = survivor
        seen.add(current)
    return None if current == pk else current


@contextmanager
def trial(dry_run):
    """A transaction that a dry run rolls back at the end (a preview runs the merge itself, then undoes it)."""
    with transaction.atomic():
        yield
        if dry_run:
            transaction.set_rollback(True)


# Sent in a merge's transaction once it is done (sender: the model; survivor, merged_ids, user), for
# what other apps keep about records (the duplicates' pairs).
merged = Signal()


def merge_records(model, fields, movers, survivor, others, *, choices=None, user, versions=None, parents=()):
    """The whole of one merge, in one transaction: what each model's merge service runs.

    ``fields`` are those taken from one record, ``movers`` the registered
    ``move(from_ids, survivor)`` of the records below (the model's ``parts``),
    ``parents`` the fields among them naming a parent (held first: ``lock_records``).
    Returns {"survivor", "merged_ids", "moved": {kind: count}, "changeset"}.
    """
    label = f"Merge into {model._meta.label_lower} #{_pk(survivor)}"
    source = {"model": model._meta.label_lower, "survivor_id": _pk(survivor), "merged_ids": [_pk(o) for o in others]}
    # One changeset (core/changesets.py): previewed with the rows it would make, undone like any other.
    with changesets.recording("merge", user=user, label=label, source=source) as changeset:
        survivor, others = lock_records(model, survivor, others, user=user, versions=versions, parents=parents)
        chosen = check_choices(fields, choices, [survivor, *others])
        values = chosen_values(survivor, others, fields, chosen)
        keep_owner(survivor, values, chosen, user)
        tags = united_tags(survivor, others)
        custom_fields = merged_custom_fields(survivor, others, chosen)
        merged_ids = [other.pk for other in others]
        moved = {name: move(merged_ids, survivor) for name, move in movers.items()}
        # Gone before the survivor saves: the unique values (email, domain, external_id) it may take are free.
        bury(survivor, others, user=user)
        for attname, value in values.items():
            setattr(survivor, attname, value)
        survivor.tags, survivor.custom_fields = tags, custom_fields
        note_merge(survivor, others)
        survivor.save()
        del survivor._change_reason
        merged.send(model, survivor=survivor, merged_ids=merged_ids, user=user)
        # In the shape of every event's changes ({field: {"old", "new"}}).
        events.record(
            survivor, "merged", {"merged_ids": {"old": None, "new": merged_ids}, "moved": {"old": None, "new": moved}}
        )
    return {"survivor": survivor, "merged_ids": merged_ids, "moved": moved, "changeset": changeset}
