"""The base of every resource viewset: the CRM's conventions, in the order a request meets them.

1. ``dispatch``: a write (POST, PUT, PATCH, DELETE) runs in one database
   transaction, from the claim of its ``Idempotency-Key`` to the stored answer.
2. ``initial``: authentication, permissions and throttling, outside the
   transaction; a create of a resource that allows it (``validate_before_write``)
   is validated there too; then the transaction begins and a POST's
   ``Idempotency-Key`` is claimed in it (``idempotency.py``).
3. ``get_queryset`` / ``filter_queryset``: the rows the user may see
   (``core.access.scope``); query parameters filter collections only.
4. ``get_object``: the record a detail URL names. A write first holds the parents
   its body names (``hold_parents``: a deal's customer, ``FOR KEY SHARE`` on
   PostgreSQL; a create too, a batch for all its items), parent before record as
   their deletes lock them; then it locks its row as its UPDATE or DELETE will
   (``_lock_row``: ``SELECT ... FOR NO KEY UPDATE`` for a change, which those
   holds do not wait for nor hold up, ``FOR UPDATE`` for a delete, which waits for
   them; SQLite's IMMEDIATE transactions already serialise writers), then reads it
   and checks ``If-Match`` (``conditional.py``). Users who see everything read it through the
   viewset's ``detail_reader`` (``fastsql.py``), a sales rep's ``retrieve``
   through the same reader scoped as the queryset is, others through the queryset.
   The id of a record merged into another answers 404 with ``error.merged_into``.
5. The actions: ``retrieve`` (ETag, 304), ``create``, ``update`` (PUT is
   partial, as in the original API), ``destroy`` (a message and what went with
   the record), with ``perform_create`` / ``perform_update`` saving; ``batch``
   runs many of those in one request, item by item (``batch.py``).
6. ``handle_exception``: a replayed ``Idempotency-Key`` answers with the stored response.
7. ``finalize_response``: the answer to a claimed key is stored with it.
"""

import logging
from contextlib import ExitStack, contextmanager

from django.core.exceptions import FieldDoesNotExist
from django.db import IntegrityError, OperationalError, connection, models, router, transaction
from django.http import Http404
from rest_framework import exceptions, status, viewsets
from rest_framework.decorators import action
from rest_framework.response import Response

from core import access, merges
from core.history import batched_delete_history
from core.rowlocks import holds_keys, is_deadlock, lock_keys, lock_rows

from . import idempotency
from .batch import BatchRunner
from .conditional import PreconditionFailed, compute_etag, if_match_passes, if_none_match_matches
from .fastsql import MODEL_ROW, url_pk
from .responses import MessageResponse
from .serializers import parents_named

logger = logging.getLogger(__name__)

WRITE_METHODS = frozenset({"POST", "PUT", "PATCH", "DELETE"})
# Writes that read the record they change: they lock its row and honour If-Match.
RECORD_WRITE_METHODS = frozenset({"PUT", "PATCH", "DELETE"})


def changes_anything(instance, validated_data):
    """Whether saving ``validated_data`` onto ``instance`` would change any of its fields."""
    for name, value in validated_data.items():
        try:
            field = instance._meta.get_field(name)
        except FieldDoesNotExist:
            return True
        if field.many_to_many or field.one_to_many:
            return True
        if field.many_to_one or field.one_to_one:
            current, value = getattr(instance, field.attname), None if value is None else value.pk
        else:
            current = getattr(instance, field.attname)
        if current != value:
            return True
    return False


# Every resource's external_id is unique when set; both databases name the column (or the
# constraint, "<model>_external_id_unique") in the error.
EXTERNAL_ID_UNIQUE = {"external_id": ("external_id", "A record with this external_id already exists.")}


# Actions that save one record and answer the save's error alone (``_save_block``).
SINGLE_SAVES = frozenset({"create", "update", "partial_update"})


@contextmanager
def _rolled_back_on_error():
    try:
        yield
    except BaseException:
        transaction.set_rollback(True)
        raise


