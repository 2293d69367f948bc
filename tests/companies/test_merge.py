"""Merging companies: people and opportunities move to the survivor; the merged-away ids answer 404."""

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext

from companies.models import Company
from companies.services import merge_companies
from core.merges import MergeRefused
from core.models import Event, MergedRecord
from customers.models import Customer
from opportunities.models import Opportunity
from tests.factories import CompanyFactory, CustomerFactory, ManagerFactory, OpportunityFactory

pytestmark = pytest.mark.django_db


def with_people(company, people=1, opportunities=1):
    for person in CustomerFactory.create_batch(people, company=company):
        OpportunityFactory.create_batch(opportunities, customer=person, company=company)
    return company


def test_merge_moves_the_people_and_opportunities_of_both_sides():
    manager = ManagerFactory()
    survivor = with_people(CompanyFactory(name="Acme", domain=None, industry=""), people=2, opportunities=1)
    other = with_people(
        CompanyFactory(name="ACME Ltd", domain="acme.example", industry="Retail", tags=["Partner"]),
        people=3,
        opportunities=2,
    )
    other_id = other.pk

    result = merge_companies(survivor, [other], user=manager)

    assert result["moved"] == {"people": 3, "opportunities": 6}
    assert Customer.objects.filter(company=survivor).count() == 5
    assert set(Customer.objects.filter(company=survivor).values_list("company_name", flat=True)) == {"Acme"}
    assert Opportunity.objects.filter(company=survivor).count() == 8
    assert not Company.objects.filter(pk=other_id).exists()
    survivor.refresh_from_db()
    # Empty on the survivor: the other's; the unique domain released by the deleted company first.
    assert (survivor.name, survivor.domain, survivor.industry) == ("Acme", "acme.example", "Retail")
    assert survivor.tags == ["Partner"]
    assert Customer.history.filter(company_id=survivor.pk, history_type="~").count() == 3
    assert MergedRecord.objects.get(model="companies.company").survivor_id == survivor.pk
    assert Event.objects.filter(type="company.merged", object_id=survivor.pk).count() == 1


def test_a_chosen_name_is_carried_to_every_person():
    manager = ManagerFactory()
    survivor, other = with_people(CompanyFactory(name="Acme")), with_people(CompanyFactory(name="Acme Corporation"))

    merge_companies(survivor, [other], choices={"name": other.pk}, user=manager)

    assert set(Customer.objects.filter(company=survivor).values_list("company_name", flat=True)) == {"Acme Corporation"}


def test_a_company_cannot_be_merged_with_itself():
    manager = ManagerFactory()
    company = CompanyFactory()

    with pytest.raises(MergeRefused):
        merge_companies(company, [company], user=manager)


def test_merge_queries_do_not_grow_with_the_people():
    manager = ManagerFactory()

    def queries(people):
        survivor, other = with_people(CompanyFactory(), people), with_people(CompanyFactory(), people)
        with CaptureQueriesContext(connection) as captured:
            merge_companies(survivor, [other], user=manager)
        return len(captured)

    queries(1)  # Roles and tracked fields read once, then cached.
    assert queries(2) == queries(30)


def test_api_merge_and_the_merged_away_id(api):
    survivor, other = with_people(CompanyFactory(name="Acme")), with_people(CompanyFactory(name="Acme Inc"), people=2)

    dry = api.post(
        "/api/companies/merge?dry_run=true", {"survivor_id": survivor.pk, "merged_ids": [other.pk]}, format="json"
    )
    assert dry.status_code == 200 and dry.json()["data"]["people_count"] == 3
    assert Company.objects.filter(pk=other.pk).exists()

    response = api.post("/api/companies/merge", {"survivor_id": survivor.pk, "merged_ids": [other.pk]}, format="json")

    data = response.json()["data"]
    assert response.status_code == 200, response.content
    assert data["id"] == survivor.pk and data["people_count"] == 3 and data["merged_ids"] == [other.pk]
    assert data["moved"] == {"people": 2, "opportunities": 2}
    gone = api.get(f"/api/companies/{other.pk}")
    assert gone.status_code == 404 and gone.json()["error"]["merged_into"] == survivor.pk


@pytest.mark.parametrize("text", ["survivor_id", "merged_ids"])
def test_api_refuses_ids_given_as_text_and_merges_nothing(api, text):
    survivor, other = with_people(CompanyFactory(name="Acme")), with_people(CompanyFactory(name="Acme Inc"))
    body = {"survivor_id": survivor.pk, "merged_ids": [other.pk]}
    body[text] = str(survivor.pk) if text == "survivor_id" else [str(other.pk)]
    entries, events = Company.history.count(), Event.objects.count()

    response = api.post("/api/companies/merge", body, format="json")

    assert response.status_code == 400, response.content
    message = "A valid integer is required."
    assert response.json()["error"]["fields"] == {text: [message if text == "survivor_id" else f"0: {message}"]}
    assert Company.objects.filter(pk__in=[survivor.pk, other.pk]).count() == 2
    assert Customer.objects.filter(company=other).count() == 1 and not MergedRecord.objects.exists()
    assert (Company.history.count(), Event.objects.count()) == (entries, events)


def test_a_rep_cannot_hand_the_survivor_to_another_owner_by_merging():
    from django.contrib.auth.models import Group

    from tests.factories import UserFactory

    rep, manager = UserFactory(username="rep"), ManagerFactory()
    rep.groups.add(Group.objects.get(name="Sales rep"))
    # A rep sees a manager's company through a customer of theirs working there.
    theirs = CompanyFactory(name="Managed", owner=manager)
    CustomerFactory(company=theirs, owner=rep)
    unowned = CompanyFactory(name="Unowned")
    CustomerFactory(company=unowned, owner=rep)

    with pytest.raises(MergeRefused):
        merge_companies(unowned, [theirs], choices={"owner": theirs.pk}, user=rep)

    # Left empty on the survivor, the owner is not filled from the other record for a rep.
    merge_companies(unowned, [theirs], user=rep)
    unowned.refresh_from_db()
    assert unowned.owner is None


def test_a_rep_merges_no_company_with_people_or_deals_of_another_book(rep, other_rep):
    """A company is seen by every rep with a person there: its merge would move the others' people and deals."""
    survivor, other = CompanyFactory(name="Acme"), CompanyFactory(name="ACME Ltd")
    CustomerFactory(company=survivor, owner=rep)
    mine = CustomerFactory(company=other, owner=rep)
    theirs = CustomerFactory(company=other, owner=other_rep)

    with pytest.raises(MergeRefused, match="another book"):
        merge_companies(survivor, [other], user=rep)
    assert set(Customer.objects.filter(company=other).values_list("pk", flat=True)) == {mine.pk, theirs.pk}

    # Their deal alone (its customer elsewhere, or without a company) is under the company too.
    theirs.company, theirs.company_name = None, None
    theirs.save()
    OpportunityFactory(customer=theirs, company=other)
    with pytest.raises(MergeRefused, match="another book"):
        merge_companies(survivor, [other], user=rep)

    Opportunity.objects.filter(customer=theirs).delete()
    result = merge_companies(survivor, [other], user=rep)
    assert result["moved"] == {"people": 1, "opportunities": 0}
    assert Customer.objects.get(pk=mine.pk).company_id == survivor.pk
