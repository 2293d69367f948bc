"""``/api/changesets``: the bulk changes made (imports, batches, merges, reassigns, bulk actions) and their undo.

A rep sees the changesets they made; managers and read-only users see all.
``GET /api/changesets/{id}/rows`` pages the per-row diff; ``POST .../undo``
undoes one (``core.changesets.undo``): 409 with the conflicting records listed
when some changed since (send ``{"skip_conflicts": true}`` to leave them as they
are and undo the rest), or when it is already undone.
"""

import logging

from django.db import OperationalError, transaction
from drf_spectacular.utils import OpenApiParameter, extend_schema
from rest_framework import exceptions, mixins, serializers, status, viewsets
from rest_framework.decorators import action
from rest_framework.response import Response

from core import changesets
from core.access import scope
from core.changesets import Changeset, ChangesetRow
from core.rowlocks import is_deadlock

from .pagination import EnvelopePagination
from .responses import Envelope
from .serializers import StrictJSONTypesMixin
from .viewsets import Deadlocked

logger = logging.getLogger(__name__)


class ChangesetSerializer(serializers.ModelSerializer):
    user_id = serializers.IntegerField(read_only=True, allow_null=True, help_text="who made the change")
    undoes_id = serializers.IntegerField(read_only=True, allow_null=True, help_text="the changeset this one undid")
    undone_by_id = serializers.IntegerField(read_only=True, allow_null=True)
    source = serializers.JSONField(read_only=True, help_text="file name and sha256, request id, action...")
    counts = serializers.JSONField(
        read_only=True, help_text='{"<app>.<model>": {"created": n, "updated": n, "deleted": n}}'
    )

    class Meta:
        model = Changeset
        fields = [
            "id",
            "kind",
            "label",
            "user_id",
            "created_at",
            "source",
            "counts",
            "status",
            "undoes_id",
            "undone_by_id",
            "undone_at",
        ]
        read_only_fields = fields


class ChangesetRowSerializer(serializers.ModelSerializer):
    before = serializers.JSONField(read_only=True, allow_null=True, help_text="the changed fields' old values")
    after = serializers.JSONField(read_only=True, allow_null=True, help_text="the changed fields' new values")

    class Meta:
        model = ChangesetRow
        fields = ["seq", "model", "object_id", "name", "op", "before", "after"]
        read_only_fields = fields


class UndoSerializer(StrictJSONTypesMixin, serializers.Serializer):
    skip_conflicts = serializers.BooleanField(
        required=False, default=False, help_text="Leave the records changed since as they are and undo the rest."
    )


def dry_run_query(what):
    """The ``?dry_run=`` parameter of a bulk change's schema."""
    return [
        OpenApiParameter(
            "dry_run",
            bool,
            description=f"Answer what {what} would make (with the changeset's rows), without writing anything.",
            required=False,
        )
    ]


def dry_run_requested(request):
    """Whether the request asks for a dry run (``?dry_run=true``); anything but a boolean is a 400."""
    value = request.query_params.get("dry_run", "false").lower()
    if value not in ("true", "false", "1", "0"):
        raise exceptions.ValidationError({"dry_run": ["Must be true or false."]})
    return value in ("true", "1")


def changeset_answer(changeset, dry_run):
    """The ``changeset`` of a bulk change's answer: what it made, or with a dry run what it would make."""
    return changeset_preview(changeset) if dry_run else changeset_summary(changeset)


def changeset_summary(changeset):
    """The changeset a bulk change made, as its answer names it (to undo it); None when it wrote nothing."""
    if changeset is None or changeset.pk is None:
        return None
    return {"id": changeset.pk, "kind": changeset.kind, "label": changeset.label, "counts": changeset.counts}


def changeset_preview(changeset):
    """The would-be changeset of a dry run (``recording(..., dry_run=True)``), as the API answers it."""
    return {
        "kind": changeset.kind,
        "label": changeset.label,
        "counts": changeset.counts,
        "rows": ChangesetRowSerializer(changeset.preview or [], many=True).data,
    }


class ChangesetViewSet(mixins.ListModelMixin, mixins.RetrieveModelMixin, viewsets.GenericViewSet):
    """Bulk changes, newest first; each with its per-row diff and its undo."""

    queryset = Changeset.objects.all()
    serializer_class = ChangesetSerializer
    extra_error_statuses = {
        "undo": {
            "409": "Already undone, or records changed since (listed in `error.conflicts`), or a change of the same "
            "records at the same moment met it (`conflict`: nothing was undone; try again)."
        }
    }

    def get_queryset(self):
        return scope(super().get_queryset(), self.request.user)

    @extend_schema(responses=ChangesetRowSerializer(many=True))
    @action(detail=True, methods=["get"], filter_backends=[], pagination_class=EnvelopePagination)
    def rows(self, request, pk=None):
        """The records the changeset created, updated and deleted, in order, with their values before and after."""
        changeset = self.get_object()
        page = self.paginate_queryset(changeset.rows.order_by("seq"))
        return self.get_paginated_response(ChangesetRowSerializer(page, many=True).data)

    @extend_schema(request=UndoSerializer, responses=ChangesetSerializer)
    @action(detail=True, methods=["post"], filter_backends=[])
    def undo(self, request, pk=None):
        """Undo the changeset; the answer is the undo's own changeset (undo it to redo)."""
        changeset = self.get_object()
        body = UndoSerializer(data=request.data)
        body.is_valid(raise_exception=True)
        refusal = changesets.undo_refusal(request.user, changeset)
        if refusal:
            raise exceptions.PermissionDenied(refusal)
        try:
            with transaction.atomic():
                done = changesets.undo(changeset, request.user, skip_conflicts=body.validated_data["skip_conflicts"])
        except OperationalError as exc:
            if not is_deadlock(exc):
                raise
            # Aborted in a deadlock with another writer, all of it rolled back: a 409, as a resource's write.
            logger.info("%s %s deadlocked", request.method, request.path, exc_info=True)
            raise Deadlocked() from exc
        except changesets.UndoRefused as refused:
            error = {"code": refused.code, "message": refused.message}
            if refused.conflicts:
                error["conflicts"] = refused.conflicts
            return Response(Envelope(success=False, error=error), status=status.HTTP_409_CONFLICT)
        return Response(ChangesetSerializer(done).data)