def _names_records(value):
    """Whether a validated value holds model instances (related records named by id)."""
    if isinstance(value, models.Model):
        return True
    return isinstance(value, (list, tuple)) and any(isinstance(item, models.Model) for item in value)


class Conflict(exceptions.APIException):
    status_code = status.HTTP_409_CONFLICT
    default_detail = "The change conflicts with the current state of the data; reload and try again."
    default_code = "conflict"


class Deadlocked(Conflict):
    default_detail = (
        "The change met another change of the same records at the same moment and was not written; try again."
    )


class MergedAway(exceptions.NotFound):
    """The record was merged into another (``core/merges.py``): a 404 whose error names the survivor."""

    default_detail = "This record was merged into another; error.merged_into is its id."

    def __init__(self, survivor_id):
        super().__init__()
        self.merged_into = survivor_id


class CRMModelViewSet(viewsets.ModelViewSet):
    """A model viewset with the CRM's conventions (the module's docstring lists them in order).

    - Every action built on ``get_queryset()``/``get_object()`` sees only the rows
      the user may see (``core.access.scope``, along the owner path the model's
      app declared): out of scope is a 404. New records remember their creator.
    - A unique constraint that loses a race with a concurrent writer becomes a
      400 on the field named in ``unique_constraint_fields``.
    - An update that changes nothing writes nothing: no history entry, and
      ``updated_at`` and so the ETag stay as they were.
    """

    # Ids are integers: anything else is not a route, so it gets the JSON 404.
    lookup_value_regex = r"[0-9]+"
    # Database constraint name -> (field, message) for IntegrityErrors.
    unique_constraint_fields = {}
    deleted_message = "Deleted."
    # Figures derived from other records (a customer's interaction count, say): they
    # change without the record changing, so they must not make an If-Match stale.
    etag_ignored_fields = frozenset()
    # How ``retrieve`` reads its record for a user who sees everything, or scoped for a sales
    # rep (a reader from fastsql.py, or None for the queryset). It must build what
    # get_queryset() would; the other detail actions (writes, history) need only the model's row.
    detail_reader = MODEL_ROW
    # Whether a sales rep's ``retrieve`` reads through ``detail_reader`` too, scoped as
    # get_queryset() scopes it: only where get_queryset() is ``core.access.scope`` of the
    # reader's rows (tests/core/api/test_fast_paths.py holds each such resource to it).
    detail_reader_for_reps = False
    # The unique keys a batch's upsert item is matched by, in order (see ``upsert_match``).
    upsert_keys = ("external_id",)
    # Records with an owner (the field's name): a new one is the creator's unless a manager
    # named another owner (the serializer refuses anyone else's choice).
    owner_field = None
    # Records read with summary figures (``queryset.with_summary()``, by a list and a detail):
    # a write answers with them too, read by ``detail_reader``. The figures of a record
    # deleted by another request since the write, or None for records without figures.
    summary_defaults = None
    # Further keys of the answer to a create, for the created record (name -> ``hint(record, request)``,
    # always in the answer, empty when it has nothing to say): the apps above the resource register them in its parts
    # (``customers.parts.add_create_hint``). Outside the ETag, which is the record's.
    create_hints = None
    # Validate a create before its transaction begins (on SQLite, before it takes the one write lock),
    # for resources whose validation only reads and whose every unique check a constraint named in
    # ``unique_constraint_fields`` repeats: a clash committed meanwhile still meets the same 400 from the
    # save (``_save``). A create that names related records (a company, an owner) by id is validated
    # again under the lock, so that those rows are read as the write finds them.
    validate_before_write = False

    _idempotency_fingerprint = None
    _validated_early = None
    _created = None
    _idempotency_record = None
    _write_transaction = None

    # 1. The transaction of a write.

    def dispatch(self, request, *args, **kwargs):
        if request.method not in WRITE_METHODS:
            return super().dispatch(request, *args, **kwargs)
        if request.method == "POST" and idempotency.META_KEY in request.META:
            # The raw body is read here, before DRF parses it; the size limit middleware has already run.
            self._idempotency_fingerprint = idempotency.request_fingerprint(request)
        # The transaction begins in initial() and ends here, once the answer is final (and stored).
        response = None
        try:
            with ExitStack() as self._write_transaction:
                response = super().dispatch(request, *args, **kwargs)
        except IntegrityError:
            if response is None:
                raise  # from the view itself, not from its COMMIT: a fault, answered 500 as any other
            # A constraint checked at COMMIT (PostgreSQL's foreign keys are deferred): a record the write
            # names but does not hold (a user; its parents it holds, ``hold_parents``) was deleted meanwhile,
            # or one it deletes was given a new child. All of it, a claimed Idempotency-Key included, was
            # rolled back: the client re-reads and retries.
            logger.info("%s %s conflicted at COMMIT", request.method, request.path, exc_info=True)
            self._idempotency_record = None
            return self.finalize_response(self.request, self.handle_exception(Conflict()), *args, **kwargs)
        except OperationalError as exc:
            if not is_deadlock(exc):
                raise
            # PostgreSQL aborted the write in a deadlock with another transaction: all of it was rolled
            # back, a claimed Idempotency-Key included; the client retries.
            logger.info("%s %s deadlocked", request.method, request.path, exc_info=True)
            self._idempotency_record = None
            return self.finalize_response(self.request, self.handle_exception(Deadlocked()), *args, **kwargs)
        return response

    # 2. Who asks, then the transaction and the Idempotency-Key.

    def initial(self, request, *args, **kwargs):
        super().initial(request, *args, **kwargs)
        if self._write_transaction is None:
            return
        key = None
        if self._idempotency_fingerprint is not None and request.user.is_authenticated:
            key = request.META[idempotency.META_KEY]
            if not idempotency.valid_key(key):
                raise idempotency.InvalidIdempotencyKey()
        if self.validate_before_write and self.action == "create":
            self._validated_early = self._validate_early(request)
        # Only now, with the request let in: on SQLite the transaction holds the database's one
        # write lock from its BEGIN (IMMEDIATE), which authentication and rate limits need not wait for.
        self._write_transaction.enter_context(transaction.atomic())
        if key is not None:
            self._idempotency_record = idempotency.claim(request.user, key, self._idempotency_fingerprint)

    def _validate_early(self, request):
        """The create's serializer, validated outside the transaction, or what reading its body raised.

        Its outcome is answered where the create's validation always was: after the ``Idempotency-Key``'s
        claim (a replayed key answers the stored response), in ``create``. A refusal writes nothing, so
        refusing on what was read a moment before the lock is as if the request had come that moment
        earlier. None when the create must be validated under the lock (it names related records).
        """
        try:
            serializer = self.get_serializer(data=request.data)
        except exceptions.APIException as exc:
            # (DRF keeps an empty body after a parse error: the error itself must be raised again.)
            return exc
        if serializer.is_valid() and any(_names_records(value) for value in serializer.validated_data.values()):
            return None
        return serializer

    # 3. The rows.

    def get_queryset(self):
        if self.summary_defaults is not None and self.action in ("list", "retrieve"):
            user = self.request.user
            if self.detail_reader.per_viewer and not access.sees_everything(user):
                # Figures as the user sees them (a company's: of the people they see), annotated for them.
                queryset = self.detail_reader.annotated(self.queryset.all(), user)
            else:
                queryset = self.summary_queryset().all()
        else:
            queryset = super().get_queryset()
        return access.scope(queryset, self.request.user)

    @classmethod
    def summary_queryset(cls):
        """``queryset.with_summary()``, annotated once per class: annotating resolves the figures'
        correlated subqueries, which cost as much as compiling them (tests/core/api/test_summary_queryset.py)."""
        annotated = cls.__dict__.get("_summary_queryset")
        if annotated is None:
            annotated = cls.queryset.with_summary()
            cls._summary_queryset = annotated
        return annotated

    def filter_queryset(self, queryset):
        # Query parameters filter collections (lists, and list-level actions such as an
        # export); on one record (``/customers/7``) they mean nothing, as in the original
        # API, and building the FilterSet on every detail request costs as much as the read.
        if getattr(self, "detail", False):
            return queryset
        return super().filter_queryset(queryset)

    # 4. The record.

    def get_object(self):
        writing = self.request.method in RECORD_WRITE_METHODS
        if_match = self.request.headers.get("If-Match") if writing else None
        return self._find(self._url_pk(), writing=writing, if_match=if_match, delete=self.request.method == "DELETE")

    def _find(self, pk, *, writing, if_match, delete=False):
        """The URL's record, whose primary key ``pk`` is ``_url_pk()`` (read once by the caller); ``writing``
        locks it first, ``delete`` as its DELETE will (``_lock_row``)."""
        if writing:
            # Every write locks its row before reading it, If-Match or not: otherwise a
            # delete committed between the read and the save would make Django's save()
            # find no row to update and insert it again, without its children.
            self._lock_row(pk, delete=delete)
        try:
            user = self.request.user
            if self.detail_reader is None or self.lookup_field != "pk":
                instance = super().get_object()
            elif access.sees_everything(user):
                instance = self._read(pk, self.detail_reader if self.action == "retrieve" else MODEL_ROW)
            elif self.detail_reader_for_reps and self.action == "retrieve" and access.role_of(user) == access.REP:
                # The reader's query, scoped as the queryset would be, compiled once for every rep.
                instance = self._read(pk, self.detail_reader, rep=user)
            else:
                instance = super().get_object()
        except Http404:
            self._raise_if_merged(pk)
            raise
        if if_match is not None and not if_match_passes(if_match, self._etag(instance)):
            raise PreconditionFailed()
        return instance

    def _raise_if_merged(self, pk):
        """The 404 of an id merged into another names the survivor (``error.merged_into``), if the user sees it."""
        if pk is None:
            return
        model = self.queryset.model
        survivor = merges.merged_into(model, pk)
        if (
            survivor is not None
            and access.scope(model._default_manager.filter(pk=survivor), self.request.user).exists()
        ):
            raise MergedAway(survivor)

    def _url_pk(self):
        """The primary key the URL names, or None when it can name no row (``fastsql.url_pk``)."""
        return url_pk(self.queryset.model, self.kwargs[self.lookup_url_kwarg or self.lookup_field])

    def _lock_row(self, pk, *, delete):
        """Lock the row ``pk`` apart from the view's queryset (which may join): ``FOR NO KEY UPDATE`` for a write that
        changes it, ``FOR UPDATE`` for its delete (``rowlocks.lock_rows``; nothing on SQLite, whose writers queue, nor
        outside a transaction, as when OPTIONS simulates a PUT to list the allowed actions).

        Either waits for another writer of the row, and a delete waited for is then read as gone. The lock of a
        change, the one its UPDATE takes, lets the writes that point other records at the row go on (they hold it
        ``FOR KEY SHARE``, ``hold_parents``): a customer's update neither waits for an interaction being logged for
        it nor holds it up. A delete's waits for them, and its DELETE then takes their records along. (An UPDATE
        that changes a unique key other tables could point at, a company's ``domain``, takes ``FOR UPDATE`` itself,
        as PostgreSQL decides: such a change waits for those writes at its save.)"""
        if pk is not None:  # otherwise get_object() answers 404
            lock_rows(self.queryset.model._base_manager.filter(pk=pk), delete=delete)

    def _read(self, pk, reader, rep=None):
        """The record ``pk`` through ``reader`` (the user's scope is everything, or the sales rep ``rep``'s), as
        get_object() would find it."""
        instance = None if pk is None else reader.read(self.queryset.model, pk, self.queryset.db, rep=rep)
        if instance is None:
            raise Http404
        self.check_object_permissions(self.request, instance)
        return instance

    def _etag(self, instance_or_data):
        data = instance_or_data if isinstance(instance_or_data, dict) else self.get_serializer(instance_or_data).data
        return compute_etag(data, self.etag_ignored_fields)

    def _with_etag(self, response):
        if isinstance(response.data, dict) and 200 <= response.status_code < 300:
            response["ETag"] = self._etag(response.data)
        return response

    # 5. The actions.

    def retrieve(self, request, *args, **kwargs):
        data = self.get_serializer(self.get_object()).data
        etag = self._etag(data)
        if_none_match = request.META.get("HTTP_IF_NONE_MATCH")
        if if_none_match is not None and if_none_match_matches(if_none_match, etag):
            return Response(status=status.HTTP_304_NOT_MODIFIED, headers={"ETag": etag})
        return Response(data, headers={"ETag": etag})

    def create(self, request, *args, **kwargs):
        serializer, self._validated_early = self._validated_early, None
        if isinstance(serializer, Exception):
            raise serializer
        if serializer is None:
            serializer = self.get_serializer(data=request.data)
        self.hold_parents([request.data], serializer)
        # DRF's CreateModelMixin.create, with the serializer that may have been validated already.
        serializer.is_valid(raise_exception=True)
        self.perform_create(serializer)
        headers = self.get_success_headers(serializer.data)
        response = self._with_etag(Response(serializer.data, status=status.HTTP_201_CREATED, headers=headers))
        if self.create_hints and self._created is not None and isinstance(response.data, dict):
            for name, hint in self.create_hints.items():
                response.data[name] = hint(self._created, request)
        return response

    def update(self, request, *args, **kwargs):
        try:
            body = request.data
        except (exceptions.ParseError, exceptions.UnsupportedMediaType):
            # Read before the record to hold its parents first, a body that cannot be read is still answered
            # after a record that is not there (404) or has changed (If-Match, 412), as the content is read last.
            self.get_object()
            raise
        self.hold_parents([body])
        kwargs["partial"] = True
        return self._with_etag(super().update(request, *args, **kwargs))

    def destroy(self, request, *args, **kwargs):
        return MessageResponse(self.deleted_message, self.delete_record(self.get_object()), status=status.HTTP_200_OK)

    def delete_record(self, instance):
        """Delete ``instance`` (found by ``get_object``); what went with it, as the answer's data."""
        # Deletion history (a cascade's included) is written in bulk, in the request's transaction.
        with batched_delete_history():
            payload = {"id": instance.pk}
            payload.update(self.perform_destroy(instance) or {})
        return payload

    def hold_parents(self, items, serializer=None):
        """Hold the parents that the write bodies ``items`` point their records at (``serializers.parents_named``:
        an interaction's customer, a customer's company), before any record is locked or validated.

        A parent's delete locks the parent (``FOR UPDATE``), then the records pointing at it. Held only by the
        check of the foreign key at COMMIT (PostgreSQL's keys are deferred), a parent deleted between the
        validation and the COMMIT failed the write there (a 409, nothing written), and a record locked before its
        parent deadlocked with a delete waiting for it. Held first, with the lock that check takes
        (``rowlocks.lock_keys``: one query), a delete under way is waited for, and the validation, after, finds its
        parent gone: the 400 of an unknown id, as had the request come after the delete. A delete that comes after
        waits for the write, then goes on as the model says. On SQLite (its writers queue) nothing is run.
        """
        if holds_keys(router.db_for_write(self.queryset.model)):
            lock_keys(*parents_named(serializer or self.get_serializer(), items))

    @action(detail=False, methods=["post"], filter_backends=[])
    def batch(self, request):
        """Create, update, upsert and delete up to 100 records, answered item by item (see docs/api.md)."""
        body, status_code = BatchRunner(self, request).run()
        return Response(body, status=status_code)

    def batch_record(self, pk, *, if_match, delete=False):
        """The record ``pk`` for a batch item to change (or ``delete``), as ``get_object`` finds it for a write
        (locked, scoped)."""
        with self._naming(pk):
            return self._find(self._url_pk(), writing=True, if_match=if_match, delete=delete)

    def upsert_match(self, item):
        """The id of the record (in scope) an upsert item names by one of ``upsert_keys``, or None."""
        rows = self.get_queryset()
        for key in self.upsert_keys:
            value = item.get(key)
            # A NUL is in no stored key (and PostgreSQL refuses it in a query): the create refuses it.
            if isinstance(value, str) and value.strip() and "\x00" not in value:
                pk = self.upsert_lookup(rows, key, value.strip()).values_list("pk", flat=True).first()
                if pk is not None:
                    return pk
        return None

    def upsert_lookup(self, rows, key, value):
        return rows.filter(**{key: value})

    @contextmanager
    def _naming(self, pk):
        # get_object() reads the record's id from the URL's kwargs; a batch item names it instead.
        name = self.lookup_url_kwarg or self.lookup_field
        saved = self.kwargs.get(name)
        self.kwargs[name] = str(pk)
        try:
            yield
        finally:
            if saved is None:
                self.kwargs.pop(name, None)
            else:
                self.kwargs[name] = saved

    def perform_create(self, serializer):
        extra = {"created_by": self.request.user}
        if self.owner_field is not None:
            extra[self.owner_field] = serializer.validated_data.get(self.owner_field, self.request.user)
        self._save(serializer, **extra)
        self._created = serializer.instance
        self._read_summary(serializer)

    def perform_update(self, serializer):
        if changes_anything(serializer.instance, serializer.validated_data):
            self._save(serializer)
        self._read_summary(serializer)

    def _read_summary(self, serializer):
        """Answer a write with the record's summary figures (for resources that have them)."""
        if self.summary_defaults is None:
            return
        saved = serializer.instance
        reloaded = self.read_with_figures(saved)
        if reloaded is None:
            # Deleted by another request since the write, and its records with it (or, for a rep,
            # no longer theirs to see): answered as written, with nothing left to sum up.
            for name, value in self.summary_defaults.items():
                setattr(saved, name, value)
            reloaded = saved
        serializer.instance = reloaded

    def read_with_figures(self, record):
        """``record`` read again by ``detail_reader``, with its summary figures as the user sees them, or None."""
        user = self.request.user
        rep = user if self.detail_reader.per_viewer and access.role_of(user) == access.REP else None
        return self.detail_reader.read(type(record), record.pk, record._state.db, rep=rep)

    def _save(self, serializer, **extra):
        try:
            with self._save_block():
                serializer.save(**extra)
        except IntegrityError as exc:
            text = str(exc)
            for constraint, (field, message) in {**self.unique_constraint_fields, **EXTERNAL_ID_UNIQUE}.items():
                if constraint in text:
                    raise exceptions.ValidationError({field: [message]}) from exc
            raise Conflict() from exc

    def _save_block(self):
        """Around a save: a savepoint, so that a constraint error rolls back the save alone and the request
        goes on to answer a 400 (and, with an Idempotency-Key, to store it, or a batch to answer its other
        items). A single create or update without a key has nothing else in its transaction to keep (its
        answer is built from the error alone): a failed save rolls the whole transaction back instead, and
        the save costs no SAVEPOINT and RELEASE statements."""
        if self._idempotency_record is None and self.action in SINGLE_SAVES and connection.in_atomic_block:
            return _rolled_back_on_error()
        return transaction.atomic()

    # 6-7. The answer.

    def handle_exception(self, exc):
        if isinstance(exc, idempotency.Replay):
            return idempotency.replay_response(exc.record)
        return super().handle_exception(exc)

    def finalize_response(self, request, response, *args, **kwargs):
        response = super().finalize_response(request, response, *args, **kwargs)
        record = self._idempotency_record
        if record is None or not isinstance(response, Response):
            return response
        if response.status_code >= 500:
            # Nothing is kept: the write rolls back and the client may retry with the same key.
            transaction.set_rollback(True)
            return response
        idempotency.remember(record, response)
        return response
