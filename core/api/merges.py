"""``POST /api/<resource>/merge``: merge duplicates into one survivor (``core/merges.py``).

One mixin for every mergeable resource; the viewset's ``merge`` action (with its
schema) calls ``run_merge`` with its model's merge service. ``?dry_run=true`` runs the merge and rolls it back,
answering what it would make. The answer is the survivor as the API shows it,
with the merged ids and the counts of what moved to it.
"""

from django.db import transaction
from rest_framework import exceptions, serializers
from rest_framework.response import Response

from core import merges

from .batch import MAX_ID
from .changesets import changeset_preview, changeset_summary, dry_run_query, dry_run_requested
from .serializers import StrictJSONTypesMixin


class MergeSerializer(StrictJSONTypesMixin, serializers.Serializer):
    """The body of a merge (``fields`` is built in ``get_fields``: the name is the Serializer's own attribute)."""

    def get_fields(self):
        return {
            "survivor_id": serializers.IntegerField(min_value=1, max_value=MAX_ID, help_text="The record that stays."),
            "merged_ids": serializers.ListField(
                child=serializers.IntegerField(min_value=1, max_value=MAX_ID),
                allow_empty=False,
                min_length=1,
                max_length=merges.MAX_MERGED,
                help_text="The records merged into the survivor, then deleted; their ids answer 404 with "
                "error.merged_into.",
            ),
            "fields": serializers.DictField(
                child=serializers.IntegerField(min_value=1, max_value=MAX_ID),
                required=False,
                default=dict,
                help_text="Field (or custom_fields.<key>) -> the id of the record whose value the survivor takes. "
                "Unnamed fields keep the survivor's value, or the first non-empty one of the others.",
            ),
        }


MERGE_QUERY = dry_run_query("the merge")


def merge_response_schema(serializer_class):
    """The answer's schema: the resource, plus ``merged_ids``, ``moved``, ``dry_run`` and ``changeset``."""

    class MergeResponse(serializer_class):
        merged_ids = serializers.ListField(child=serializers.IntegerField(), read_only=True)
        moved = serializers.DictField(child=serializers.IntegerField(), read_only=True)
        dry_run = serializers.BooleanField(read_only=True)
        changeset = serializers.JSONField(
            read_only=True,
            help_text="The merge's changeset (`id`, `kind`, `label`, `counts`; undo it with "
            "`POST /api/changesets/{id}/undo`), or with `?dry_run=true` the one it would make, with its `rows`.",
        )

        class Meta(serializer_class.Meta):
            fields = [*serializer_class.Meta.fields, "merged_ids", "moved", "dry_run", "changeset"]

    MergeResponse.__name__ = f"{serializer_class.__name__.removesuffix('Serializer')}MergeResult"
    return MergeResponse


class MergeMixin:
    """What the ``merge`` action of a ``CRMModelViewSet`` runs, given its model's merge service."""

    def run_merge(self, request, service):
        body = MergeSerializer(data=request.data)
        body.is_valid(raise_exception=True)
        data = body.validated_data
        dry_run = dry_run_requested(request)
        with transaction.atomic():
            try:
                result = service(data["survivor_id"], data["merged_ids"], choices=data["fields"], user=request.user)
            except merges.MergeRefused as exc:
                raise exceptions.ValidationError({exc.field: [exc.message]}) from exc
            survivor = result["survivor"]
            if self.detail_reader is not None:
                # With the summary figures (the moved records counted), as a GET reads it.
                survivor = self.read_with_figures(survivor) or survivor
            changeset = result["changeset"]
            answer = {
                **self.get_serializer(survivor).data,
                "merged_ids": result["merged_ids"],
                "moved": result["moved"],
                "dry_run": dry_run,
                "changeset": changeset_summary(changeset),
            }
            if dry_run:
                # The rows it would make, read before they roll back with the rest.
                changeset.preview = list(changeset.rows.order_by("seq"))
                answer["changeset"] = changeset_preview(changeset)
                transaction.set_rollback(True)
        return Response(answer)
