from drf_spectacular.utils import extend_schema
from rest_framework.decorators import action

from crm_site.api.exports import ExportMixin
from crm_site.api.history import HistoryMixin
from crm_site.api.viewsets import CRMModelViewSet

from .filters import CustomerFilter
from .models import Customer
from .serializers import CustomerSerializer, TimelineEntrySerializer
from .services import delete_customer
from .timeline import timeline_entry, timeline_queryset

# Actions whose responses carry the customer's summary figures.
SUMMARY_ACTIONS = {"list", "retrieve", "create", "update", "partial_update"}
SUMMARY_FIELDS = ("interaction_count", "open_pipeline_value", "last_interaction_at")


class CustomerViewSet(HistoryMixin, ExportMixin, CRMModelViewSet):
    queryset = Customer.objects.all()
    serializer_class = CustomerSerializer
    filterset_class = CustomerFilter
    unique_constraint_fields = {"customer_email_ci_unique": ("email", "A customer with this email already exists.")}
    deleted_message = "Customer deleted."
    etag_ignored_fields = frozenset(SUMMARY_FIELDS)

    def get_queryset(self):
        queryset = super().get_queryset()
        if self.action in SUMMARY_ACTIONS:
            queryset = queryset.with_summary()
        return queryset

    def perform_create(self, serializer):
        super().perform_create(serializer)
        self._reload_with_summary(serializer)

    def perform_update(self, serializer):
        super().perform_update(serializer)
        self._reload_with_summary(serializer)

    def _reload_with_summary(self, serializer):
        serializer.instance = self.get_queryset().get(pk=serializer.instance.pk)

    def perform_destroy(self, instance):
        return {"deleted": delete_customer(instance)}

    @extend_schema(responses=TimelineEntrySerializer(many=True))
    @action(detail=True, methods=["get"], filter_backends=[])
    def timeline(self, request, pk=None):
        """Interactions and opportunity events of the customer, newest first, paginated."""
        customer = self.get_object()
        page = self.paginate_queryset(timeline_queryset(customer.pk))
        return self.get_paginated_response([timeline_entry(row) for row in page])
