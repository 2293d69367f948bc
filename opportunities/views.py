from django.utils import timezone
from rest_framework.response import Response
from rest_framework.views import APIView

from core.access import scope
from core.api.exports import ExportMixin
from core.api.history import HistoryMixin
from core.api.query import validated_query
from core.api.report_schemas import FORECAST, PIPELINE, report_schema
from core.api.viewsets import CRMModelViewSet

from .filters import OpportunityFilter
from .models import Opportunity
from .reports import forecast, pipeline_summary
from .serializers import ForecastQuerySerializer, OpportunitySerializer, PipelineQuerySerializer


class OpportunityViewSet(HistoryMixin, ExportMixin, CRMModelViewSet):
    queryset = Opportunity.objects.all()
    serializer_class = OpportunitySerializer
    filterset_class = OpportunityFilter
    deleted_message = "Opportunity deleted."
    owner_field = "customer__owner"


class PipelineReportView(APIView):
    """``GET /api/reports/pipeline``: per-stage counts and values, open/won/lost totals, win rates."""

    @report_schema(PipelineQuerySerializer, PIPELINE)
    def get(self, request):
        params = validated_query(request, PipelineQuerySerializer)
        # Computed over the records the user may see, like every list.
        return Response(pipeline_summary(params.filter_queryset(scope(Opportunity.objects.all(), request.user))))


class ForecastReportView(APIView):
    """``GET /api/reports/forecast?months=N``: weighted open pipeline per expected close month."""

    @report_schema(ForecastQuerySerializer, FORECAST)
    def get(self, request):
        params = validated_query(request, ForecastQuerySerializer)
        queryset = params.filter_queryset(scope(Opportunity.objects.all(), request.user))
        return Response(forecast(timezone.localdate(), params.validated_data["months"], queryset))
