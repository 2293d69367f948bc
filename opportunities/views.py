from django.utils import timezone

from core.api.exports import ExportMixin
from core.api.history import HistoryMixin
from core.api.report_schemas import FORECAST, PIPELINE
from core.api.reports import ScopedReportView
from core.api.viewsets import CRMModelViewSet

from . import parts
from .filters import OpportunityFilter
from .models import Opportunity
from .reports import forecast, lost_reasons, pipeline_groups, pipeline_summary
from .serializers import ForecastQuerySerializer, OpportunitySerializer, PipelineQuerySerializer


class OpportunityViewSet(HistoryMixin, ExportMixin, CRMModelViewSet):
    queryset = Opportunity.objects.all()
    serializer_class = OpportunitySerializer
    filterset_class = OpportunityFilter
    deleted_message = "Opportunity deleted."
    # Derived from other records: it changes without the opportunity changing.
    etag_ignored_fields = frozenset({"next_task"})
    detail_reader_for_reps = True

    @property
    def detail_reader(self):
        return parts.detail_reader()

    def get_queryset(self):
        queryset = super().get_queryset()
        if self.action in ("list", "retrieve"):
            queryset = parts.annotate(queryset)
        return queryset

    def perform_create(self, serializer):
        super().perform_create(serializer)
        self._reload_with_parts(serializer)

    def perform_update(self, serializer):
        super().perform_update(serializer)
        self._reload_with_parts(serializer)

    def _reload_with_parts(self, serializer):
        saved = serializer.instance
        reloaded = parts.detail_reader().read(Opportunity, saved.pk, saved._state.db)
        # Deleted by another request since the write: answered as written.
        serializer.instance = saved if reloaded is None else reloaded


class PipelineReportView(ScopedReportView):
    """``GET /api/reports/pipeline``: per-stage counts and values, open/won/lost totals, win rates, the lost
    deals by reason."""

    query_serializer_class = PipelineQuerySerializer
    payload_schema = PIPELINE

    def report(self, query):
        opportunities = query.filter_queryset(self.scoped(Opportunity))
        summary = pipeline_summary(opportunities)
        summary["lost_reasons"] = lost_reasons(opportunities)
        group_by = query.validated_data.get("group_by")
        if group_by is not None:
            limit = query.validated_data["group_limit"]
            summary.update(group_by=group_by, groups=pipeline_groups(opportunities, group_by, limit))
        return summary


class ForecastReportView(ScopedReportView):
    """``GET /api/reports/forecast?months=N``: weighted open pipeline per expected close month."""

    query_serializer_class = ForecastQuerySerializer
    payload_schema = FORECAST

    def report(self, query):
        opportunities = query.filter_queryset(self.scoped(Opportunity))
        return forecast(timezone.localdate(), query.validated_data["months"], opportunities)
