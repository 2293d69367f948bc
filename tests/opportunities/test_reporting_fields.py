"""The fields reports rely on: expected_close_date, closed_at, the stage log, Interaction.occurred_at."""

import datetime

import pytest
from django.utils import timezone

from interactions.models import Interaction
from opportunities.models import Opportunity, StageChange
from tests.factories import CustomerFactory, InteractionFactory, OpportunityFactory

pytestmark = pytest.mark.django_db


def move(opportunity, stage):
    opportunity.stage = stage
    opportunity.save()
    return opportunity


class TestClosedAt:
    @pytest.mark.parametrize("stage", [Opportunity.Stage.CLOSED, Opportunity.Stage.LOST])
    def test_set_when_closed_or_lost(self, stage):
        opportunity = OpportunityFactory()
        assert opportunity.closed_at is None
        before = timezone.now()
        move(opportunity, stage)
        opportunity.refresh_from_db()
        assert before <= opportunity.closed_at <= timezone.now()

    def test_created_closed_has_closed_at(self):
        assert OpportunityFactory(stage=Opportunity.Stage.CLOSED).closed_at is not None

    def test_cleared_when_reopened(self):
        opportunity = move(OpportunityFactory(), Opportunity.Stage.LOST)
        move(Opportunity.objects.get(pk=opportunity.pk), Opportunity.Stage.NEGOTIATION)
        assert Opportunity.objects.get(pk=opportunity.pk).closed_at is None

    def test_kept_when_a_closed_opportunity_is_edited(self):
        opportunity = move(OpportunityFactory(), Opportunity.Stage.CLOSED)
        closed_at = Opportunity.objects.get(pk=opportunity.pk).closed_at
        again = Opportunity.objects.get(pk=opportunity.pk)
        again.title = "Renamed"
        again.save()
        assert Opportunity.objects.get(pk=opportunity.pk).closed_at == closed_at

    def test_moves_when_won_becomes_lost(self):
        opportunity = move(OpportunityFactory(), Opportunity.Stage.CLOSED)
        first = Opportunity.objects.get(pk=opportunity.pk).closed_at
        move(Opportunity.objects.get(pk=opportunity.pk), Opportunity.Stage.LOST)
        assert Opportunity.objects.get(pk=opportunity.pk).closed_at > first

    def test_saved_with_update_fields(self):
        opportunity = OpportunityFactory()
        opportunity = Opportunity.objects.get(pk=opportunity.pk)
        opportunity.stage = Opportunity.Stage.CLOSED
        opportunity.save(update_fields=["stage"])
        assert Opportunity.objects.get(pk=opportunity.pk).closed_at is not None


class TestStageLog:
    def test_creation_and_each_change_are_logged(self):
        opportunity = OpportunityFactory()
        for stage in (Opportunity.Stage.PROPOSAL, Opportunity.Stage.PROPOSAL, Opportunity.Stage.CLOSED):
            move(Opportunity.objects.get(pk=opportunity.pk), stage)
        assert list(
            StageChange.objects.filter(opportunity=opportunity).order_by("id").values_list("from_stage", "to_stage")
        ) == [(None, "lead"), ("lead", "proposal"), ("proposal", "closed")]

    def test_log_goes_with_the_opportunity(self):
        opportunity = OpportunityFactory()
        opportunity.delete()
        assert not StageChange.objects.exists()


class TestOpportunityAPI:
    def test_expected_close_date_round_trips_and_closed_at_is_read_only(self, api):
        customer = CustomerFactory()
        body = api.post(
            "/api/opportunities",
            {
                "customer_id": customer.pk,
                "title": "Deal",
                "expected_close_date": "2027-03-31",
                "closed_at": "2020-01-01T00:00:00Z",
            },
            format="json",
        ).json()["data"]
        assert body["expected_close_date"] == "2027-03-31"
        assert body["closed_at"] is None
        body = api.put(f"/api/opportunities/{body['id']}", {"stage": "closed"}, format="json").json()["data"]
        assert body["closed_at"] is not None
        assert body["probability"] == 100
        body = api.put(
            f"/api/opportunities/{body['id']}", {"stage": "proposal", "expected_close_date": None}, format="json"
        ).json()["data"]
        assert (body["closed_at"], body["expected_close_date"]) == (None, None)

    @pytest.mark.parametrize("value", ["2027-02-30", "soon", 20270101])
    def test_bad_expected_close_date_is_400(self, api, value):
        customer = CustomerFactory()
        response = api.post(
            "/api/opportunities",
            {"customer_id": customer.pk, "title": "Deal", "expected_close_date": value},
            format="json",
        )
        assert response.status_code == 400
        assert "expected_close_date" in response.json()["error"]["fields"]


class TestOccurredAt:
    def test_defaults_to_now(self):
        before = timezone.now()
        interaction = InteractionFactory()
        assert before <= interaction.occurred_at <= timezone.now()

    def test_may_be_logged_afterwards_via_the_api(self, api):
        customer = CustomerFactory()
        body = api.post(
            "/api/interactions",
            {"customer_id": customer.pk, "interaction_type": "meeting", "occurred_at": "2026-01-05T10:00:00+08:00"},
            format="json",
        ).json()["data"]
        stored = Interaction.objects.get(pk=body["id"])
        assert stored.occurred_at == datetime.datetime(2026, 1, 5, 2, 0, tzinfo=datetime.UTC)
        assert stored.created_at > stored.occurred_at
        assert body["occurred_at"] == "2026-01-05T02:00:00Z"

    def test_without_occurred_at_the_api_uses_now(self, api):
        customer = CustomerFactory()
        body = api.post(
            "/api/interactions", {"customer_id": customer.pk, "interaction_type": "call"}, format="json"
        ).json()["data"]
        stored = Interaction.objects.get(pk=body["id"])
        assert abs(stored.occurred_at - stored.created_at) < datetime.timedelta(seconds=5)

    def test_bad_occurred_at_is_400(self, api):
        customer = CustomerFactory()
        response = api.post(
            "/api/interactions",
            {"customer_id": customer.pk, "interaction_type": "call", "occurred_at": "yesterday"},
            format="json",
        )
        assert response.status_code == 400
        assert "occurred_at" in response.json()["error"]["fields"]
