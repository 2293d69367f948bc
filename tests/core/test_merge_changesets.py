"""A merge is a changeset: its undo puts both records back with their children, tags, custom values
and ids (the tombstone goes, the merged-away id answers again); undoing the undo merges again."""

import pytest
from django.test import Client

from companies.models import Company
from companies.services import merge_companies
from core.changesets import Changeset, undo
from core.models import MergedRecord
from customers.models import Customer
from customers.services import merge_customers
from tests.core.test_changesets import snapshot
from tests.factories import (
    CompanyFactory,
    CustomerFactory,
    InteractionFactory,
    ManagerFactory,
    OpportunityFactory,
    StaffFactory,
    TaskFactory,
)

pytestmark = pytest.mark.django_db


def state():
    """The records' snapshot with the tombstones of merges."""
    return {
        **snapshot(),
        "tombstones": list(MergedRecord.objects.order_by("id").values("model", "old_id", "survivor_id")),
    }


def customer_with_children(manager, **kwargs):
    customer = CustomerFactory(owner=manager, **kwargs)
    InteractionFactory.create_batch(2, customer=customer)
    OpportunityFactory(customer=customer, tags=["big"])
    TaskFactory(customer=customer, assignee=manager)
    return Customer.objects.get(pk=customer.pk)


@pytest.fixture
def manager():
    return ManagerFactory()


def test_undoing_a_customer_merge_restores_both_sides_and_redo_merges_again(manager):
    survivor = customer_with_children(manager, name="Wang Wei", phone="", tags=["vip"], custom_fields={"tier": "gold"})
    other = customer_with_children(
        manager, name="王伟", email="wang@example.com", tags=["北京"], custom_fields={"region": "north"}
    )
    before = state()

    result = merge_customers(survivor, [other], choices={"name": other.pk}, user=manager)
    after = state()
    changeset = result["changeset"]

    assert changeset.pk is not None and changeset.kind == "merge" and changeset.user == manager
    assert changeset.source == {"model": "customers.customer", "survivor_id": survivor.pk, "merged_ids": [other.pk]}
    assert changeset.counts["customers.customer"] == {"created": 0, "updated": 1, "deleted": 1}
    assert changeset.counts["interactions.interaction"]["updated"] == 2
    assert after != before and len(after["tombstones"]) == 1

    undone = undo(changeset, manager)
    assert state() == before
    assert Customer.objects.get(pk=other.pk).tags == ["北京"]

    undo(undone, manager)
    assert state() == after


def test_undoing_a_company_merge_gives_each_company_its_people_back(manager):
    survivor, other = CompanyFactory(name="Acme", owner=manager), CompanyFactory(name="ACME 公司", owner=manager)
    for company in (survivor, other):
        customer_with_children(manager, company=company)
    before = state()

    result = merge_companies(survivor, [other], user=manager)
    assert not Company.objects.filter(pk=other.pk).exists()

    undo(result["changeset"], manager)
    assert state() == before


def test_the_api_names_the_merges_changeset_and_its_undo_brings_the_merged_id_back(api):
    survivor, other = CustomerFactory(name="Keep"), CustomerFactory(name="Gone")
    InteractionFactory(customer=other)
    before = state()

    response = api.post("/api/customers/merge", {"survivor_id": survivor.pk, "merged_ids": [other.pk]}, format="json")
    changeset = response.json()["data"]["changeset"]
    assert response.status_code == 200 and changeset["kind"] == "merge"
    assert api.get(f"/api/customers/{other.pk}").json()["error"]["merged_into"] == survivor.pk

    response = api.post(f"/api/changesets/{changeset['id']}/undo", {}, format="json")

    assert response.status_code == 200, response.content
    assert state() == before
    assert api.get(f"/api/customers/{other.pk}").json()["data"]["name"] == "Gone"


def test_the_api_dry_run_answers_the_changeset_it_would_make_and_keeps_none(api):
    survivor, other = CustomerFactory(name="Keep"), CustomerFactory(name="Gone")
    InteractionFactory.create_batch(3, customer=other)
    before = state()

    response = api.post(
        "/api/customers/merge?dry_run=true", {"survivor_id": survivor.pk, "merged_ids": [other.pk]}, format="json"
    )

    preview = response.json()["data"]["changeset"]
    assert response.status_code == 200 and preview["kind"] == "merge"
    assert preview["counts"]["interactions.interaction"]["updated"] == 3
    deleted = [row for row in preview["rows"] if row["op"] == "deleted"]
    assert [(row["model"], row["object_id"]) for row in deleted] == [("customers.customer", other.pk)]
    assert state() == before and not Changeset.objects.exists()


def test_the_admin_merge_says_where_to_undo_it(db):
    client = Client()
    client.force_login(StaffFactory())
    survivor, other = CustomerFactory(name="Keep"), CustomerFactory(name="Gone")
    versions = {f"version:{r.pk}": r.updated_at.isoformat() for r in (survivor, other)}

    response = client.post(
        f"/admin/customers/customer/merge/?ids={survivor.pk},{other.pk}",
        {"survivor": survivor.pk, "confirm": "yes", **versions},
        follow=True,
    )

    changeset = Changeset.objects.get(kind="merge")
    assert f"/admin/core/changeset/{changeset.pk}/change/" in response.content.decode()
