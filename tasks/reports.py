"""Follow-ups: open deals with no next step, overdue tasks per assignee, deals gone stale.

Each figure is computed in the database over querysets the caller has already
narrowed to the user's book (``ScopedReportView.scoped``; the admin's "My day"
narrows them the same way), in a fixed number of queries whatever the data.
"""

import datetime

from django.conf import settings
from django.contrib.auth import get_user_model
from django.db.models import (
    BooleanField,
    Case,
    Count,
    DateTimeField,
    Exists,
    ExpressionWrapper,
    F,
    Max,
    Min,
    OuterRef,
    Q,
    Subquery,
    Value,
    When,
)
from django.db.models.functions import Coalesce, Greatest
from django.db.models.lookups import LessThan

from interactions.models import Interaction
from opportunities.models import Opportunity, StageChange

from .models import Task
from .windows import overdue

DEAL_FIELDS = ("id", "title", "customer_id", "customer__name", "stage", "value", "expected_close_date")

FOLLOW_UPS = {
    "type": "object",
    "required": ["today", "time_zone", "no_next_step", "overdue_by_assignee", "stale"],
    "properties": {
        "today": {"type": "string", "format": "date", "description": "Your today, in your time zone."},
        "time_zone": {"type": "string"},
        "no_next_step": {
            "type": "object",
            "description": "Open deals with no open task.",
            "required": ["count", "deals"],
            "properties": {"count": {"type": "integer"}, "deals": {"type": "array", "items": {"type": "object"}}},
        },
        "overdue_by_assignee": {
            "type": "array",
            "items": {
                "type": "object",
                "required": ["assignee_id", "username", "count", "oldest_due_at"],
                "properties": {
                    "assignee_id": {"type": "integer"},
                    "username": {"type": "string"},
                    "count": {"type": "integer"},
                    "oldest_due_at": {"type": "string", "format": "date-time"},
                },
            },
        },
        "stale": {
            "type": "object",
            "description": "Open deals with no activity (an interaction with the customer, a task on the deal added "
            "or done, a change of stage) for more days than their stage allows.",
            "required": ["count", "days", "deals"],
            "properties": {
                "count": {"type": "integer"},
                "days": {"type": "object", "additionalProperties": {"type": "integer"}},
                "deals": {"type": "array", "items": {"type": "object"}},
            },
        },
    },
}


def _deal_rows(deals, limit, *extra):
    rows = deals.values(*DEAL_FIELDS, *extra)[:limit]
    return [
        {**{k: v for k, v in row.items() if k != "customer__name"}, "customer_name": row["customer__name"]}
        for row in rows
    ]


def without_next_step(opportunities, limit):
    """Open deals with no open task, oldest first: the count and the first ``limit``."""
    open_task = Task.objects.filter(opportunity=OuterRef("pk"), done_at__isnull=True)
    deals = opportunities.filter(stage__in=Opportunity.OPEN_STAGES).filter(~Exists(open_task))
    return {"count": deals.count(), "deals": _deal_rows(deals.order_by("created_at", "id"), limit)}


def overdue_by_assignee(tasks, day):
    """Overdue tasks per assignee (in ``day``'s time zone), most first."""
    rows = (
        tasks.filter(overdue(day))
        .order_by()
        .values("assignee_id")
        .annotate(count=Count("id"), oldest_due_at=Min("due_at"))
        .order_by("-count", "assignee_id")
    )
    rows = list(rows)
    names = dict(
        get_user_model().objects.filter(pk__in=[row["assignee_id"] for row in rows]).values_list("pk", "username")
    )
    return [{**row, "username": names.get(row["assignee_id"], "")} for row in rows]


def last_activity(now):
    """The latest of: the deal's creation, its last change of stage, its customer's last interaction (not in
    the future), a task on it added or done."""
    moment = DateTimeField()
    interaction = Interaction.objects.filter(customer=OuterRef("customer_id"), occurred_at__lte=now)
    tasks = Task.objects.filter(opportunity=OuterRef("pk")).order_by().values("opportunity")
    stage = StageChange.objects.filter(opportunity=OuterRef("pk")).order_by().values("opportunity")
    return Greatest(
        F("created_at"),
        Coalesce(Subquery(stage.annotate(at=Max("changed_at")).values("at")), F("created_at"), output_field=moment),
        Coalesce(
            Subquery(interaction.order_by("-occurred_at").values("occurred_at")[:1]),
            F("created_at"),
            output_field=moment,
        ),
        Coalesce(Subquery(tasks.annotate(at=Max("created_at")).values("at")), F("created_at"), output_field=moment),
        Coalesce(Subquery(tasks.annotate(at=Max("done_at")).values("at")), F("created_at"), output_field=moment),
        output_field=moment,
    )


def stale_days():
    return dict(settings.CRM_STALE_DAYS)


def stale_condition(now, activity=None):
    """The stale rule, as a filter: an open deal whose last activity (``activity``, by default
    :func:`last_activity`) is older than its stage allows (``CRM_STALE_DAYS``).

    The one home of the rule: the follow-ups report, My day and the pipeline board
    (the ``is_stale`` mark of ``opportunities.parts``) all ask it.
    """
    days = {stage: allowed for stage, allowed in stale_days().items() if stage in Opportunity.OPEN_STAGES}
    if not days:
        return Q(pk__in=[])
    cutoff = Case(
        *(When(stage=stage, then=Value(now - datetime.timedelta(days=allowed))) for stage, allowed in days.items()),
        output_field=DateTimeField(),
    )
    return Q(stage__in=list(days)) & LessThan(last_activity(now) if activity is None else activity, cutoff)


def is_stale(now):
    """True for a deal gone stale (:func:`stale_condition`), as a column."""
    return ExpressionWrapper(stale_condition(now), output_field=BooleanField())


def stale(opportunities, now, limit):
    """Open deals without activity for longer than their stage allows (``CRM_STALE_DAYS``), stalest first."""
    deals = opportunities.annotate(last_activity_at=last_activity(now)).filter(
        stale_condition(now, F("last_activity_at"))
    )
    return {
        "count": deals.count(),
        "days": stale_days(),
        "deals": _deal_rows(deals.order_by("last_activity_at", "id"), limit, "last_activity_at"),
    }


def follow_ups(*, opportunities, tasks, day, limit):
    return {
        "today": day.date,
        "time_zone": str(day.zone),
        "no_next_step": without_next_step(opportunities, limit),
        "overdue_by_assignee": overdue_by_assignee(tasks, day),
        "stale": stale(opportunities, day.now, limit),
    }
