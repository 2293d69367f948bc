"""``POST /api/<resource>/batch``: many creates, updates, upserts and deletes in one request.

Each item goes the way the single-record request would: the same serializer,
the same scope (another rep's record is a 404 for that item), the same row
lock and ``If-Match``, the same save (history and event with it). Items run in
the order of the body's lists, each list in its own order, and each in a
savepoint of its own: a failed item leaves nothing behind and the others go on.

With ``?atomic=true`` the batch is all or nothing: every item is still tried
and answered, but one failure rolls all of them back (valid items are answered
424, "not written") and the batch answers 400. Otherwise the batch answers 200
when every item succeeded and 207 when some failed.

The request as a whole runs in the write transaction of the base viewset, so
an ``Idempotency-Key`` claims and replays a batch like any other POST.

A batch is one changeset (``core/changesets.py``, the request id in its source):
``data.changeset`` names it, to undo the batch. With ``?dry_run=true`` every item
runs and is answered as usual, then everything is rolled back: ``data.changeset``
is the changeset the batch would make, with its rows.
"""

from contextlib import contextmanager

from django.core.exceptions import PermissionDenied
from django.db import transaction
from django.http import Http404
from rest_framework import exceptions, serializers, status

from core import access, changesets, tags

from .exceptions import error_of
from .query import validated_query
from .responses import Envelope

MAX_ITEMS = 100
OPERATIONS = ("create", "update", "upsert", "delete")
MAX_ID = 2**63 - 1
MULTI_STATUS = 207
FAILED_DEPENDENCY = 424

ROLLED_BACK_ERROR = {
    "code": "not_written",
    "message": "Valid, but not written: another item of the atomic batch failed.",
}


class BatchRequestSerializer(serializers.Serializer):
    """The body: up to ``MAX_ITEMS`` items in all; each item is checked on its own when it runs."""

    create = serializers.ListField(child=serializers.JSONField(), required=False)
    update = serializers.ListField(child=serializers.JSONField(), required=False)
    upsert = serializers.ListField(child=serializers.JSONField(), required=False)
    delete = serializers.ListField(child=serializers.JSONField(), required=False)

    def validate(self, attrs):
        unknown = sorted(set(self.initial_data) - set(OPERATIONS))
        if unknown:
            raise serializers.ValidationError({name: ["Unknown operation."] for name in unknown})
        total = sum(len(items) for items in attrs.values())
        if total == 0:
            raise serializers.ValidationError("A batch needs at least one item.")
        if total > MAX_ITEMS:
            raise serializers.ValidationError(f"A batch holds at most {MAX_ITEMS} items; this one has {total}.")
        return attrs


class BatchQuerySerializer(serializers.Serializer):
    # ``?atomic=`` (empty) means not given, as every optional query parameter of the API.
    atomic = serializers.BooleanField(required=False, allow_null=True, default=False)
    dry_run = serializers.BooleanField(required=False, allow_null=True, default=False)


class _RollBack(Exception):
    """Raised to roll an atomic batch back once every item has been answered."""


class ItemError(exceptions.ValidationError):
    """An item that is not even shaped like one (a delete that is not an id, say)."""


def _record_id(value, field="id"):
    if isinstance(value, bool) or not isinstance(value, int) or not 1 <= value <= MAX_ID:
        raise ItemError({field: ["A record id (a positive integer) is required."]})
    return value


def _object(item):
    if not isinstance(item, dict):
        raise ItemError("Each item must be a JSON object.")
    return item


def _if_match(item):
    value = item.get("if_match")
    if value is not None and not isinstance(value, str):
        raise ItemError({"if_match": ["An ETag (a string) is expected."]})
    return value


