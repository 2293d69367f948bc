"""``GET /api/reports/pipeline`` and ``pipeline_summary``: every figure recomputed in plain Python."""

import datetime
import random
from decimal import ROUND_HALF_UP, Decimal

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext
from django.utils import timezone
from knox.models import get_token_model
from rest_framework.test import APIClient

from opportunities.models import Opportunity
from opportunities.reports import forecast, lost_reasons, pipeline_groups, pipeline_summary
from tests.conftest import browser
from tests.factories import CustomerFactory, OpportunityFactory

URL = "/api/reports/pipeline"
CENT = Decimal("0.01")
OPEN = [Opportunity.Stage.LEAD, Opportunity.Stage.PROPOSAL, Opportunity.Stage.NEGOTIATION]


def cents(value):
    return Decimal(value).quantize(CENT, rounding=ROUND_HALF_UP)


def expected_summary(opportunities):
    """The pipeline figures, from the rows themselves."""

    def total(names):
        # Rounded once, from the deals: not the sum of the stages' rounded figures.
        rows = [o for o in opportunities if o.stage in names]
        return {
            "count": len(rows),
            "total_value": cents(sum((o.value for o in rows), Decimal(0))),
            "weighted_value": cents(sum((o.value * o.probability / Decimal(100) for o in rows), Decimal(0))),
        }

    stages = [{"stage": stage.value, **total([stage])} for stage in Opportunity.Stage]

    won, lost = total(["closed"]), total(["lost"])

    def ratio(part, whole):
        return None if not whole else round(float(Decimal(part) / Decimal(whole)), 4)

    return {
        "stages": stages,
        "open": total(OPEN),
        "won": won,
        "lost": lost,
        "win_rate": {
            "by_count": ratio(won["count"], won["count"] + lost["count"]),
            "by_value": ratio(won["total_value"], won["total_value"] + lost["total_value"]),
        },
    }


def as_json_numbers(summary):
    """The summary as the API renders it (decimals become JSON numbers)."""
    stages = [
        {
            "stage": s["stage"],
            "count": s["count"],
            "total_value": float(s["total_value"]),
            "weighted_value": float(s["weighted_value"]),
        }
        for s in summary["stages"]
    ]
    totals = {
        name: {k: float(v) if isinstance(v, Decimal) else v for k, v in summary[name].items()}
        for name in ("open", "won", "lost")
    }
    return {"stages": stages, **totals, "win_rate": summary["win_rate"]}


def strip_labels(data):
    """The figures recomputed here: per stage (without the display label), open/won/lost, win rate."""
    return {
        "stages": [{k: v for k, v in s.items() if k != "label"} for s in data["stages"]],
        **{key: data[key] for key in ("open", "won", "lost", "win_rate")},
    }


def make_mixed_pipeline(count, seed=7):
    rng = random.Random(seed)
    customers = CustomerFactory.create_batch(3)
    for _ in range(count):
        OpportunityFactory(
            customer=rng.choice(customers),
            stage=rng.choice(list(Opportunity.Stage)),
            value=Decimal(rng.randrange(0, 10_000_000)) / 100,
            probability=rng.choice([0, 5, 33, 50, 77, 100]),
        )
    return customers


