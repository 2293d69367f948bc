"""The dashboard's "this month" and "this week" are the viewer's, in their time zone, and end where they end."""

import datetime
from decimal import Decimal

import pytest
from django.test import RequestFactory

from opportunities.dashboard import dashboard_context
from tests.factories import CustomerFactory, InteractionFactory, OpportunityFactory, member

pytestmark = pytest.mark.django_db

# Monday 2026-06-01 01:00 in Shanghai is still Sunday 2026-05-31 17:00 UTC.
NOW = datetime.datetime(2026, 5, 31, 17, 0, tzinfo=datetime.UTC)


def _context(user, now=NOW):
    request = RequestFactory().get("/admin/")
    request.user = user
    return dashboard_context(request, now=now)


@pytest.mark.parametrize("role", ["Sales manager", "Sales rep"])
def test_closing_this_month_is_the_viewers_month_in_their_time_zone(role):
    user = member("shanghai", role, time_zone="Asia/Shanghai", is_staff=True)
    customer = CustomerFactory(owner=user)
    OpportunityFactory(
        customer=customer, title="May", value=Decimal("100"), expected_close_date=datetime.date(2026, 5, 20)
    )
    OpportunityFactory(
        customer=customer, title="June", value=Decimal("250.50"), expected_close_date=datetime.date(2026, 6, 20)
    )

    context = _context(user)

    assert [deal.title for deal in context["closing_this_month"]] == ["June"]
    closing = context["pipeline"]["closing_this_month"]
    assert (closing["count"], closing["total_value"]) == (1, Decimal("250.50"))


def test_activities_this_week_leave_out_those_after_the_week():
    rep = member("rep", "Sales rep", is_staff=True)
    customer = CustomerFactory(owner=rep)
    monday = datetime.datetime(2026, 6, 1, 9, 0, tzinfo=datetime.UTC)
    InteractionFactory(customer=customer, occurred_at=monday)
    # Logged ahead of time: a meeting of next week is no activity of this one.
    InteractionFactory(customer=customer, occurred_at=monday + datetime.timedelta(days=8))
    InteractionFactory(customer=customer, occurred_at=monday - datetime.timedelta(days=1))

    rows = {row["username"]: row for row in _context(rep, now=monday + datetime.timedelta(hours=2))["rep_table"]}

    assert rows["rep"]["activities_week"] == 1