class BatchRunner:
    """Runs the items of one batch through ``view``, a ``CRMModelViewSet``."""

    def __init__(self, view, request):
        self.view = view
        self.request = request

    def run(self):
        body = BatchRequestSerializer(data=self.request.data)
        body.is_valid(raise_exception=True)
        query = validated_query(self.request, BatchQuerySerializer).validated_data
        atomic, dry_run = bool(query["atomic"]), bool(query["dry_run"])
        # The body's order: Python keeps a JSON object's keys as they came.
        items = [
            (op, index, item) for op in self.request.data for index, item in enumerate(body.validated_data.get(op, ()))
        ]
        results = []
        changeset = None
        model = self.view.queryset.model
        self._hold_tags(model, items)
        # Then the parents the items point their records at, before any item locks or validates a record.
        self.view.hold_parents([item for op, _index, item in items if op != "delete"])
        try:
            with changesets.recording(
                "batch",
                user=self.request.user,
                label=f"Batch of {model._meta.label_lower}",
                source={"request_id": getattr(self.request, "request_id", ""), "resource": model._meta.label_lower},
                dry_run=dry_run,
            ) as changeset:
                with transaction.atomic() if atomic else _nothing():
                    results = [self._run_item(op, index, item) for op, index, item in items]
                    if atomic and any("error" in result for result in results):
                        raise _RollBack()
        except _RollBack:
            changeset = None
            for result in results:
                if "error" not in result:
                    result.pop("data", None)
                    result.pop("etag", None)
                    result.update(status=FAILED_DEPENDENCY, error=dict(ROLLED_BACK_ERROR))
        return self._answer(results, atomic, changeset, dry_run)

    def _hold_tags(self, model, items):
        """Hold the tags the items may link before any item locks a record (``tags.hold_tags``): those
        they name, and those carried by the records they update, upsert or delete. Otherwise an item
        could lock a record carrying a tag that a later item links elsewhere, while a rename of the tag
        waits for that record: a deadlock."""
        if not tags.holds_tags(model):
            return
        names, ids = [], []
        for op, _index, item in items:
            if isinstance(item, dict) and isinstance(item.get("tags"), list):
                names.extend(name for name in item["tags"] if isinstance(name, str))
            if op == "delete":
                ids.append(item)
            elif op == "update" and isinstance(item, dict):
                ids.append(item.get("id"))
            elif op == "upsert" and isinstance(item, dict):
                ids.append(self.view.upsert_match(item))
        ids = [pk for pk in ids if isinstance(pk, int) and not isinstance(pk, bool) and 1 <= pk <= MAX_ID]
        tags.hold_tags(model, names=names, records=model._base_manager.filter(pk__in=ids))

    def _run_item(self, op, index, item):
        result = {"op": op, "index": index}
        if op in ("update", "delete") and isinstance(item, dict | int) and not isinstance(item, bool):
            result["id"] = item.get("id") if isinstance(item, dict) else item
        try:
            with transaction.atomic():
                result.update(getattr(self, f"_{op}")(item))
        except (exceptions.APIException, Http404, PermissionDenied) as exc:
            result["status"], result["error"] = error_of(exc)
        return result

    def _success(self, status_code, data, **extra):
        return {"status": status_code, **extra, "data": data, "etag": self.view._etag(data)}

    def _create(self, item):
        serializer = self.view.get_serializer(data=_object(item))
        serializer.is_valid(raise_exception=True)
        self.view.perform_create(serializer)
        return self._success(status.HTTP_201_CREATED, serializer.data)

    def _update(self, item, instance=None):
        item = _object(item)
        if instance is None:
            instance = self.view.batch_record(_record_id(item.get("id")), if_match=_if_match(item))
        data = {name: value for name, value in item.items() if name not in ("id", "if_match")}
        serializer = self.view.get_serializer(instance, data=data, partial=True)
        serializer.is_valid(raise_exception=True)
        self.view.perform_update(serializer)
        return self._success(status.HTTP_200_OK, serializer.data)

    def _upsert(self, item):
        item = _object(item)
        if "id" in item or "if_match" in item:
            raise ItemError("An upsert item is matched by its unique key, not by id; use update for ids.")
        pk = self.view.upsert_match(item)
        if pk is None:
            try:
                with transaction.atomic():
                    return {**self._create(item), "created": True}
            except exceptions.ValidationError:
                # Another request may have created the record since the match (on PostgreSQL both then
                # create, and the second meets the unique key): it is the one to update. Otherwise the
                # item's own errors stand.
                pk = self.view.upsert_match(item)
                if pk is None:
                    raise
        instance = self.view.batch_record(pk, if_match=None)
        return {**self._update(item, instance), "created": False}

    def _delete(self, item):
        pk = _record_id(item)
        if not access.may_delete(self.request.user, self.view.queryset.model):
            raise exceptions.PermissionDenied("Your role may not delete these records; ask a manager.")
        payload = self.view.delete_record(self.view.batch_record(pk, if_match=None, delete=True))
        return {"status": status.HTTP_200_OK, "data": payload}

    def _answer(self, results, atomic, changeset, dry_run):
        failed = sum(1 for result in results if result["status"] >= 400 and result["status"] != FAILED_DEPENDENCY)
        data = {"atomic": atomic, "succeeded": len(results) - failed, "failed": failed, "results": results}
        # Imported here: core.api.changesets reaches the schema, which imports this module.
        from .changesets import changeset_preview, changeset_summary

        if dry_run:
            data["dry_run"] = True
            data["changeset"] = changeset_preview(changeset) if changeset is not None else None
        else:
            data["changeset"] = changeset_summary(changeset)
        if atomic and failed:
            data["succeeded"] = 0
            body = Envelope(success=False, error=_batch_error(failed, rolled_back=True), data=data)
            return body, status.HTTP_400_BAD_REQUEST
        if failed:
            return Envelope(success=False, error=_batch_error(failed, rolled_back=False), data=data), MULTI_STATUS
        return Envelope(success=True, data=data), status.HTTP_200_OK


def _batch_error(failed, *, rolled_back):
    items = "1 item" if failed == 1 else f"{failed} items"
    if rolled_back:
        return {"code": "batch_rolled_back", "message": f"{items} failed: nothing was written (atomic batch)."}
    return {"code": "batch_partially_failed", "message": f"{items} failed; the others were written."}


@contextmanager
def _nothing():
    yield
