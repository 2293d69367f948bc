"""The demo data of ``init_demo``: the ``demo`` fixture brought to today, owned by demo reps.

The fixture's rows have fixed dates; :func:`bring_to_today` moves them around
``now`` (interactions over the last three months, open deals closing this month
and next, one of them gone quiet for longer than its stage allows, recent wins),
gives every company a few more people (Chinese and Latin names), hands companies
and their people to the demo reps, and adds tasks and notifications, so that each
role has something of its own to look at.
"""

import calendar
import datetime
import random
import secrets

from django.contrib.auth import get_user_model
from django.contrib.auth.models import Group
from django.db import transaction
from django.utils import timezone

from companies.models import Company
from core import access
from core.access import MANAGER, REP, ROLE_GROUPS
from core.history import record_creation
from core.models import Event
from customers.models import Customer
from interactions.models import Interaction
from notifications.models import Notification
from operations.demo_tasks import QUIET_DEAL, create_demo_tasks
from opportunities.models import Opportunity, StageChange
from tasks.reports import stale_days

# The demo accounts beside the admin: (username, role). Reps own the demo book between them.
DEMO_USERS = [("manager", MANAGER), ("rep", REP), ("rep2", REP)]

# More people at the fixture's companies (by name): several per company, Chinese and Latin names, at their
# company's own email domain (people of different companies sharing one would make them look like duplicates).
EXTRA_PEOPLE = [
    ("ABC科技", "李娜", "lina@abc.com"),
    ("ABC科技", "Oliver Chen", "oliver.chen@abc.com"),
    ("华为技术有限公司", "周杰", "zhoujie@huawei.com"),
    ("上海云帆贸易", "Sophie Martin", "sophie.martin@yunfan.cn"),
    ("北京星辰软件", "孙丽", "sunli@xingchen.com"),
    ("北京星辰软件", "Lucas Moreau", "lucas.moreau@xingchen.com"),
    ("Northwind Traders", "Maria Garcia", "maria.garcia@northwind.example"),
    ("Northwind Traders", "黄伟", "huang.wei@northwind.example"),
    ("Contoso Ltd", "David Brown", "david.brown@contoso.example"),
    ("Fabrikam", "Lucía Fernández", "lucia.fernandez@fabrikam.example"),
    ("深圳蓝海电子", "吴强", "wuqiang@lanhai.cn"),
    ("Tailspin Toys", "James Taylor", "james.taylor@tailspin.example"),
    ("杭州数智科技", "徐秀英", "xuxiuying@shuzhi.cn"),
    ("杭州数智科技", "Anna Schmidt", "anna.schmidt@shuzhi.cn"),
]

NOTIFICATIONS = [
    ("demo.welcome", "Welcome to the CRM demo", "Your customers, deals and tasks are on the dashboard."),
    ("task.reminder", "Task due today: call back about the quote", ""),
    ("opportunity.won", "A deal was won this week", ""),
]


def create_demo_users():
    """The demo manager and reps that do not exist yet, with generated passwords: ``[(role, username, password)]``."""
    User = get_user_model()
    created = []
    for username, role in DEMO_USERS:
        if User.objects.filter(username=username).exists():
            continue
        password = secrets.token_urlsafe(12)
        user = User.objects.create_user(username, password=password, is_staff=True)
        user.groups.add(Group.objects.get(name=ROLE_GROUPS[role]))
        created.append((role, username, password))
    return created


def demo_reps():
    """The demo reps that exist, in :data:`DEMO_USERS` order."""
    names = [username for username, role in DEMO_USERS if role == REP]
    users = {user.username: user for user in get_user_model().objects.filter(username__in=names, is_active=True)}
    return [users[name] for name in names if name in users]


def demo_owners():
    """Who owns the demo records: the demo reps; on a database whose users were there before (no demo
    accounts made), its active reps, else its managers. Empty only without any of them."""
    reps = demo_reps()
    if reps:
        return reps
    users = get_user_model().objects.filter(is_active=True).order_by("pk")
    reps = list(users.filter(groups__name=ROLE_GROUPS[REP]).distinct())
    return reps or list(access.managers().order_by("pk"))


def _add_months(day, months):
    month = day.month - 1 + months
    year, month = day.year + month // 12, month % 12 + 1
    return day.replace(year=year, month=month, day=min(day.day, calendar.monthrange(year, month)[1]))


