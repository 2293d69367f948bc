"""What tasks add to an opportunity (``opportunities.parts``): its next task, the earliest open one;
on the pipeline board's cards, whether the deal has gone stale (``reports.is_stale``); and its tasks following
it when it is given to another customer.

Three correlated subqueries over the partial index of open tasks by opportunity
and due date; tasks with no due date come after those with one, then by id.
"""

from django.db.models import F, OuterRef, Subquery

from core.history import update_with_history
from opportunities import parts

from .models import Task
from .reports import is_stale


def _next_task():
    return Task.objects.filter(opportunity=OuterRef("pk"), done_at__isnull=True).order_by(
        F("due_at").asc(nulls_last=True), "id"
    )


def follow_deal(opportunity):
    """A deal's tasks belong to the deal's customer (a task's deal is one of its customer's): given to another
    customer, the deal takes its tasks along, each a change in its history, its event and the changeset."""
    tasks = Task.objects.filter(opportunity=opportunity).exclude(customer_id=opportunity.customer_id)
    update_with_history(tasks, customer_id=opportunity.customer_id)


def register():
    for field in ("id", "title", "due_at"):
        parts.add_annotation(f"next_task_{field}", lambda field=field: Subquery(_next_task().values(field)[:1]))
    parts.add_card_annotation("is_stale", is_stale)
    parts.on_customer_change(follow_deal)
