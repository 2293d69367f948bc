from decimal import Decimal

from drf_spectacular.utils import extend_schema, extend_schema_view
from rest_framework.decorators import action
from rest_framework.response import Response

from core.api.changesets import changeset_answer, dry_run_query, dry_run_requested
from core.api.exports import ExportMixin
from core.api.history import HistoryMixin
from core.api.merges import MERGE_QUERY, MergeMixin, MergeSerializer, merge_response_schema
from core.api.permissions import IsManager
from core.api.viewsets import CRMModelViewSet

from . import parts
from .filters import CustomerFilter
from .models import Customer
from .serializers import (
    BulkReassignSerializer,
    CreatedCustomerSerializer,
    CustomerSerializer,
    ReassignSerializer,
    TimelineEntrySerializer,
)
from .services import delete_customer, merge_customers, reassign_customers
from .summary import SUMMARY_FIELDS, WITH_SUMMARY
from .timeline import timeline_entries, timeline_queryset

REASSIGNED = {
    "type": "object",
    "description": "What moved: customers (those already with the new owner are left alone) and their open "
    "opportunities, which follow their customer. Also echoes the owner ids.",
    "required": ["customers", "open_opportunities"],
    "properties": {
        "customers": {"type": "integer"},
        "open_opportunities": {"type": "integer"},
        "id": {"type": "integer"},
        "owner_id": {"type": "integer"},
        "from_owner_id": {"type": "integer", "nullable": True},
        "to_owner_id": {"type": "integer"},
        "dry_run": {"type": "boolean"},
        "changeset": {
            "type": "object",
            "nullable": True,
            "description": "The reassign's changeset (`id`, `kind`, `label`, `counts`; undo it with "
            "`POST /api/changesets/{id}/undo`), null when nothing moved; with `?dry_run=true` the one it would "
            "make, with its `rows`.",
        },
    },
}


@extend_schema_view(create=extend_schema(responses={201: CreatedCustomerSerializer}))
class CustomerViewSet(HistoryMixin, ExportMixin, MergeMixin, CRMModelViewSet):
    queryset = Customer.objects.all()
    serializer_class = CustomerSerializer
    filterset_class = CustomerFilter
    unique_constraint_fields = {"customer_email_ci_unique": ("email", "A customer with this email already exists.")}
    # Validation reads only; its unique checks (email, external_id) are the constraints' above.
    validate_before_write = True
    deleted_message = "Customer deleted."
    etag_ignored_fields = frozenset(SUMMARY_FIELDS)
    detail_reader_for_reps = True
    detail_reader = WITH_SUMMARY
    upsert_keys = ("external_id", "email")
    owner_field = "owner"
    create_hints = parts.CREATE_HINTS
    # The original columns, then the link to the company.
    export_fields = [
        "id",
        "name",
        "company",
        "email",
        "phone",
        "status",
        "created_at",
        "updated_at",
        "owner_id",
        "external_id",
        "created_by_id",
        "company_id",
        "phone_e164",
        "tags",
    ]
    export_sources = {"company": "company_name"}
    summary_defaults = {"interaction_count": 0, "open_pipeline_value": Decimal(0), "last_interaction_at": None}

    def upsert_lookup(self, rows, key, value):
        # Emails are unique whatever their letter case.
        return rows.with_email(value) if key == "email" else super().upsert_lookup(rows, key, value)

    def perform_destroy(self, instance):
        return {"deleted": delete_customer(instance)}

    @extend_schema(responses=TimelineEntrySerializer(many=True))
    @action(detail=True, methods=["get"], filter_backends=[])
    def timeline(self, request, pk=None):
        """Interactions and opportunity events of the customer, newest first, paginated."""
        customer = self.get_object()
        page = self.paginate_queryset(timeline_queryset(customer.pk))
        return self.get_paginated_response(timeline_entries(page))

    @extend_schema(
        operation_id="customers_reassign",
        request=ReassignSerializer,
        responses={200: REASSIGNED},
        parameters=dry_run_query("the reassign"),
    )
    @action(detail=True, methods=["post"], url_path="reassign", permission_classes=[IsManager], filter_backends=[])
    def reassign(self, request, pk=None):
        """Give one customer (and so its interactions and opportunities) to another owner. Managers only."""
        # Locked before it is read, as a change's (``_find``): one deleted meanwhile answers 404, not a reassign of nothing.
        customer = self._find(self._url_pk(), writing=True, if_match=None)
        serializer = ReassignSerializer(data=request.data)
        serializer.is_valid(raise_exception=True)
        owner = serializer.validated_data["owner_id"]
        return Response({"id": customer.pk, "owner_id": owner.pk, **self._reassign(request, [customer.pk], owner)})

    @extend_schema(
        operation_id="customers_reassign_all",
        request=BulkReassignSerializer,
        responses={200: REASSIGNED},
        parameters=dry_run_query("the reassign"),
    )
    @action(detail=False, methods=["post"], url_path="reassign", permission_classes=[IsManager], filter_backends=[])
    def reassign_all(self, request):
        """Give all of one owner's customers (``from_owner_id`` null: the unowned ones) to another. Managers only."""
        serializer = BulkReassignSerializer(data=request.data)
        serializer.is_valid(raise_exception=True)
        source, target = serializer.validated_data["from_owner_id"], serializer.validated_data["to_owner_id"]
        ids = Customer.objects.filter(owner=source).values("pk")
        moved = self._reassign(request, ids, target)
        return Response({"from_owner_id": source.pk if source else None, "to_owner_id": target.pk, **moved})

    def _reassign(self, request, ids, owner):
        """``reassign_customers`` (a changeset; ``?dry_run=true`` writes nothing), as the answer's counts."""
        dry_run = dry_run_requested(request)
        moved = reassign_customers(Customer.objects.filter(pk__in=ids), owner, dry_run=dry_run)
        return {**moved, "changeset": changeset_answer(moved["changeset"], dry_run), "dry_run": dry_run}

    @extend_schema(
        operation_id="customers_merge",
        request=MergeSerializer,
        responses={200: merge_response_schema(CustomerSerializer)},
        parameters=MERGE_QUERY,
    )
    @action(detail=False, methods=["post"], url_path="merge", filter_backends=[])
    def merge(self, request):
        """Merge duplicate customers into one survivor: their interactions, opportunities and tasks move to it.

        Each field keeps the survivor's value unless ``fields`` chooses another record's, or the survivor's
        is empty; tags are united, custom values' gaps filled. The merged-away ids answer 404 with
        ``error.merged_into``. At most 10 at once, all in the user's book.
        """
        return self.run_merge(request, merge_customers)
