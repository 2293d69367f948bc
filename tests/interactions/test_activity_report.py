"""``GET /api/reports/activity``: interactions per type per period, and customers going cold."""

import datetime
import random
from collections import Counter

import pytest
from django.utils import timezone

from core.dates import periods
from customers.models import Customer
from interactions.models import Interaction
from tests.factories import CustomerFactory, InteractionFactory

URL = "/api/reports/activity"
TYPES = [t.value for t in Interaction.Type]


def at(day, hour=12):
    return timezone.make_aware(datetime.datetime.combine(day, datetime.time(hour)))


def expected_periods(interactions, first, last, group_by):
    def start(day):
        return day - datetime.timedelta(days=day.weekday()) if group_by == "week" else day.replace(day=1)

    counts = Counter(
        (start(i.occurred_at.date()), i.interaction_type) for i in interactions if first <= i.occurred_at.date() <= last
    )
    result = []
    day = start(first)
    while day <= last:
        by_type = {t: counts[(day, t)] for t in TYPES}
        result.append({"period": day.isoformat(), "total": sum(by_type.values()), "by_type": by_type})
        day = (
            day + datetime.timedelta(weeks=1)
            if group_by == "week"
            else (day + datetime.timedelta(days=32)).replace(day=1)
        )
    return result


def expected_cold(customers, interactions, cutoff):
    last = {}
    for i in interactions:
        last[i.customer_id] = max(last.get(i.customer_id, i.occurred_at), i.occurred_at)
    cold = [c for c in customers if c.pk not in last or last[c.pk] < cutoff]
    cold.sort(key=lambda c: (c.pk in last, last.get(c.pk, cutoff), c.pk))
    return cold, last


def make_activity(customer_count, interaction_count, today, seed=11):
    rng = random.Random(seed)
    customers = CustomerFactory.create_batch(customer_count)
    # A few customers never hear from us at all.
    talked_to = customers[: max(1, customer_count - 2)]
    for _ in range(interaction_count):
        InteractionFactory(
            customer=rng.choice(talked_to),
            interaction_type=rng.choice(TYPES),
            occurred_at=at(today - datetime.timedelta(days=rng.randrange(0, 400)), rng.randrange(0, 24)),
        )
    return customers


