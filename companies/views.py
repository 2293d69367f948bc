from decimal import Decimal

from drf_spectacular.utils import extend_schema, extend_schema_view
from rest_framework.decorators import action

from core.api.exports import ExportMixin
from core.api.history import HistoryMixin
from core.api.merges import MERGE_QUERY, MergeMixin, MergeSerializer, merge_response_schema
from core.api.viewsets import CRMModelViewSet

from . import parts
from .filters import CompanyFilter
from .models import Company
from .serializers import CompanySerializer, CompanyTimelineEntrySerializer, CreatedCompanySerializer
from .services import delete_company, merge_companies
from .summary import SUMMARY_FIELDS, WITH_SUMMARY


@extend_schema_view(create=extend_schema(responses={201: CreatedCompanySerializer}))
class CompanyViewSet(HistoryMixin, ExportMixin, MergeMixin, CRMModelViewSet):
    queryset = Company.objects.all()
    serializer_class = CompanySerializer
    filterset_class = CompanyFilter
    unique_constraint_fields = {"company_domain_unique": ("domain", "A company with this domain already exists.")}
    deleted_message = "Company deleted."
    etag_ignored_fields = frozenset(SUMMARY_FIELDS)
    detail_reader = WITH_SUMMARY
    detail_reader_for_reps = True
    owner_field = "owner"
    create_hints = parts.CREATE_HINTS
    summary_defaults = {"people_count": 0, "open_pipeline_value": Decimal(0), "last_interaction_at": None}
    upsert_keys = ("external_id", "domain")
    export_fields = [
        "id",
        "name",
        "domain",
        "website",
        "phone",
        "phone_e164",
        "address",
        "industry",
        "size",
        "notes",
        "owner_id",
        "created_at",
        "updated_at",
        "created_by_id",
        "external_id",
        "tags",
    ]

    def perform_destroy(self, instance):
        # Its people and opportunities stay, without a company: the answer says how many.
        return delete_company(instance)

    @extend_schema(responses=CompanyTimelineEntrySerializer(many=True))
    @action(detail=True, methods=["get"], filter_backends=[])
    def timeline(self, request, pk=None):
        """The timelines of the company's people (those in your book), merged, newest first, paginated."""
        company = self.get_object()
        timeline = parts.TIMELINE[0]
        page = self.paginate_queryset(timeline.rows(company.pk, request.user))
        return self.get_paginated_response(timeline.entries(page))

    @extend_schema(
        operation_id="companies_merge",
        request=MergeSerializer,
        responses={200: merge_response_schema(CompanySerializer)},
        parameters=MERGE_QUERY,
    )
    @action(detail=False, methods=["post"], url_path="merge", filter_backends=[])
    def merge(self, request):
        """Merge duplicate companies into one survivor: their people and opportunities move to it.

        The rules of ``POST /customers/merge``: fields from the survivor unless chosen or empty, tags united,
        the merged-away ids answer 404 with ``error.merged_into``.
        """
        return self.run_merge(request, merge_companies)
