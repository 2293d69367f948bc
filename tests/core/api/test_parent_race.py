"""API writes that point a record at a parent (a customer, a company) while that parent is deleted.

A parent's delete locks the parent, then the records pointing at it. A write holds the parents its body names
before it locks or validates any record (``CRMModelViewSet.hold_parents``, ``FOR KEY SHARE``): it waits for a delete
under way, then finds the parent gone and answers as it would have after the delete, with the 400 of an unknown id
and nothing written; held only by the foreign key's check at COMMIT, the write failed there (a 409). A delete that
comes after waits for the write, then goes on as the model says.

Two connections at once (a thread each): PostgreSQL. SQLite runs one writer at a time (``core/sqlite``), so the
write comes wholly before or after the delete.
"""

import pytest
from django.db import connection, connections
from django.db.models.signals import post_save

from companies.models import Company
from companies.services import delete_company
from customers.models import Customer
from customers.services import delete_customer
from interactions.models import Interaction
from opportunities.models import Opportunity
from tasks.models import Task
from tests.concurrency import deadlocked, in_turn, while_deleting
from tests.factories import CompanyFactory, CustomerFactory, InteractionFactory, OpportunityFactory, UserFactory

pytestmark = [
    pytest.mark.django_db(transaction=True),
    pytest.mark.skipif(
        connection.vendor != "postgresql", reason="two connections at once: PostgreSQL (SQLite serialises writers)"
    ),
]

# resource -> (its model, the field naming its parent, the rest of a valid body)
CREATES = {
    "interactions": (Interaction, "customer_id", {"interaction_type": "call"}),
    "opportunities": (Opportunity, "customer_id", {"title": "Deal"}),
    "tasks": (Task, "customer_id", {"title": "Call back"}),
    "customers": (Customer, "company_id", {"name": "Ann"}),
}


def a_parent(field):
    return CompanyFactory(name="Gone Ltd") if field == "company_id" else CustomerFactory(name="Gone")


def deleting(parent):
    return delete_company if isinstance(parent, Company) else delete_customer


def answered_while_deleting(parent, request):
    """``request()``'s answer, sent while ``parent``'s delete is under way (locked, deleted, not committed)."""
    answers = []
    errors = while_deleting(deleting(parent), parent, lambda: answers.append(request()))
    assert not errors
    [answer] = answers
    return answer


def unknown_id(field, pk):
    return {field: [f'Invalid pk "{pk}" - object does not exist.']}


@pytest.mark.parametrize("resource", CREATES)
def test_a_create_naming_a_parent_being_deleted_is_refused_as_after_the_delete(api, resource):
    model, field, body = CREATES[resource]
    parent = a_parent(field)
    body = {**body, field: parent.pk}

    response = answered_while_deleting(parent, lambda: api.post(f"/api/{resource}", body, format="json"))

    assert response.status_code == 400, response.json()
    assert response.json()["error"]["fields"] == unknown_id(field, parent.pk)
    # The answer of the same request sent after the delete.
    assert api.post(f"/api/{resource}", body, format="json").json() == response.json()
    assert not type(parent)._base_manager.filter(pk=parent.pk).exists()
    assert not model.objects.exists()


@pytest.mark.parametrize("resource", ["opportunities", "customers"])
def test_an_update_pointing_at_a_parent_being_deleted_is_refused_and_writes_nothing(api, resource):
    if resource == "customers":
        record, field, text = CustomerFactory(name="Ann", company=CompanyFactory(name="Stays")), "company_id", "name"
    else:
        record, field, text = OpportunityFactory(title="Ann"), "customer_id", "title"
    before = getattr(record, field)
    parent = a_parent(field)
    body = {field: parent.pk, text: "Changed"}

    response = answered_while_deleting(parent, lambda: api.patch(f"/api/{resource}/{record.pk}", body, format="json"))

    assert response.status_code == 400, response.json()
    assert response.json()["error"]["fields"] == unknown_id(field, parent.pk)
    assert type(record).objects.values_list(field, text).get(pk=record.pk) == (before, "Ann")


def test_a_batch_item_naming_a_parent_being_deleted_fails_alone(api):
    kept = CustomerFactory(name="Kept")
    moved = InteractionFactory(customer=kept, notes="Moved?")
    parent = a_parent("customer_id")
    body = {
        "create": [
            {"customer_id": kept.pk, "interaction_type": "call", "notes": "First"},
            {"customer_id": parent.pk, "interaction_type": "call", "notes": "Orphan"},
            {"customer_id": kept.pk, "interaction_type": "email", "notes": "Second"},
        ],
        "update": [{"id": moved.pk, "customer_id": parent.pk}],
    }

    response = answered_while_deleting(parent, lambda: api.post("/api/interactions/batch", body, format="json"))

    assert response.status_code == 207, response.json()
    results = response.json()["data"]["results"]
    assert [(result["op"], result["status"]) for result in results] == [
        ("create", 201),
        ("create", 400),
        ("create", 201),
        ("update", 400),
    ]
    assert results[1]["error"]["fields"] == results[3]["error"]["fields"] == unknown_id("customer_id", parent.pk)
    assert sorted(Interaction.objects.values_list("notes", "customer_id")) == [
        ("First", kept.pk),
        ("Moved?", kept.pk),
        ("Second", kept.pk),
    ]


