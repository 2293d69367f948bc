"""``GET /api/reports/forecast``: weighted open pipeline per expected close month, recomputed in Python."""

import datetime
import random
from decimal import ROUND_HALF_UP, Decimal

import pytest
from django.utils import timezone

from core.dates import add_months
from opportunities.models import Opportunity
from opportunities.reports import forecast
from tests.factories import CustomerFactory, OpportunityFactory

URL = "/api/reports/forecast"
CENT = Decimal("0.01")


def cents(value):
    return Decimal(value).quantize(CENT, rounding=ROUND_HALF_UP)


def figures(rows):
    return {
        "count": len(rows),
        "total_value": cents(sum((o.value for o in rows), Decimal(0))),
        "weighted_value": cents(sum((o.value * o.probability / Decimal(100) for o in rows), Decimal(0))),
    }


def expected_forecast(opportunities, today, months):
    open_rows = [o for o in opportunities if o.stage in Opportunity.OPEN_STAGES]
    end = add_months(today, months)
    month_keys = [add_months(today, i).strftime("%Y-%m") for i in range(months)]
    in_months = {key: [] for key in month_keys}
    overdue, later, unscheduled = [], [], []
    for row in open_rows:
        day = row.expected_close_date
        if day is None:
            unscheduled.append(row)
        elif day < today:
            overdue.append(row)
        elif day >= end:
            later.append(row)
        else:
            in_months[day.strftime("%Y-%m")].append(row)
    return {
        "today": today,
        "months": [{"month": key, **figures(in_months[key])} for key in month_keys],
        "overdue": figures(overdue),
        "later": figures(later),
        "unscheduled": figures(unscheduled),
        "total": figures(open_rows),
    }


def jsonish(report):
    def convert(item):
        return {k: float(v) if isinstance(v, Decimal) else v for k, v in item.items()}

    return {
        "today": report["today"].isoformat(),
        "months": [convert(m) for m in report["months"]],
        **{name: convert(report[name]) for name in ("overdue", "later", "unscheduled", "total")},
    }


def make_forecast_data(count, today, seed=3):
    rng = random.Random(seed)
    customers = CustomerFactory.create_batch(2)
    offsets = [None, -400, -31, -1, 0, 1, 15, 29, 45, 70, 100, 200, 400, 1200]
    for _ in range(count):
        offset = rng.choice(offsets)
        OpportunityFactory(
            customer=rng.choice(customers),
            stage=rng.choice(list(Opportunity.Stage)),
            value=Decimal(rng.randrange(0, 5_000_000)) / 100,
            probability=rng.choice([0, 10, 45, 100]),
            expected_close_date=None if offset is None else today + datetime.timedelta(days=offset),
        )
    return customers


@pytest.mark.django_db
class TestForecast:
    def test_empty_database(self):
        today = datetime.date(2026, 11, 24)
        report = forecast(today, 3)
        assert report == expected_forecast([], today, 3)
        assert [m["month"] for m in report["months"]] == ["2026-11", "2026-12", "2027-01"]

    @pytest.mark.parametrize("months", [1, 3, 12, 36])
    def test_buckets_match_python(self, months):
        today = datetime.date(2026, 11, 24)
        make_forecast_data(80, today)
        rows = list(Opportunity.objects.all())
        report = forecast(today, months)
        assert report == expected_forecast(rows, today, months)
        # Every open opportunity is in exactly one bucket.
        bucket_counts = sum(m["count"] for m in report["months"]) + sum(
            report[name]["count"] for name in ("overdue", "later", "unscheduled")
        )
        assert bucket_counts == report["total"]["count"] == sum(1 for r in rows if r.is_open)

    def test_expected_today_is_not_overdue_and_yesterday_is(self):
        today = datetime.date(2026, 1, 31)
        OpportunityFactory(expected_close_date=today, value=Decimal("100"), probability=100)
        OpportunityFactory(expected_close_date=today - datetime.timedelta(days=1), value=Decimal("7"), probability=50)
        OpportunityFactory(expected_close_date=datetime.date(2026, 2, 28), value=Decimal("0"), probability=100)
        OpportunityFactory(stage=Opportunity.Stage.CLOSED, expected_close_date=today, value=Decimal("999"))
        report = forecast(today, 2)
        assert report["months"][0] == {
            "month": "2026-01",
            "count": 1,
            "total_value": Decimal("100.00"),
            "weighted_value": Decimal("100.00"),
        }
        assert report["months"][1] == {
            "month": "2026-02",
            "count": 1,
            "total_value": Decimal("0.00"),
            "weighted_value": Decimal("0.00"),
        }
        assert report["overdue"] == {"count": 1, "total_value": Decimal("7.00"), "weighted_value": Decimal("3.50")}

    def test_two_queries_whatever_the_horizon(self, django_assert_num_queries):
        today = datetime.date(2026, 11, 24)
        make_forecast_data(20, today)
        for months in (1, 36):
            with django_assert_num_queries(2):
                forecast(today, months)


@pytest.mark.django_db
class TestForecastAPI:
    def test_default_horizon_is_three_months_from_today(self, api):
        today = timezone.localdate()
        make_forecast_data(50, today)
        body = api.get(URL).json()
        assert body["success"] is True
        assert body["data"] == jsonish(expected_forecast(list(Opportunity.objects.all()), today, 3))

    def test_months_and_customer(self, api):
        today = timezone.localdate()
        customers = make_forecast_data(50, today)
        body = api.get(URL + "/", {"months": 12, "customer_id": customers[0].pk}).json()
        rows = list(Opportunity.objects.filter(customer=customers[0]))
        assert body["data"] == jsonish(expected_forecast(rows, today, 12))

    @pytest.mark.parametrize(
        "params", [{"months": "0"}, {"months": "37"}, {"months": "x"}, {"customer_id": "-1"}, {"customer_id": "424242"}]
    )
    def test_bad_parameters_are_400(self, api, params):
        response = api.get(URL, params)
        assert response.status_code == 400
        assert response.json()["error"]["fields"].keys() == params.keys()

    @pytest.mark.parametrize("size", [5, 40])
    def test_query_count_is_fixed(self, api, django_assert_num_queries, size):
        make_forecast_data(size, timezone.localdate())
        with django_assert_num_queries(4):  # token, the user's time zone, two report queries
            assert api.get(URL, {"months": 36}).status_code == 200

    def test_requires_authentication(self, anon_client):
        assert anon_client.get(URL).status_code == 401
