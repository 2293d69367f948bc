"""A merge is a changeset: its undo puts both records back with their children, tags, custom values
and ids (the tombstone goes, the merged-away id answers again); undoing the undo merges again."""

import pytest
from django.db import connection
from django.test import Client
from django.test.utils import CaptureQueriesContext

from companies.models import Company
from companies.services import merge_companies
from core import changesets
from core.changesets import Changeset, recording, undo
from core.models import Event, MergedRecord
from customers.company_parts import move_people
from customers.models import Customer
from customers.services import merge_customers
from interactions.models import Interaction
from opportunities.models import Opportunity
from tasks.models import Task
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


def _undone(changeset, manager, before, role, keys, moved, latest):
    """Undo ``changeset`` (a merge), checking that it puts back the ``before`` state: (what the undo wrote to the
    records of the models ``moved``, with the values of ``keys`` named by ``role``: its rows, events and the
    ``latest`` history entries ({label: (model, filter, how many)}); the number of queries the undo ran)."""
    events = Event.objects.count()
    with CaptureQueriesContext(connection) as captured:
        done = undo(changeset, manager)
    assert state() == before

    def named(values):
        return {k: role.get(v, v) if k in keys else v for k, v in sorted((values or {}).items())}

    rows = sorted(
        (row.model, row.op, repr(named(row.before)), repr(named(row.after)), row.history_id is not None)
        for row in done.rows.filter(model__in=moved)
    )
    written = sorted(
        (e.type, e.model, repr({k: {s: role.get(v, v) for s, v in c.items()} for k, c in e.changes.items()}))
        for e in Event.objects.order_by("id")[events:]
        if e.model in moved
    )
    entries = sorted(
        (label, record.history_type, *(role.get(getattr(record, key, None)) for key in keys), record.history_user_id)
        for label, (model, where, count) in latest.items()
        for record in model.history.filter(**where).order_by("-history_id")[:count]
    )
    return (rows, written, entries), len(captured)


def _merged_then_undone(manager, moved):
    """Merge a customer with ``moved`` interactions, tasks and deals into another, then undo (``_undone``)."""
    survivor = CustomerFactory(owner=manager)
    other = CustomerFactory(owner=manager)
    for factory in (InteractionFactory, OpportunityFactory):
        factory.create_batch(moved, customer=other)
    TaskFactory.create_batch(moved, customer=other, assignee=manager)
    before = state()
    changeset = merge_customers(survivor, [other], user=manager)["changeset"]
    where = {"customer_id": other.pk}
    return _undone(
        changeset,
        manager,
        before,
        {survivor.pk: "survivor", other.pk: "other"},
        ["customer_id"],
        ["interactions.interaction", "opportunities.opportunity", "tasks.task"],
        {
            "interaction": (Interaction, where, moved),
            "opportunity": (Opportunity, where, moved),
            "task": (Task, where, moved),
        },
    )


def _companies_merged_then_undone(manager, people):
    """Merge a company with ``people`` people (each with a deal at the company) into another, then undo (``_undone``)."""
    survivor, other = CompanyFactory(name="Acme", owner=manager), CompanyFactory(name="ACME 公司", owner=manager)
    for _ in range(people):
        OpportunityFactory(customer=CustomerFactory(owner=manager, company=other), company=other)
    before = state()
    changeset = merge_companies(survivor, [other], user=manager)["changeset"]
    where = {"company_id": other.pk}
    return _undone(
        changeset,
        manager,
        before,
        {survivor.pk: "survivor", other.pk: "other", survivor.name: "survivor", other.name: "other"},
        ["company_id", "company_name"],
        ["customers.customer", "opportunities.opportunity"],
        {"customer": (Customer, where, people), "opportunity": (Opportunity, where, people)},
    )


MERGES = {
    "customers": (_merged_then_undone, 9, {"interaction", "opportunity", "task"}),
    "companies": (_companies_merged_then_undone, 6, {"customer", "opportunity"}),
}


@pytest.mark.parametrize("merge", MERGES)
def test_undoing_a_merge_in_bulk_writes_what_a_save_per_record_writes(manager, monkeypatch, merge):
    merged_then_undone, moved, kinds = MERGES[merge]
    in_bulk, _ = merged_then_undone(manager, 3)
    # The same merge undone with a save per record (no model declared ``restore_in_bulk``).
    monkeypatch.setattr(changesets, "BULK_RESTORED", {})
    one_by_one, _ = merged_then_undone(manager, 3)

    assert in_bulk == one_by_one
    rows, written, latest = in_bulk
    assert len(rows) == moved and all(row[1] == "updated" and row[4] for row in rows)
    assert len(written) == moved and {name for name, *_ in latest} == kinds


@pytest.mark.parametrize("merge", MERGES)
def test_undoing_a_merge_costs_as_many_queries_for_3_or_30_moved_records_of_each_kind(manager, merge):
    merged_then_undone = MERGES[merge][0]
    assert merged_then_undone(manager, 3)[1] == merged_then_undone(manager, 30)[1]


@pytest.mark.parametrize("in_bulk", [True, False], ids=["in bulk", "a save per person"])
def test_people_put_back_at_a_company_renamed_since_carry_its_name_now(manager, monkeypatch, in_bulk):
    if not in_bulk:
        monkeypatch.setattr(changesets, "BULK_RESTORED", {})
    first, second = CompanyFactory(name="First", owner=manager), CompanyFactory(name="Second", owner=manager)
    people = CustomerFactory.create_batch(2, owner=manager, company=first)
    with recording("action", user=manager, label="move") as moved:
        move_people([first.pk], second)
    first.name = "First Renamed"
    first.save()

    undo(moved, manager)

    assert {(c.company_id, c.company_name) for c in Customer.objects.filter(pk__in=[p.pk for p in people])} == {
        (first.pk, "First Renamed")
    }