@pytest.mark.django_db
class TestPipelineSummary:
    def test_empty_database_has_zero_figures_and_no_win_rate(self):
        summary = pipeline_summary()
        assert strip_labels(summary) == expected_summary([])
        assert summary["win_rate"] == {"by_count": None, "by_value": None}
        assert [s["stage"] for s in summary["stages"]] == [s.value for s in Opportunity.Stage]

    def test_mixed_pipeline_matches_python(self):
        make_mixed_pipeline(60)
        assert strip_labels(pipeline_summary()) == expected_summary(list(Opportunity.objects.all()))

    def test_single_stage(self):
        OpportunityFactory.create_batch(3, stage=Opportunity.Stage.NEGOTIATION, value=Decimal("1000.10"))
        summary = pipeline_summary()
        assert strip_labels(summary) == expected_summary(list(Opportunity.objects.all()))
        negotiation = summary["stages"][2]
        assert negotiation["count"] == 3
        assert negotiation["total_value"] == Decimal("3000.30")
        assert negotiation["weighted_value"] == Decimal("2100.21")
        assert summary["win_rate"]["by_count"] is None

    def test_zero_value_and_full_probability(self):
        OpportunityFactory(stage=Opportunity.Stage.LEAD, value=Decimal("0"), probability=100)
        OpportunityFactory(stage=Opportunity.Stage.PROPOSAL, value=Decimal("2500.00"), probability=100)
        OpportunityFactory(stage=Opportunity.Stage.CLOSED, value=Decimal("0"))
        summary = pipeline_summary()
        assert strip_labels(summary) == expected_summary(list(Opportunity.objects.all()))
        assert summary["open"] == {"count": 2, "total_value": Decimal("2500.00"), "weighted_value": Decimal("2500.00")}
        # Won by count, but with no value on either side the value rate is undefined.
        assert summary["win_rate"] == {"by_count": 1.0, "by_value": None}

    def test_whole_number_values_are_weighted_exactly(self):
        # SQLite keeps 7.00 as the integer 7; 7 x 50 / 100 must still be 3.50.
        OpportunityFactory(stage=Opportunity.Stage.PROPOSAL, value=Decimal("7"), probability=50)
        OpportunityFactory(stage=Opportunity.Stage.PROPOSAL, value=Decimal("1"), probability=1)
        assert pipeline_summary()["stages"][1]["weighted_value"] == Decimal("3.51")

    def test_open_weighted_value_is_rounded_once_as_the_forecasts_and_the_groups(self):
        # Each stage's 0.005 is shown as 0.01; the open pipeline's 0.015 is 0.02, not the stages' 0.03.
        for stage in OPEN:
            OpportunityFactory(stage=stage, value=Decimal("0.01"), probability=50)
        summary = pipeline_summary()
        assert [s["weighted_value"] for s in summary["stages"][:3]] == [Decimal("0.01")] * 3
        assert summary["open"] == {"count": 3, "total_value": Decimal("0.03"), "weighted_value": Decimal("0.02")}
        assert forecast(timezone.localdate(), 3)["total"] == summary["open"]
        [group] = pipeline_groups(None, "owner", limit=None)
        assert group["open"] == summary["open"]
        assert strip_labels(summary) == expected_summary(list(Opportunity.objects.all()))

    def test_win_rate_by_count_and_value(self):
        OpportunityFactory(stage=Opportunity.Stage.CLOSED, value=Decimal("300"))
        OpportunityFactory(stage=Opportunity.Stage.LOST, value=Decimal("100"))
        OpportunityFactory(stage=Opportunity.Stage.LOST, value=Decimal("400"))
        assert pipeline_summary()["win_rate"] == {"by_count": 0.3333, "by_value": 0.375}

    def test_one_query(self, django_assert_num_queries):
        make_mixed_pipeline(10)
        with django_assert_num_queries(1):
            pipeline_summary()


