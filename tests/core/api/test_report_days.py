"""A report's days are the requesting user's, in their time zone, as the follow-ups report's and the admin's are;
its times are still answered in UTC."""

import datetime

import pytest
from django.utils import timezone

from core.models import UserPreferences
from interactions.models import Interaction
from opportunities.models import Opportunity
from tests.factories import InteractionFactory, OpportunityFactory

pytestmark = pytest.mark.django_db
UTC = datetime.UTC


def in_zone(user, name):
    UserPreferences.objects.create(user=user, time_zone=name)


def test_the_forecast_starts_on_the_users_today(user, api):
    # Whatever the hour in UTC, one of these two zones is on another date: Kiritimati (UTC+14) from 10:00 UTC,
    # Pago Pago (UTC-11) before 11:00 UTC.
    name = "Pacific/Kiritimati" if timezone.now().hour >= 10 else "Pacific/Pago_Pago"
    in_zone(user, name)
    today = timezone.localdate(timezone=UserPreferences.for_user(user).zone)
    data = api.get("/api/reports/forecast", {"months": 1}).json()["data"]
    assert today != timezone.now().date()
    assert data["today"] == today.isoformat()
    assert [month["month"] for month in data["months"]] == [today.strftime("%Y-%m")]


@pytest.mark.parametrize(
    ("zone", "at", "week", "month", "day"),
    [
        # Monday 2 March 2026, 01:00 in Shanghai; still Sunday 1 March, 17:00, in UTC.
        ("Asia/Shanghai", (2026, 3, 1, 17), "2026-03-02", "2026-03-01", "2026-03-02"),
        ("UTC", (2026, 3, 1, 17), "2026-02-23", "2026-03-01", "2026-03-01"),
        # Saturday 28 February, 19:00, in Los Angeles: March in UTC, February there.
        ("America/Los_Angeles", (2026, 3, 1, 3), "2026-02-23", "2026-02-01", "2026-02-28"),
        ("UTC", (2026, 3, 1, 3), "2026-02-23", "2026-03-01", "2026-03-01"),
    ],
)
def test_the_activity_report_counts_by_the_users_days_weeks_and_months(user, api, zone, at, week, month, day):
    in_zone(user, zone)
    InteractionFactory(occurred_at=datetime.datetime(*at, tzinfo=UTC), interaction_type=Interaction.Type.CALL)
    for group_by, start in (("week", week), ("month", month)):
        data = api.get(
            "/api/reports/activity", {"group_by": group_by, "date_from": "2026-02-01", "date_to": "2026-03-31"}
        ).json()["data"]
        counted = {period["period"]: period["total"] for period in data["periods"] if period["total"]}
        assert counted == {start: 1}, group_by
    # A day given is the user's.
    data = api.get("/api/reports/activity", {"date_from": day, "date_to": day}).json()["data"]
    assert data["totals"]["total"] == 1
    # Times stay in UTC.
    assert data["going_cold"]["since"].endswith("Z")


@pytest.mark.parametrize(("zone", "counted"), [("Asia/Shanghai", 1), ("UTC", 0)])
def test_the_pipelines_days_are_the_users(user, api, zone, counted):
    in_zone(user, zone)
    deal = OpportunityFactory()
    # Monday 2 March 2026, 01:00 in Shanghai; Sunday 1 March in UTC.
    Opportunity.objects.filter(pk=deal.pk).update(created_at=datetime.datetime(2026, 3, 1, 17, tzinfo=UTC))
    data = api.get("/api/reports/pipeline", {"created_from": "2026-03-02", "created_to": "2026-03-02"}).json()["data"]
    assert data["open"]["count"] + data["won"]["count"] + data["lost"]["count"] == counted
