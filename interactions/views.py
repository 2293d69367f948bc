import datetime

from django.utils import timezone
from rest_framework.response import Response
from rest_framework.views import APIView

from core.access import scope
from core.api.exports import ExportMixin
from core.api.history import HistoryMixin
from core.api.query import validated_query
from core.api.report_schemas import ACTIVITY, report_schema
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
    owner_field = "customer__owner"


class ActivityReportView(APIView):
    """``GET /api/reports/activity``: interactions per type per period, and customers going cold."""

    @report_schema(ActivityQuerySerializer, ACTIVITY)
    def get(self, request):
        params = validated_query(request, ActivityQuerySerializer).validated_data
        # Computed over the records the user may see, like every list.
        customers = scope(Customer.objects.all(), request.user)
        if "status" in params:
            customers = customers.filter(status=params["status"])
        cutoff = timezone.now() - datetime.timedelta(days=params["cold_days"])
        return Response(
            {
                "group_by": params["group_by"],
                "date_from": params["date_from"],
                "date_to": params["date_to"],
                **interactions_over_time(
                    params["date_from"],
                    params["date_to"],
                    params["group_by"],
                    scope(Interaction.objects.all(), request.user),
                ),
                "going_cold": {
                    "days": params["cold_days"],
                    "since": cutoff,
                    **going_cold(cutoff, params["cold_limit"], customers),
                },
            }
        )
