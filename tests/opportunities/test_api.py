from decimal import Decimal

import pytest

from opportunities.models import Opportunity, StageChange
from tests.factories import CustomerFactory, OpportunityFactory

URL = "/api/opportunities"


def test_create_opportunity_renders_value_as_a_number(api):
    customer = CustomerFactory()
    payload = {
        "customer_id": customer.pk,
        "title": "企业软件采购",
        "value": 100000.00,
        "stage": "lead",
        "probability": 20,
    }
    response = api.post(URL, payload, format="json")
    assert response.status_code == 201
    data = response.json()["data"]
    assert data["value"] == 100000.0
    assert isinstance(data["value"], float)
    assert (data["title"], data["stage"], data["probability"]) == ("企业软件采购", "lead", 20)
    assert Opportunity.objects.get(pk=data["id"]).value == Decimal("100000.00")


def test_defaults_value_stage_and_probability(api):
    customer = CustomerFactory()
    data = api.post(URL, {"customer_id": customer.pk, "title": "x"}, format="json").json()["data"]
    assert data["value"] == 0
    assert data["stage"] == "lead"
    assert data["probability"] == Opportunity.DEFAULT_PROBABILITY[Opportunity.Stage.LEAD]


@pytest.mark.parametrize("stage", list(Opportunity.Stage))
def test_probability_defaults_per_stage(api, stage):
    customer = CustomerFactory()
    data = api.post(URL, {"customer_id": customer.pk, "title": "x", "stage": stage}, format="json").json()["data"]
    assert data["probability"] == Opportunity.DEFAULT_PROBABILITY[stage]


def test_value_accepts_two_decimal_places_and_rounds_more_to_cents(api):
    customer = CustomerFactory()
    data = api.post(URL, {"customer_id": customer.pk, "title": "x", "value": 1234.56}, format="json").json()["data"]
    assert data["value"] == 1234.56
    data = api.post(URL, {"customer_id": customer.pk, "title": "y", "value": 1.235}, format="json").json()["data"]
    assert Opportunity.objects.get(pk=data["id"]).value == Decimal("1.24")


@pytest.mark.parametrize(
    ("payload", "field"),
    [
        ({"title": "x"}, "customer_id"),
        ({"customer_id": 987654, "title": "x"}, "customer_id"),
        ({"customer_id": "C"}, "title"),
        ({"customer_id": "C", "title": ""}, "title"),
        ({"customer_id": "C", "title": "t" * 201}, "title"),
        ({"customer_id": "C", "title": "a\x00"}, "title"),
        ({"customer_id": "C", "title": "x", "value": -1}, "value"),
        ({"customer_id": "C", "title": "x", "value": "abc"}, "value"),
        ({"customer_id": "C", "title": "x", "value": "1000"}, "value"),
        ({"customer_id": "C", "title": "x", "value": 1e15}, "value"),
        ({"customer_id": "C", "title": "x", "stage": "won"}, "stage"),
        ({"customer_id": "C", "title": "x", "probability": 101}, "probability"),
        ({"customer_id": "C", "title": "x", "probability": -1}, "probability"),
        ({"customer_id": "C", "title": "x", "probability": 50.5}, "probability"),
        ({"customer_id": "C", "title": "x", "probability": "high"}, "probability"),
        ({"customer_id": "C", "title": "x", "expected_close_date": "soon"}, "expected_close_date"),
    ],
)
def test_create_rejects_invalid_field(api, payload, field):
    customer = CustomerFactory()
    payload = {k: (customer.pk if v == "C" else v) for k, v in payload.items()}
    response = api.post(URL, payload, format="json")
    assert response.status_code == 400
    assert field in response.json()["error"]["fields"]
    assert not Opportunity.objects.exists()


