import datetime

from django.utils import timezone

from core.api.exports import ExportMixin
from core.api.history import HistoryMixin
from core.api.report_schemas import ACTIVITY
from core.api.reports import ScopedReportView
from core.api.viewsets import CRMModelViewSet
from customers.models import Customer

from .filters import InteractionFilter
from .models import Interaction
from .reports import going_cold, interactions_over_time
from .serializers import ActivityQuerySerializer, InteractionSerializer


class InteractionViewSet(HistoryMixin, ExportMixin, CRMModelViewSet):
    queryset = Interaction.objects.all()
    serializer_class = InteractionSerializer
    filterset_class = InteractionFilter
    deleted_message = "Interaction deleted."
    detail_reader_for_reps = True


class ActivityReportView(ScopedReportView):
    """``GET /api/reports/activity``: interactions per type per period, and customers going cold."""

    query_serializer_class = ActivityQuerySerializer
    payload_schema = ACTIVITY

    def report(self, query):
        params = query.validated_data
        customers = self.scoped(Customer)
        if "status" in params:
            customers = customers.filter(status=params["status"])
        now = timezone.now()
        cutoff = now - datetime.timedelta(days=params["cold_days"])
        return {
            "group_by": params["group_by"],
            "date_from": params["date_from"],
            "date_to": params["date_to"],
            **interactions_over_time(
                params["date_from"], params["date_to"], params["group_by"], self.scoped(Interaction)
            ),
            "going_cold": {
                "days": params["cold_days"],
                "since": cutoff,
                **going_cold(cutoff, params["cold_limit"], customers, now=now),
            },
        }
