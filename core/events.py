"""The event log: one ``core.Event`` per change of a record, written with the change.

An app declares its records once, in its ``AppConfig.ready()``::

    events.register(Customer, name="customer", serializer=CustomerSerializer)

and from then on every create, update and delete of a ``Customer``, whatever
path it takes (API, admin form, import, shell), writes ``customer.created``,
``customer.updated`` or ``customer.deleted`` in the same database transaction as
the change: a write that rolls back leaves no event, a committed one always has
one (a transactional outbox). The hooks sit beside the change history
(``core/history.py``), which every registered model has, and follow it:

- a single save or delete: ``post_save``/``post_delete`` signals; the old values
  are those of the record's latest history entry, so a save that changes nothing
  writes no event, as it writes no history;
- deletions inside :func:`core.history.batched_delete_history` (the API's and the
  admin's deletes, with their cascades) are collected and written with one
  ``bulk_create``;
- :func:`core.history.delete_with_history` copies the deleted rows into events
  with one ``INSERT ... SELECT``, as it does for history;
- ``bulk_update_with_history``/``bulk_create_with_history`` and
  :func:`core.history.record_creation` go through the history manager's
  ``bulk_history_create``, which writes the events in bulk too.

After the commit (``transaction.on_commit``), a job hands new events to the
dispatchers registered with :func:`register_dispatcher`; an event a crash kept
from being handed over is picked up by the periodic sweep (``core/tasks.py``).

The feed and the dispatch job follow the log by ``Event.position``, not by id. An
id is taken when the event is inserted, but its transaction may commit long after
(a batch, an import): on PostgreSQL a reader could see event 11 committed while
event 10 is still invisible, move past 10 and never come back. A position is given
only to a committed event, by :func:`relay` (on PostgreSQL; on SQLite one
transaction writes at a time, so an event's id is already in commit order and a
trigger copies it), and each relay numbers what has committed since the last one:
what a reader has been served never gains an event behind it.
"""

from dataclasses import dataclass, field
from threading import local

from django.db import connections, transaction
from django.db.models import F, Value
from django.db.models.signals import post_delete, post_save
from django.utils import timezone

from core import access

_sources = {}
_other_types = []
_dispatchers = []
_state = local()
_MISSING = object()


@dataclass(frozen=True)
class Source:
    model: type
    name: str
    serializer: type
    # Further event types an update also writes, each with the test of its changes
    # ({"opportunity.stage_changed": lambda changes: "stage" in changes}).
    also: dict = field(default_factory=dict)
    # Further verbs the model's services write themselves with ``record`` ("merged": customer.merged).
    verbs: tuple = ()

    def type(self, verb):
        return f"{self.name}.{verb}"

    def represent(self, instance):
        return dict(self.serializer(instance).data)


def register(model, *, name, serializer, also=None, verbs=()):
    """Record an event for every create, update and delete of ``model``.

    ``name`` is the first half of the event types (``customer`` ->
    ``customer.created``); ``serializer`` gives the record's representation, the
    API's own; ``also`` maps further types an update writes too to the test of its
    changes (``{field: {"old", "new"}}``); ``verbs`` names the further events the
    model's services write with :func:`record` (``("merged",)``).
    """
    source = Source(model=model, name=name, serializer=serializer, also=dict(also or {}), verbs=tuple(verbs))
    _sources[model] = source
    uid = f"events:{model._meta.label_lower}"
    post_save.connect(_saved, sender=model, dispatch_uid=uid, weak=False)
    post_delete.connect(_deleted, sender=model, dispatch_uid=uid, weak=False)
    return source


def source_for(model):
    return _sources.get(model)


def register_type(name):
    """Declare an event type that is no record's change (``changeset.undone``), written by ``record_event``."""
    if name not in _other_types:
        _other_types.append(name)


def event_types():
    """Every event type the registered records (and ``register_type``) can write, for the schema and filters."""
    types = []
    for source in _sources.values():
        types += [source.type("created"), source.type("updated"), source.type("deleted"), *source.also]
        types += [source.type(verb) for verb in source.verbs]
    return types + _other_types


def register_dispatcher(function):
    """Call ``function(events)`` with each batch of new events, oldest first, in the worker.

    It runs after the commit, may see an event twice (a worker killed mid-batch)
    and must be idempotent; an exception retries the whole batch with backoff.
    """
    if function not in _dispatchers:
        _dispatchers.append(function)


def dispatchers():
    return list(_dispatchers)


# -- context -----------------------------------------------------------------


def _request():
    from simple_history.models import HistoricalRecords

    return getattr(HistoricalRecords.context, "request", None)


def _context():
    """(the acting user's id, the request id) for events written now."""
    request = _request()
    user = getattr(request, "user", None)
    actor = user.pk if user is not None and user.is_authenticated else None
    return actor, getattr(request, "request_id", "") or ""