@pytest.mark.parametrize("matched", [False, True], ids=["new", "matched"])
def test_an_upsert_naming_a_parent_being_deleted_fails_alone(api, matched):
    kept = CustomerFactory(name="Kept")
    if matched:
        OpportunityFactory(customer=kept, title="Deal", external_id="deal-1")
    parent = a_parent("customer_id")
    body = {
        "upsert": [
            {"external_id": "deal-1", "customer_id": parent.pk, "title": "Deal"},
            {"external_id": "deal-2", "customer_id": kept.pk, "title": "Other deal"},
        ]
    }

    response = answered_while_deleting(parent, lambda: api.post("/api/opportunities/batch", body, format="json"))

    assert response.status_code == 207, response.json()
    first, second = response.json()["data"]["results"]
    assert (first["status"], first["error"]["fields"]) == (400, unknown_id("customer_id", parent.pk))
    assert (second["status"], second["created"]) == (201, True)
    expected = [("deal-1", kept.pk), ("deal-2", kept.pk)] if matched else [("deal-2", kept.pk)]
    assert sorted(Opportunity.objects.values_list("external_id", "customer_id")) == expected


def test_a_company_named_by_name_while_it_is_deleted_is_made_again(api):
    # The ``company`` text links a customer to the company of that name: deleted meanwhile, a new one, as after.
    gone = CompanyFactory(name="Acme")

    response = answered_while_deleting(
        gone, lambda: api.post("/api/customers", {"name": "Ann", "company": "Acme"}, format="json")
    )

    assert response.status_code == 201, response.json()
    company = Company.objects.get()
    assert company.pk != gone.pk and company.name == "Acme"
    assert response.json()["data"]["company_id"] == company.pk


def test_a_deal_whose_customers_company_is_being_deleted_is_made_without_it(api):
    # A deal created without a company takes its customer's: held with the customer, a company deleted meanwhile
    # is waited for, and the deal is made as after the delete, which left the customer without a company.
    customer = CustomerFactory(name="Ann", company=CompanyFactory(name="Gone Ltd"))

    response = answered_while_deleting(
        customer.company,
        lambda: api.post("/api/opportunities", {"customer_id": customer.pk, "title": "Deal"}, format="json"),
    )

    assert response.status_code == 201, response.json()
    assert response.json()["data"]["company_id"] is None
    assert Opportunity.objects.values_list("customer_id", "company_id").get() == (customer.pk, None)


def test_a_deal_holds_its_customers_company_before_the_customer(api):
    # A company's delete locks the company, then its people: the deal, which takes the company from its customer,
    # holds the company before the customer. Holding only the customer, it took the company at its COMMIT, while
    # the delete waited for the customer: a deadlock.
    customer = CustomerFactory(name="Ann", company=CompanyFactory(name="Acme"))
    body = {"customer_id": customer.pk, "title": "Deal"}

    answer, errors = deadlocked(customer, customer.company, lambda: api.post("/api/opportunities", body, format="json"))

    assert not errors
    assert answer.status_code == 201, answer.json()
    assert Opportunity.objects.values_list("customer_id", "company_id").get() == (customer.pk, customer.company_id)


@pytest.mark.parametrize("resource", ["interactions", "opportunities", "customers"])
def test_a_delete_after_the_write_waits_for_it_then_goes_on(api, resource):
    # The write holds its parent first: the delete waits for its COMMIT, then goes on as the model says: a customer
    # takes its new interaction or deal with it, a company leaves its new person without a company.
    model, field, body = CREATES[resource]
    parent = a_parent(field)
    answers = []

    errors = in_turn(
        lambda: answers.append(api.post(f"/api/{resource}", {**body, field: parent.pk}, format="json")),
        lambda: deleting(parent)(type(parent).objects.select_for_update().get(pk=parent.pk)),
    )

    assert not errors
    assert answers[0].status_code == 201, answers[0].json()
    assert not type(parent).objects.filter(pk=parent.pk).exists()
    if resource == "customers":
        assert list(Customer.objects.values_list("pk", "company_id")) == [(answers[0].json()["data"]["id"], None)]
    else:
        assert not model.objects.exists()


@pytest.mark.parametrize("same_parent", [True, False], ids=["its own customer", "another customer"])
def test_an_update_naming_a_customer_locked_for_its_delete_does_not_deadlock(api, same_parent):
    # The other transaction locks the customer as its delete does, then the deal once the update waits: the
    # update waits for the customer before it takes the deal, so the other takes it and ends first.
    deal = OpportunityFactory(title="Deal")
    customer = deal.customer if same_parent else CustomerFactory(name="Other")

    answer, errors = deadlocked(
        deal,
        customer,
        lambda: api.put(f"/api/opportunities/{deal.pk}", {"customer_id": customer.pk, "title": "Kept"}, format="json"),
    )

    assert not errors
    assert answer.status_code == 200, answer.json()
    assert Opportunity.objects.values_list("customer_id", "title").get() == (customer.pk, "Kept")


def test_a_named_record_that_is_no_parent_deleted_before_the_commit_is_still_a_409(api):
    # A customer's owner (a user) is not held: a user deleted between the save and its COMMIT fails the write there,
    # where the foreign key is checked, with nothing written.
    owner = UserFactory(username="leaving")

    def delete_the_owner_meanwhile(sender, instance, created, **kwargs):
        other = connections.create_connection("default")
        try:
            with other.cursor() as cursor:
                cursor.execute("DELETE FROM auth_user WHERE id = %s", [owner.pk])
        finally:
            other.close()

    post_save.connect(delete_the_owner_meanwhile, sender=Customer)
    try:
        response = api.post("/api/customers", {"name": "Ann", "owner_id": owner.pk}, format="json")
    finally:
        post_save.disconnect(delete_the_owner_meanwhile, sender=Customer)

    assert response.status_code == 409, response.json()
    assert response.json()["error"]["code"] == "conflict"
    assert not Customer.objects.exists()
