from django_filters import rest_framework as filters

from core.api.filters import ExternalIdFilter, IdFilter, OwnerFilter

from .models import Task
from .windows import WINDOWS, condition, day_of


class DueWindowFilter(filters.ChoiceFilter):
    """``?due=overdue|today|upcoming|none``, in the requesting user's time zone (``tasks/windows.py``)."""

    def __init__(self, **kwargs):
        kwargs.setdefault("choices", [(window, window) for window in WINDOWS])
        super().__init__(**kwargs)

    def filter(self, qs, value):
        if not value:
            return qs
        return qs.filter(condition(value, day_of(self.parent.request.user)))


class TaskFilter(filters.FilterSet):
    assignee = OwnerFilter(field_name="assignee_id", label="Assignee: me, or a user id")
    customer_id = IdFilter(field_name="customer_id")
    opportunity_id = IdFilter(field_name="opportunity_id")
    done = filters.ChoiceFilter(choices=[("true", "true"), ("false", "false")], method="filter_done", label="Done")
    due = DueWindowFilter(label="Due window, in your time zone: overdue, today, upcoming, none")
    due_after = filters.IsoDateTimeFilter(field_name="due_at", lookup_expr="gte")
    due_before = filters.IsoDateTimeFilter(field_name="due_at", lookup_expr="lt")
    kind = filters.ChoiceFilter(choices=Task.Kind.choices)
    priority = filters.ChoiceFilter(choices=Task.Priority.choices)
    external_id = ExternalIdFilter()
    ordering = filters.OrderingFilter(
        fields=("id", "due_at", "priority", "created_at", "updated_at", "done_at", "customer_id", "title")
    )

    class Meta:
        model = Task
        fields = ["assignee", "customer_id", "opportunity_id", "done", "due", "kind", "priority"]

    def filter_done(self, queryset, name, value):
        return queryset.filter(done_at__isnull=value != "true")