def _owner(instance, cache=None):
    """The id of the user who owns ``instance``, along its owner path in ``core.access``."""
    path = access.owner_path(type(instance)).split("__")
    if len(path) == 1:
        return getattr(instance, f"{path[0]}_id")
    relation = type(instance)._meta.get_field(path[0])
    if relation.is_cached(instance):
        target = getattr(instance, path[0])
        for step in path[1:-1]:
            target = getattr(target, step, None) if target is not None else None
        return getattr(target, f"{path[-1]}_id", None) if target is not None else None
    key = getattr(instance, relation.attname)
    if key is None:
        return None
    cache = {} if cache is None else cache
    if (relation, key) not in cache:
        cache[(relation, key)] = (
            relation.related_model._base_manager.filter(pk=key).values_list("__".join(path[1:]), flat=True).first()
        )
    return cache[(relation, key)]


_tracked_fields = {}


def _tracked(model):
    # model.history builds a manager class on every access: look the fields up once.
    if model not in _tracked_fields:
        _tracked_fields[model] = model.history.model.tracked_fields
    return _tracked_fields[model]


def _diff(model, old, new):
    """{attname: {"old", "new"}} for the tracked fields whose values differ; ``old`` None means creation."""
    changes = {}
    for tracked in _tracked(model):
        before = None if old is None else getattr(old, tracked.attname)
        after = getattr(new, tracked.attname)
        if old is None or before != after:
            changes[tracked.attname] = {"old": before, "new": after}
    return changes


def _build(source, instance, verb, changes, data, owner, actor, request_id, now):
    from core.models import Event

    events = [
        Event(
            type=source.type(verb),
            model=source.model._meta.label_lower,
            object_id=instance.pk,
            owner_id=owner,
            actor_id=actor,
            changes=changes,
            data=data,
            request_id=request_id,
            created_at=now,
        )
    ]
    if verb == "updated":
        for extra in [name for name, applies in source.also.items() if applies(changes)]:
            events.append(
                Event(
                    type=extra,
                    model=events[0].model,
                    object_id=instance.pk,
                    owner_id=owner,
                    actor_id=actor,
                    changes=changes,
                    data=data,
                    request_id=request_id,
                    created_at=now,
                )
            )
    return events


def _write(events, using):
    from core.models import Event

    if len(events) == 1:
        events[0].save(using=using, force_insert=True)
    elif events:
        Event.objects.using(using).bulk_create(events, batch_size=500)
    if events:
        dispatch_after_commit(using)


# -- the hooks ---------------------------------------------------------------


def _saved(sender, instance, created, raw=False, using=None, **kwargs):
    if raw:
        # Fixtures: history_for_loaded_records gives them their "created" entries, and events with them.
        return
    source = _sources[sender]
    if created:
        verb, old = "created", None
    else:
        # Left on the instance by CRMHistoricalRecords: the entry this save was compared with.
        old = instance.__dict__.pop("_history_previous", _MISSING)
        if old is _MISSING:
            return
        verb = "updated"
    changes = _diff(sender, old, instance)
    if not changes:
        return
    actor, request_id = _context()
    data = source.represent(instance)
    _write(_build(source, instance, verb, changes, data, _owner(instance), actor, request_id, timezone.now()), using)


def _deleted(sender, instance, using=None, **kwargs):
    source = _sources[sender]
    actor, request_id = _context()
    pending = getattr(_state, "pending", None)
    cache = pending[1] if pending is not None else None
    events = _build(source, instance, "deleted", {}, None, _owner(instance, cache), actor, request_id, timezone.now())
    if pending is None:
        _write(events, using)
    else:
        pending[0].extend(events)
        pending[2].add(using)


def record(instance, verb, changes, using="default"):
    """Write the event ``<name>.<verb>`` of ``instance`` (one of its source's ``verbs``), with ``changes``.

    For what a service does beyond a save (a merge): its data is the record's
    representation, as in every other event.
    """
    source = _sources[type(instance)]
    if verb not in source.verbs:
        raise ValueError(f"{source.name}.{verb} is not a registered event type.")
    actor, request_id = _context()
    data = source.represent(instance)
    _write(_build(source, instance, verb, changes, data, _owner(instance), actor, request_id, timezone.now()), using)


def collecting_deletions():
    """Start collecting the events of deletions (see ``core.history.batched_delete_history``)."""
    _state.pending = ([], {}, set())


def write_collected():
    pending = getattr(_state, "pending", None)
    _state.pending = None
    if pending is not None:
        for using in pending[2] or {"default"}:
            _write(pending[0], using)


def discard_collected():
    _state.pending = None