@pytest.mark.django_db
class TestActivityAPI:
    @pytest.mark.parametrize("group_by", ["week", "month"])
    def test_periods_match_python(self, api, group_by):
        today = timezone.localdate()
        make_activity(6, 150, today)
        first, last = today - datetime.timedelta(days=200), today - datetime.timedelta(days=10)
        body = api.get(URL, {"group_by": group_by, "date_from": first, "date_to": last}).json()
        assert body["success"] is True
        data = body["data"]
        expected = expected_periods(list(Interaction.objects.all()), first, last, group_by)
        assert data["periods"] == expected
        assert data["totals"]["total"] == sum(p["total"] for p in expected)
        assert data["totals"]["by_type"] == {t: sum(p["by_type"][t] for p in expected) for t in TYPES}
        assert data["totals"]["total"] > 0
        assert [p["period"] for p in data["periods"]] == [d.isoformat() for d in periods(first, last, group_by)]

    def test_range_ends_are_whole_days(self, api):
        day = datetime.date(2026, 6, 10)
        customer = CustomerFactory()
        InteractionFactory(customer=customer, occurred_at=at(day, 0))
        InteractionFactory(
            customer=customer, occurred_at=timezone.make_aware(datetime.datetime(2026, 6, 10, 23, 59, 59))
        )
        InteractionFactory(customer=customer, occurred_at=at(day + datetime.timedelta(days=1), 0))
        InteractionFactory(customer=customer, occurred_at=at(day - datetime.timedelta(days=1), 23))
        data = api.get(URL, {"date_from": day, "date_to": day, "group_by": "month"}).json()["data"]
        assert data["periods"] == [
            {"period": "2026-06-01", "total": 2, "by_type": {**dict.fromkeys(TYPES, 0), "call": 2}}
        ]

    def test_defaults_cover_twelve_weeks_to_today(self, api):
        data = api.get(URL).json()["data"]
        today = timezone.localdate()
        assert data["group_by"] == "week"
        assert data["date_to"] == today.isoformat()
        assert data["date_from"] == (today - datetime.timedelta(weeks=12, days=-1)).isoformat()
        assert data["totals"]["total"] == 0
        assert len(data["periods"]) in (12, 13)
        assert data["going_cold"] == {"days": 30, "since": data["going_cold"]["since"], "count": 0, "customers": []}

    def test_going_cold_lists_silent_and_never_contacted_customers(self, api):
        today = timezone.localdate()
        customers = make_activity(8, 60, today)
        body = api.get(URL, {"cold_days": 45}).json()
        cold_data = body["data"]["going_cold"]
        cutoff = datetime.datetime.fromisoformat(cold_data["since"])
        cold, last = expected_cold(customers, list(Interaction.objects.all()), cutoff)
        assert cold_data["days"] == 45
        assert abs(timezone.now() - datetime.timedelta(days=45) - cutoff) < datetime.timedelta(minutes=1)
        assert cold_data["count"] == len(cold) >= 2
        assert [c["id"] for c in cold_data["customers"]] == [c.pk for c in cold]
        for item in cold_data["customers"]:
            expected_last = last.get(item["id"])
            assert item["last_interaction_at"] == (
                expected_last.isoformat().replace("+00:00", "Z") if expected_last else None
            )
        never = [item for item in cold_data["customers"] if item["last_interaction_at"] is None]
        assert len(never) == 2
        assert cold_data["customers"][: len(never)] == never

    def test_going_cold_is_capped_and_filtered_by_status(self, api):
        customers = CustomerFactory.create_batch(5)
        Customer.objects.filter(pk=customers[0].pk).update(status=Customer.Status.INACTIVE)
        data = api.get(URL, {"cold_limit": 2}).json()["data"]["going_cold"]
        assert data["count"] == 5
        assert [c["id"] for c in data["customers"]] == sorted(c.pk for c in customers)[:2]
        data = api.get(URL, {"status": "inactive"}).json()["data"]["going_cold"]
        assert [c["id"] for c in data["customers"]] == [customers[0].pk]

    def test_recent_interaction_warms_a_customer(self, api):
        warm, cold = CustomerFactory.create_batch(2)
        InteractionFactory(customer=warm, occurred_at=timezone.now() - datetime.timedelta(days=29))
        InteractionFactory(customer=cold, occurred_at=timezone.now() - datetime.timedelta(days=31))
        data = api.get(URL).json()["data"]["going_cold"]
        assert [c["id"] for c in data["customers"]] == [cold.pk]

    def test_an_interaction_logged_ahead_does_not_warm_a_customer(self, api):
        now = timezone.now()
        ahead, silent = CustomerFactory.create_batch(2)
        # A meeting set for next week: no contact in the last 30 days.
        InteractionFactory(customer=ahead, occurred_at=now + datetime.timedelta(days=7))
        InteractionFactory(customer=silent, occurred_at=now - datetime.timedelta(days=60))
        InteractionFactory(customer=silent, occurred_at=now + datetime.timedelta(days=3))
        data = api.get(URL).json()["data"]["going_cold"]
        assert data["count"] == 2
        assert [(c["id"], c["last_interaction_at"]) for c in data["customers"]] == [
            (ahead.pk, None),
            (silent.pk, (now - datetime.timedelta(days=60)).isoformat().replace("+00:00", "Z")),
        ]

    @pytest.mark.parametrize(
        ("params", "field"),
        [
            ({"group_by": "day"}, "group_by"),
            ({"date_from": "2026-02-30"}, "date_from"),
            ({"date_from": "2026-05-02", "date_to": "2026-05-01"}, "date_to"),
            ({"date_from": "2010-01-01", "date_to": "2026-01-01"}, "date_from"),
            ({"date_to": "9999-12-31"}, "date_to"),
            ({"cold_days": "0"}, "cold_days"),
            ({"cold_days": "ten"}, "cold_days"),
            ({"cold_limit": "501"}, "cold_limit"),
            ({"status": "vip"}, "status"),
        ],
    )
    def test_bad_parameters_are_400(self, api, params, field):
        response = api.get(URL, params)
        assert response.status_code == 400
        assert response.json()["success"] is False
        assert field in response.json()["error"]["fields"]

    @pytest.mark.parametrize("size", [4, 40])
    def test_query_count_is_fixed(self, api, django_assert_num_queries, size):
        make_activity(size, size * 5, timezone.localdate())
        # Token, the user's time zone, the period counts, the cold count and the cold list.
        with django_assert_num_queries(5):
            response = api.get(URL, {"group_by": "month", "cold_days": 10})
        assert response.status_code == 200