@pytest.mark.django_db
class TestPipelineAPI:
    def test_requires_authentication(self, anon_client):
        response = anon_client.get(URL)
        assert response.status_code == 401
        assert response.json()["success"] is False

    @pytest.mark.parametrize("url", [URL, URL + "/"])
    def test_figures_in_the_envelope(self, api, url):
        make_mixed_pipeline(40)
        body = api.get(url).json()
        assert body["success"] is True
        assert strip_labels(body["data"]) == as_json_numbers(expected_summary(list(Opportunity.objects.all())))

    def test_filters_by_customer(self, api):
        customers = make_mixed_pipeline(40)
        target = customers[1]
        body = api.get(URL, {"customer_id": target.pk}).json()
        rows = list(Opportunity.objects.filter(customer=target))
        assert strip_labels(body["data"]) == as_json_numbers(expected_summary(rows))

    def test_filters_by_created_and_closed_days_inclusive(self, api):
        make_mixed_pipeline(30)
        rows = list(Opportunity.objects.order_by("id"))
        base = timezone.make_aware(datetime.datetime(2026, 3, 1, 12))
        for index, row in enumerate(rows):
            created = base + datetime.timedelta(days=index)
            closed = created + datetime.timedelta(days=5) if not row.is_open else None
            Opportunity.objects.filter(pk=row.pk).update(created_at=created, closed_at=closed)
        rows = list(Opportunity.objects.all())
        start, end = datetime.date(2026, 3, 5), datetime.date(2026, 3, 20)
        body = api.get(URL, {"created_from": start, "created_to": end}).json()
        chosen = [r for r in rows if start <= r.created_at.date() <= end]
        assert body["data"]["open"]["count"] + body["data"]["won"]["count"] + body["data"]["lost"]["count"] == 16
        assert strip_labels(body["data"]) == as_json_numbers(expected_summary(chosen))

        body = api.get(URL, {"closed_from": start, "closed_to": end}).json()
        chosen = [r for r in rows if r.closed_at and start <= r.closed_at.date() <= end]
        assert strip_labels(body["data"]) == as_json_numbers(expected_summary(chosen))
        assert body["data"]["open"]["count"] == 0

    @pytest.mark.parametrize(
        ("params", "field"),
        [
            ({"customer_id": "abc"}, "customer_id"),
            ({"customer_id": "0"}, "customer_id"),
            ({"customer_id": "99999"}, "customer_id"),
            ({"customer_id": str(10**30)}, "customer_id"),
            ({"created_from": "2026-13-01"}, "created_from"),
            ({"created_to": "yesterday"}, "created_to"),
            ({"closed_from": "0001-01-01"}, "closed_from"),
            ({"closed_to": "9999-12-31"}, "closed_to"),
            ({"created_from": "2026-05-02", "created_to": "2026-05-01"}, "created_to"),
        ],
    )
    def test_bad_parameters_are_400_in_the_envelope(self, api, params, field):
        response = api.get(URL, params)
        assert response.status_code == 400
        body = response.json()
        assert body["success"] is False
        assert body["error"]["code"] == "validation_error"
        assert field in body["error"]["fields"]

    @pytest.mark.parametrize("size", [3, 30])
    def test_query_count_is_fixed(self, api, django_assert_num_queries, size):
        customers = make_mixed_pipeline(size)
        # Token lookup, the user's time zone (their days), the aggregate, the lost deals by reason; the customer
        # filter adds its existence check.
        with django_assert_num_queries(4):
            assert api.get(URL).status_code == 200
        with django_assert_num_queries(5):
            assert api.get(URL, {"customer_id": customers[0].pk, "created_from": "2020-01-01"}).status_code == 200


def api_for(user):
    _, raw = get_token_model().objects.create(user)
    client = APIClient()
    client.credentials(HTTP_AUTHORIZATION=f"Bearer {raw}")
    return client


def lost(reason="", **fields):
    return OpportunityFactory(stage=Opportunity.Stage.LOST, lost_reason=reason, **fields)


def as_rows(data):
    return [(g["reason"], g["label"], g["count"], g["total_value"]) for g in data["lost_reasons"]]