def test_update_stage_and_probability(api):
    opportunity = OpportunityFactory(stage="lead")
    response = api.put(f"{URL}/{opportunity.pk}", {"stage": "closed", "probability": 100}, format="json")
    assert response.status_code == 200
    data = response.json()["data"]
    assert (data["stage"], data["probability"]) == ("closed", 100)
    assert data["closed_at"] is not None
    opportunity.refresh_from_db()
    assert opportunity.stage == Opportunity.Stage.CLOSED


def test_stage_change_without_probability_takes_the_stage_default(api):
    opportunity = OpportunityFactory(stage="lead", probability=15)
    data = api.put(f"{URL}/{opportunity.pk}", {"stage": "negotiation"}, format="json").json()["data"]
    assert data["probability"] == Opportunity.DEFAULT_PROBABILITY[Opportunity.Stage.NEGOTIATION]


def test_update_without_stage_keeps_probability(api):
    opportunity = OpportunityFactory(stage="lead", probability=15)
    data = api.put(f"{URL}/{opportunity.pk}", {"title": "renamed"}, format="json").json()["data"]
    assert (data["title"], data["probability"]) == ("renamed", 15)


def test_reopening_clears_closed_at_and_stage_changes_are_logged(api):
    opportunity = OpportunityFactory(stage="proposal")
    api.put(f"{URL}/{opportunity.pk}", {"stage": "lost"}, format="json")
    data = api.put(f"{URL}/{opportunity.pk}", {"stage": "negotiation"}, format="json").json()["data"]
    assert data["closed_at"] is None
    steps = list(
        StageChange.objects.filter(opportunity=opportunity).order_by("id").values_list("from_stage", "to_stage")
    )
    assert steps == [(None, "proposal"), ("proposal", "lost"), ("lost", "negotiation")]


def test_delete_opportunity(api):
    opportunity = OpportunityFactory()
    response = api.delete(f"{URL}/{opportunity.pk}")
    assert response.status_code == 200
    assert response.json()["message"] == "Opportunity deleted."
    assert not Opportunity.objects.exists()


class TestFilters:
    @pytest.fixture
    def deals(self, db):
        customer = CustomerFactory()
        return {
            "small": OpportunityFactory(customer=customer, value=Decimal("100"), stage="lead", probability=10),
            "mid": OpportunityFactory(customer=customer, value=Decimal("5000"), stage="proposal", probability=40),
            "big": OpportunityFactory(value=Decimal("90000"), stage="negotiation", probability=80),
        }

    def names(self, api, params, deals):
        ids = {r["id"] for r in api.get(URL, params).json()["data"]}
        return {name for name, deal in deals.items() if deal.pk in ids}

    def test_by_customer(self, api, deals):
        assert self.names(api, {"customer_id": deals["small"].customer_id}, deals) == {"small", "mid"}

    def test_by_stage(self, api, deals):
        assert self.names(api, {"stage": "proposal"}, deals) == {"mid"}

    def test_by_value_range(self, api, deals):
        assert self.names(api, {"min_value": 1000}, deals) == {"mid", "big"}
        assert self.names(api, {"min_value": 100, "max_value": 5000}, deals) == {"small", "mid"}

    def test_by_probability_range(self, api, deals):
        assert self.names(api, {"min_probability": 40, "max_probability": 79}, deals) == {"mid"}

    def test_ordering_by_value(self, api, deals):
        data = api.get(URL, {"ordering": "-value"}).json()["data"]
        assert [r["id"] for r in data] == [deals["big"].pk, deals["mid"].pk, deals["small"].pk]

    @pytest.mark.parametrize(
        "params",
        [
            {"stage": "won"},
            {"min_value": "lots"},
            {"min_value": "-5"},
            {"max_value": "NaN"},
            {"min_probability": "101"},
            {"customer_id": "x"},
            {"ordering": "secret"},
        ],
    )
    def test_garbage_is_a_400(self, api, params):
        response = api.get(URL, params)
        assert response.status_code == 400
        assert set(response.json()["error"]["fields"]) == set(params)
