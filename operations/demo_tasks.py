"""Demo tasks around today (overdue, today, upcoming, undated, done), so that "My day" has something to show."""

import datetime
import random

from django.contrib.auth import get_user_model
from django.db.models import Q
from django.utils import timezone
from simple_history.utils import bulk_create_with_history

from core import access
from core.models import UserPreferences
from opportunities.models import Opportunity
from tasks.models import Task
from tasks.windows import start_of

TITLES = {
    Task.Kind.CALL: ["Call back about the quote", "回访客户，确认需求", "Follow-up call after the demo"],
    Task.Kind.EMAIL: ["Send the proposal", "发送报价单", "Email the contract draft"],
    Task.Kind.MEETING: ["Meeting on site", "与采购部门开会", "Quarterly review"],
    Task.Kind.TODO: ["Prepare the renewal", "整理客户资料", "Check the payment"],
}
# The demo's deal gone quiet: ``operations.demo`` dates its last activity past what its stage allows,
# and no demo task follows it up, so My day, the board and the follow-ups report show it as stale.
QUIET_DEAL = "Holiday catalog campaign"
# (days from now, hours from now, date only, done): three overdue, three today, three upcoming, two undated, one done.
PLAN = [
    (-3, 0, False, False),
    (-1, 0, True, False),
    (0, -2, False, False),
    (0, 0, True, False),
    (0, 1, False, False),
    (0, 3, False, False),
    (1, 0, True, False),
    (3, 0, False, False),
    (7, 0, False, False),
    (None, 0, False, False),
    (None, 0, False, False),
    (-2, 0, False, True),
]


def demo_assignee():
    """The user demo tasks go to: the first active superuser, else the first manager or rep; None without one."""
    users = get_user_model().objects.filter(is_active=True).order_by("-is_superuser", "pk")
    groups = [access.ROLE_GROUPS[access.MANAGER], access.ROLE_GROUPS[access.REP]]
    return users.filter(Q(is_superuser=True) | Q(groups__name__in=groups)).first()


def create_demo_tasks(customers, assignee, *, now=None, seed=42):
    """A round of :data:`PLAN` tasks on each customer of ``customers`` in turn, due relative to ``now``."""
    rng = random.Random(seed)
    now = now or timezone.now()
    zone = UserPreferences.for_user(assignee).zone
    today = now.astimezone(zone).date()
    customers = list(customers)
    if not customers:
        return 0
    deals = {}
    for deal_id, customer_id in (
        Opportunity.objects.filter(customer__in=customers, stage__in=Opportunity.OPEN_STAGES)
        .exclude(title=QUIET_DEAL)
        .values_list("pk", "customer_id")
    ):
        deals.setdefault(customer_id, deal_id)
    tasks = []
    for index, (days, hours, date_only, done) in enumerate(PLAN * max(1, len(customers) // len(PLAN) + 1)):
        if index >= max(len(PLAN), len(customers)):
            break
        customer = customers[index % len(customers)]
        kind = rng.choice(list(Task.Kind))
        if days is None:
            due = None
        elif date_only:
            due = start_of(today + datetime.timedelta(days=days), zone)
        else:
            due = now + datetime.timedelta(days=days, hours=hours)
        tasks.append(
            Task(
                title=rng.choice(TITLES[kind]),
                kind=kind,
                customer=customer,
                opportunity_id=deals.get(customer.pk) if index % 2 == 0 else None,
                assignee=assignee,
                due_at=due,
                due_is_date_only=date_only and due is not None,
                priority=rng.choice(list(Task.Priority)),
                done_at=now - datetime.timedelta(days=1) if done else None,
                created_by=assignee,
            )
        )
    bulk_create_with_history(tasks, Task, default_user=assignee)
    return len(tasks)
