import datetime

import pytest
from django.utils import timezone

from interactions.models import Interaction
from opportunities.models import Opportunity
from tests.factories import CustomerFactory, InteractionFactory, OpportunityFactory, TaskFactory

from .conftest import client_of, member

URL = "/api/reports/follow-ups"
pytestmark = pytest.mark.django_db


def aged(opportunity, days):
    """Pretend the deal was created, and last moved, ``days`` ago."""
    then = timezone.now() - datetime.timedelta(days=days)
    Opportunity.objects.filter(pk=opportunity.pk).update(created_at=then)
    opportunity.stage_changes.update(changed_at=then)


def test_deals_without_next_step_overdue_per_assignee_and_stale_deals(rep, rep_api, other_rep):
    customer = CustomerFactory(owner=rep)
    bare = OpportunityFactory(customer=customer, title="bare")
    planned = OpportunityFactory(customer=customer, title="planned")
    TaskFactory(
        customer=customer, opportunity=planned, assignee=rep, due_at=timezone.now() + datetime.timedelta(days=2)
    )
    OpportunityFactory(customer=customer, title="won", stage=Opportunity.Stage.CLOSED)
    # Overdue: two of the rep's, one of a colleague's on the rep's customer; done ones do not count.
    past = timezone.now() - datetime.timedelta(hours=3)
    TaskFactory.create_batch(2, customer=customer, assignee=rep, due_at=past)
    TaskFactory(customer=customer, assignee=other_rep, due_at=past - datetime.timedelta(days=1))
    TaskFactory(customer=customer, assignee=rep, due_at=past, done_at=timezone.now())
    # Stale: a lead untouched for 20 days (leads allow 14); a lead touched by an interaction 3 days ago is not.
    quiet_customer = CustomerFactory(owner=rep)
    quiet = OpportunityFactory(customer=quiet_customer, title="quiet")
    aged(quiet, 20)
    lively_customer = CustomerFactory(owner=rep)
    lively = OpportunityFactory(customer=lively_customer, title="lively")
    aged(lively, 20)
    InteractionFactory(customer=lively_customer, occurred_at=timezone.now() - datetime.timedelta(days=3))
    # Someone else's book is not counted.
    OpportunityFactory(customer=CustomerFactory(owner=other_rep), title="theirs")

    response = rep_api.get(URL)
    assert response.status_code == 200, response.content
    data = response.json()["data"]
    assert data["time_zone"] == "UTC"
    no_step = {deal["title"] for deal in data["no_next_step"]["deals"]}
    assert no_step == {"bare", "quiet", "lively"} and data["no_next_step"]["count"] == 3
    assert [(row["username"], row["count"]) for row in data["overdue_by_assignee"]] == [("rep", 2), ("other", 1)]
    assert [deal["title"] for deal in data["stale"]["deals"]] == ["quiet"]
    assert data["stale"]["days"] == {"lead": 14, "proposal": 10, "negotiation": 7}
    assert data["stale"]["deals"][0]["customer_name"] == quiet_customer.name
    assert {bare.pk, planned.pk}.isdisjoint({deal["id"] for deal in data["stale"]["deals"]})


def test_stale_days_are_a_setting(rep, rep_api, settings):
    settings.CRM_STALE_DAYS = {"lead": 2, "proposal": 10, "negotiation": 7}
    deal = OpportunityFactory(customer=CustomerFactory(owner=rep), title="slow")
    aged(deal, 3)
    assert [d["title"] for d in rep_api.get(URL).json()["data"]["stale"]["deals"]] == ["slow"]
    # A task added on the deal is activity.
    TaskFactory(customer=deal.customer, opportunity=deal, assignee=rep)
    assert rep_api.get(URL).json()["data"]["stale"]["deals"] == []


@pytest.mark.parametrize("params", [{"limit": 0}, {"limit": "x"}, {"limit": 501}])
def test_bad_parameters_are_400s(rep_api, params):
    assert rep_api.get(URL, params).status_code == 400


@pytest.mark.parametrize("size", [1, 12])
def test_query_count_is_fixed(db, django_assert_num_queries, size):
    manager = member("boss", "Sales manager")
    api = client_of(manager)
    for _ in range(size):
        deal = OpportunityFactory()
        aged(deal, 30)
        TaskFactory(customer=deal.customer, due_at=timezone.now() - datetime.timedelta(days=1))
        Interaction.objects.create(customer=deal.customer, interaction_type="call")
    # Token, preferences, two for deals without a next step, the zones in use and two for overdue per assignee,
    # two for stale deals.
    with django_assert_num_queries(9):
        assert api.get(URL).status_code == 200
