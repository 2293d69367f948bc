"""What tasks add to an opportunity (``opportunities.parts``): its next task, the earliest open one;
and, on the pipeline board's cards, whether the deal has gone stale (``reports.is_stale``).

Three correlated subqueries over the partial index of open tasks by opportunity
and due date; tasks with no due date come after those with one, then by id.
"""

from django.db.models import F, OuterRef, Subquery

from opportunities import parts

from .models import Task
from .reports import is_stale


def _next_task():
    return Task.objects.filter(opportunity=OuterRef("pk"), done_at__isnull=True).order_by(
        F("due_at").asc(nulls_last=True), "id"
    )


def register():
    for field in ("id", "title", "due_at"):
        parts.add_annotation(f"next_task_{field}", lambda field=field: Subquery(_next_task().values(field)[:1]))
    parts.add_card_annotation("is_stale", is_stale)