@pytest.mark.django_db
class TestLostReasons:
    """``lost_reasons``: the lost deals by reason, in the report and on the admin's dashboard."""

    def test_lost_deals_by_reason_most_frequent_first(self, api):
        lost("Price", value=Decimal("100.10"))
        lost("Price", value=Decimal("200"))
        lost("Timing", value=Decimal("5000"))
        lost("", value=Decimal("10"))
        lost("", value=Decimal("20"))
        lost("", value=Decimal("30"))
        lost("Budget", value=Decimal("5000"))
        OpportunityFactory(stage=Opportunity.Stage.LEAD, value=Decimal("999"))
        OpportunityFactory(stage=Opportunity.Stage.CLOSED, value=Decimal("999"))
        data = api.get(URL).json()["data"]
        assert as_rows(data) == [
            (None, "No reason given", 3, 60.0),
            ("Price", "Price", 2, 300.1),
            # Equal counts: the largest total first, then by reason.
            ("Budget", "Budget", 1, 5000.0),
            ("Timing", "Timing", 1, 5000.0),
        ]
        assert sum(g["count"] for g in data["lost_reasons"]) == data["lost"]["count"] == 7

    def test_no_lost_deal_no_reasons(self, api):
        OpportunityFactory(stage=Opportunity.Stage.LEAD)
        assert api.get(URL).json()["data"]["lost_reasons"] == []

    def test_the_label_of_no_reason_is_in_the_user_language(self, api):
        lost()
        data = api.get(URL, HTTP_ACCEPT_LANGUAGE="zh-hans").json()["data"]
        assert as_rows(data) == [(None, "未填写原因", 1, 1000.0)]

    def test_at_most_fifty_reasons(self):
        for n in range(52):
            lost(f"Reason {n:02}")
        groups = lost_reasons(Opportunity.objects.all())
        assert len(groups) == 50
        assert groups[0]["reason"] == "Reason 00"

    def test_the_report_filters_hold_for_the_reasons(self, api):
        first, second = CustomerFactory(), CustomerFactory()
        early = lost("Price", customer=first)
        late = lost("Timing", customer=first)
        lost("Budget", customer=second)
        Opportunity.objects.filter(pk=early.pk).update(closed_at=timezone.make_aware(datetime.datetime(2026, 3, 2, 12)))
        Opportunity.objects.filter(pk=late.pk).update(closed_at=timezone.make_aware(datetime.datetime(2026, 3, 9, 12)))
        data = api.get(URL, {"customer_id": first.pk}).json()["data"]
        assert sorted(g["reason"] for g in data["lost_reasons"]) == ["Price", "Timing"]
        data = api.get(URL, {"closed_from": "2026-03-01", "closed_to": "2026-03-05"}).json()["data"]
        assert as_rows(data) == [("Price", "Price", 1, 1000.0)]
        data = api.get(URL, {"closed_from": "2026-03-06", "closed_to": "2026-03-31"}).json()["data"]
        assert as_rows(data) == [("Timing", "Timing", 1, 1000.0)]

    def test_a_rep_sees_the_reasons_of_their_own_deals_only(self, rep, other_rep):
        lost("Price", customer=CustomerFactory(owner=rep))
        lost("Price", customer=CustomerFactory(owner=other_rep))
        lost("Timing", customer=CustomerFactory(owner=other_rep))
        lost("Budget", customer=CustomerFactory(owner=None))
        data = api_for(rep).get(URL).json()["data"]
        assert as_rows(data) == [("Price", "Price", 1, 1000.0)]
        assert data["lost"]["count"] == 1

    @pytest.mark.parametrize("size", [3, 30])
    def test_one_query_for_the_reasons_however_many(self, api, django_assert_num_queries, size):
        for n in range(size):
            lost(f"Reason {n % 7}" if n % 3 else "")
        # Token lookup, the user's time zone (their days), the aggregate, the reasons.
        with django_assert_num_queries(4):
            data = api.get(URL).json()["data"]
        assert sum(g["count"] for g in data["lost_reasons"]) == size

    def test_the_dashboard_lists_the_lost_deals_by_reason(self, admin_client):
        lost("Price", value=Decimal("100"))
        lost("Price", value=Decimal("50"))
        lost(value=Decimal("7"))
        response = admin_client.get("/admin/")
        assert [(g["label"], g["count"], g["total_value"]) for g in response.context["lost_reasons"]] == [
            ("Price", 2, Decimal("150.00")),
            ("No reason given", 1, Decimal("7.00")),
        ]
        html = response.content.decode()
        assert 'id="lost-reasons"' in html and "<em>No reason given</em>" in html

    def test_the_dashboard_of_a_rep_has_their_own_reasons_only(self, rep, other_rep):
        lost("Mine", customer=CustomerFactory(owner=rep))
        lost("Theirs", customer=CustomerFactory(owner=other_rep))
        response = browser(rep).get("/admin/")
        assert [g["label"] for g in response.context["lost_reasons"]] == ["Mine"]

    def test_the_dashboard_query_count_does_not_grow_with_reasons(self, admin_client):
        lost("Price")
        with CaptureQueriesContext(connection) as few:
            admin_client.get("/admin/")
        for n in range(12):
            lost(f"Reason {n}")
        with CaptureQueriesContext(connection) as many:
            response = admin_client.get("/admin/")
        assert len(response.context["lost_reasons"]) == 13
        assert len(many) == len(few)