def record_bulk(model, instances, *, update=False, previous=None, using="default"):
    """Events for ``instances`` created or updated in bulk (``bulk_history_create``), with one INSERT.

    ``previous`` maps primary keys to the history entries the update is compared
    with; an instance whose tracked fields did not change writes nothing.
    """
    source = _sources.get(model)
    if source is None or not instances:
        return
    actor, request_id = _context()
    now = timezone.now()
    owners = _owners(model, [instance.pk for instance in instances], using)
    events = []
    for instance in instances:
        old = (previous or {}).get(instance.pk) if update else None
        changes = _diff(model, old, instance)
        if not changes:
            continue
        verb = "updated" if update else "created"
        events += _build(
            source, instance, verb, changes, source.represent(instance), owners.get(instance.pk), actor, request_id, now
        )
    _write(events, using)


def _owners(model, pks, using):
    path = access.owner_path(model)
    owners = {}
    for start in range(0, len(pks), 500):
        chunk = pks[start : start + 500]
        owners.update(model._base_manager.using(using).filter(pk__in=chunk).values_list("pk", path))
    return owners


def record_bulk_deletion(queryset):
    """The "deleted" events of every row of ``queryset``, with one ``INSERT ... SELECT`` (before the DELETE)."""
    from core.models import Event

    source = _sources.get(queryset.model)
    if source is None:
        return
    actor, request_id = _context()
    model = queryset.model
    constants = {
        "type": source.type("deleted"),
        "model": model._meta.label_lower,
        "actor": actor,
        "changes": {},
        "request_id": request_id,
        "created_at": timezone.now(),
    }
    columns = {
        "object_id": F("pk"),
        "owner": F(access.owner_path(model)),
        **{name: Value(value, output_field=Event._meta.get_field(name)) for name, value in constants.items()},
    }
    source_rows = queryset.order_by("pk").annotate(**{f"_event_{name}": value for name, value in columns.items()})
    select_sql, params = source_rows.values_list(*[f"_event_{name}" for name in columns]).query.sql_with_params()
    connection = connections[queryset.db]
    quote = connection.ops.quote_name
    targets = [Event._meta.get_field(name).column for name in columns]
    with connection.cursor() as cursor:
        cursor.execute(
            f"INSERT INTO {quote(Event._meta.db_table)} ({', '.join(map(quote, targets))}) {select_sql}", params
        )
        inserted = cursor.rowcount
    if inserted:
        dispatch_after_commit(queryset.db)


# -- positions ---------------------------------------------------------------

# Events placed per relay; a larger backlog is placed by the next relays in turn.
RELAY_BATCH = 5000


def relay(using="default", *, wait=False):
    """Give the committed events that have none a position, in id order; returns how many it placed.

    PostgreSQL only (``core_event_relay``, ``core/migrations/0007_event_position.py``):
    relays take turns under an advisory lock held until the caller's transaction ends,
    and each reads, after taking it, what has committed since the last, so positions
    follow commit order and a position once served has no new event before it. With
    ``wait`` false a relay already running is left to finish and this one does
    nothing (readers); ``wait`` true waits for it (the dispatch job). Called outside a
    transaction it is its own; inside one, it also places that transaction's own events
    and holds the lock to its end, so the request paths call it outside any.
    On SQLite a trigger gives each event its id on insert and this does nothing.
    """
    connection = connections[using]
    if connection.vendor != "postgresql":
        return 0
    with connection.cursor() as cursor:
        cursor.execute("SELECT core_event_relay(%s, %s)", [wait, RELAY_BATCH])
        return cursor.fetchone()[0]


# -- after the commit --------------------------------------------------------


def _enqueue_dispatch():
    from core.tasks import dispatch_events

    dispatch_events()


def dispatch_after_commit(using="default"):
    """Enqueue the dispatch job once the current transaction commits (once per transaction)."""
    connection = connections[using]
    if connection.in_atomic_block and any(func is _enqueue_dispatch for _, func, _ in connection.run_on_commit):
        return
    # Robust: the write is committed whatever the queue says; the periodic sweep sends what this could not.
    transaction.on_commit(_enqueue_dispatch, using=using, robust=True)


def unregister_dispatcher(function):
    if function in _dispatchers:
        _dispatchers.remove(function)


def record_event(type, *, model, object_id, owner_id=None, actor_id=None, data=None, using="default"):
    """Write one event that is not a record's change (``changeset.undone``), dispatched like the others."""
    from core.models import Event

    _, request_id = _context()
    event = Event(
        type=type,
        model=model,
        object_id=object_id,
        owner_id=owner_id,
        actor_id=actor_id,
        changes={},
        data=data,
        request_id=request_id,
        created_at=timezone.now(),
    )
    _write([event], using)
    return event
