from drf_spectacular.utils import extend_schema
from rest_framework import exceptions, serializers
from rest_framework.decorators import action
from rest_framework.response import Response

from core import access
from core.api.exports import ExportMixin
from core.api.history import HistoryMixin
from core.api.query import QuerySerializer
from core.api.reports import ScopedReportView
from core.api.viewsets import Conflict, CRMModelViewSet
from customers.models import Customer
from interactions.serializers import InteractionSerializer
from opportunities.models import Opportunity

from .filters import TaskFilter
from .models import Task
from .reports import FOLLOW_UPS, follow_ups
from .serializers import CompletedSerializer, CompleteSerializer, TaskSerializer
from .services import TaskStateError, complete_task, hold_moved_parents, hold_parents, reopen_task
from .windows import day_of


class TaskViewSet(HistoryMixin, ExportMixin, CRMModelViewSet):
    """Tasks: a rep sees those on the customers they own and those assigned to them."""

    queryset = Task.objects.all()
    serializer_class = TaskSerializer
    filterset_class = TaskFilter
    deleted_message = "Task deleted."
    detail_reader_for_reps = True

    def perform_create(self, serializer):
        # Assigned to the creator unless the body names someone.
        assignee = serializer.validated_data.get("assignee", self.request.user)
        self._save(serializer, created_by=self.request.user, assignee=assignee)

    def _locked_task(self, pk):
        """The URL's task (``pk``: ``_url_pk()``) for a state change: locked, scoped, and checked against ``If-Match``."""
        return self._find(pk, writing=True, if_match=self.request.headers.get("If-Match"))

    @extend_schema(request=CompleteSerializer, responses=CompletedSerializer)
    @action(detail=True, methods=["post"], filter_backends=[])
    def complete(self, request, pk=None):
        """Mark the task done; with ``log_interaction``, also log an interaction with its customer (one step)."""
        pk = self._url_pk()
        # Its customer and deal before the task, as their deletes take them (``services.hold_parents``), and
        # those it was moved to meanwhile, if it was.
        held = None if pk is None else hold_parents(self.get_queryset().filter(pk=pk))
        task = self._locked_task(pk)
        hold_moved_parents(task, held)
        body = CompleteSerializer(data=request.data)
        body.is_valid(raise_exception=True)
        params = body.validated_data
        if params["log_interaction"] and not access.scope(Customer.objects.filter(pk=task.customer_id), request.user):
            raise exceptions.ValidationError(
                {"log_interaction": ["The customer is not in your book: you cannot log an interaction with it."]}
            )
        try:
            interaction = complete_task(
                task,
                user=request.user,
                outcome=params.get("outcome"),
                log_interaction=params["log_interaction"],
                interaction_type=params.get("interaction_type"),
                occurred_at=params.get("occurred_at"),
                request=request,
            )
        except TaskStateError as exc:
            raise Conflict(str(exc)) from exc
        data = {
            "task": self.get_serializer(task).data,
            "interaction": None if interaction is None else InteractionSerializer(interaction).data,
        }
        return Response(data, headers={"ETag": self._etag(data["task"])})

    @extend_schema(request=None, responses=TaskSerializer)
    @action(detail=True, methods=["post"], filter_backends=[])
    def reopen(self, request, pk=None):
        """Mark a done task open again (its outcome is kept)."""
        task = self._locked_task(self._url_pk())
        try:
            reopen_task(task)
        except TaskStateError as exc:
            raise Conflict(str(exc)) from exc
        return self._with_etag(Response(self.get_serializer(task).data))


class FollowUpsQuerySerializer(QuerySerializer):
    limit = serializers.IntegerField(min_value=1, max_value=500, default=50, help_text="Deals listed per section.")


class FollowUpsReportView(ScopedReportView):
    """``GET /api/reports/follow-ups``: open deals with no next step, overdue tasks per assignee, stale deals."""

    query_serializer_class = FollowUpsQuerySerializer
    payload_schema = FOLLOW_UPS

    def report(self, query):
        return follow_ups(
            opportunities=self.scoped(Opportunity),
            tasks=self.scoped(Task),
            day=day_of(self.request.user),
            limit=query.validated_data["limit"],
        )