@transaction.atomic
def bring_to_today(now=None, seed=7):
    """Move the freshly loaded demo fixture around ``now`` and complete it (see the module's text)."""
    rng = random.Random(seed)
    now = now or timezone.now()
    today = timezone.localdate(now)
    reps = demo_owners()

    companies = {company.name: company for company in Company.objects.order_by("pk")}
    for company_name, name, email in EXTRA_PEOPLE:
        if company_name in companies and not Customer.objects.filter(email=email).exists():
            Customer.objects.create(name=name, email=email, company=companies[company_name], status="active")

    # Owners: companies go to the reps in turn, and their people with them.
    for index, company in enumerate(companies.values()):
        owner = reps[index % len(reps)] if reps else None
        Company.objects.filter(pk=company.pk).update(owner=owner)
        Customer.objects.filter(company=company).update(owner=owner)
    if reps:
        Customer.objects.filter(owner__isnull=True).update(owner=reps[0])

    # People were met first between three and four months ago.
    for customer in Customer.objects.order_by("pk"):
        created = now - datetime.timedelta(days=rng.randint(95, 125), hours=rng.randint(0, 8))
        Customer.objects.filter(pk=customer.pk).update(created_at=created, updated_at=created)
    for company in companies.values():
        created = now - datetime.timedelta(days=rng.randint(126, 150))
        Company.objects.filter(pk=company.pk).update(created_at=created, updated_at=created)

    # Interactions spread over the last three months, the latest ones this week.
    interactions = list(Interaction.objects.order_by("pk").values_list("pk", flat=True))
    for index, pk in enumerate(interactions):
        days = 2 + (88 * index) // max(1, len(interactions) - 1)
        at = now - datetime.timedelta(days=days, hours=rng.randint(0, 6), minutes=rng.randint(0, 59))
        Interaction.objects.filter(pk=pk).update(occurred_at=at, created_at=at)

    # Open deals close this month and next; closed and lost ones were decided in the last two months.
    month_end = _add_months(today.replace(day=1), 1) - datetime.timedelta(days=1)
    for index, deal in enumerate(Opportunity.objects.order_by("pk")):
        created = now - datetime.timedelta(days=rng.randint(40, 85))
        if deal.is_open:
            if index % 2 == 0:
                expected = today + datetime.timedelta(days=rng.randint(0, max(0, (month_end - today).days)))
            else:
                expected = _add_months(today.replace(day=1), 1) + datetime.timedelta(days=rng.randint(0, 27))
            updated, closed = now - datetime.timedelta(days=rng.randint(1, 20)), None
            if deal.title == QUIET_DEAL:
                # Gone quiet a week longer than its stage allows: nothing since, not even from its customer.
                updated = now - datetime.timedelta(days=stale_days().get(deal.stage, 0) + 7)
                created = min(created, updated - datetime.timedelta(days=30))
                Interaction.objects.filter(customer=deal.customer_id, occurred_at__gt=updated).update(
                    occurred_at=updated - datetime.timedelta(days=3), created_at=updated - datetime.timedelta(days=3)
                )
        else:
            updated = closed = now - datetime.timedelta(days=rng.randint(2, 55))
            expected = timezone.localdate(closed)
        Opportunity.objects.filter(pk=deal.pk).update(
            created_at=created, updated_at=updated, closed_at=closed, expected_close_date=expected
        )
        StageChange.objects.filter(opportunity=deal, from_stage__isnull=True).update(changed_at=created)
        StageChange.objects.filter(opportunity=deal, from_stage__isnull=False).update(changed_at=updated)

    _history_from_here((Company, Customer, Interaction, Opportunity))

    # Tasks (overdue, today's, upcoming) for each rep on their own people, and for the manager.
    User = get_user_model()
    for rep in reps:
        create_demo_tasks(Customer.objects.filter(owner=rep).order_by("pk"), rep, now=now, seed=seed)
    manager = User.objects.filter(username="manager", is_active=True).first()
    for user in [*reps, manager]:
        if user is None:
            continue
        for minutes, (kind, title, body) in enumerate(NOTIFICATIONS):
            Notification.objects.create(
                recipient=user,
                kind=kind,
                title=title,
                body=body,
                url="/admin/",
                created_at=now - datetime.timedelta(hours=minutes * 5),
            )


def _history_from_here(models):
    """The demo records' history and events, begun again from the records as they are now.

    Loading the fixture wrote each record's "created" entry and event from its row as loaded: dated in the
    fixture's past, with no owner. Brought to today and handed to the reps since (updates, which write
    no history), their first real change would otherwise show all of that as made by whoever changed
    them, and their events would sit outside every rep's feed.
    """
    for model in models:
        records = list(model.objects.order_by("pk"))
        pks = [record.pk for record in records]
        model.history.filter(**{f"{model._meta.pk.attname}__in": pks}).delete()
        Event.objects.filter(model=model._meta.label_lower, object_id__in=pks).delete()
        record_creation(model, records)
