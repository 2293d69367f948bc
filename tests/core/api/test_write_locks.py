"""How an API write locks the records it changes or deletes, against the writes of the records below them.

A write that points a record at a parent (an interaction at its customer) holds the parent ``FOR KEY SHARE`` until
it commits (``CRMModelViewSet.hold_parents``). A write that changes a record without deleting it locks it as its
UPDATE does, ``FOR NO KEY UPDATE``, which that lock does not hold up: a customer's change goes on while one of its
interactions is being logged, and neither waits for the other. A delete locks its record ``FOR UPDATE``, as its
DELETE does: it waits for such a write, then takes the new record along; and a change waits for a delete under way,
then finds its record gone, never writing it again.

Two connections at once (a thread each): PostgreSQL. SQLite runs one writer at a time (``core/sqlite``).
"""

import datetime
from dataclasses import dataclass, field

import pytest
from django.db import connection
from rest_framework.test import APIClient

from core.changesets import Changeset
from core.models import CustomField
from customers.models import Customer
from customers.services import delete_customer
from interactions.models import Interaction
from opportunities.models import Opportunity
from tasks.models import Task
from tests.concurrency import Held, in_turn, no_waiting_on_locks, pointed_at, while_deleting
from tests.factories import CompanyFactory, CustomerFactory, OpportunityFactory, TaskFactory, UserFactory

pytestmark = [
    pytest.mark.django_db(transaction=True),
    pytest.mark.skipif(
        connection.vendor != "postgresql", reason="two connections at once: PostgreSQL (SQLite serialises writers)"
    ),
]


def another_client(token):
    """A second API client of the same user, for a request sent from another thread."""
    client = APIClient()
    client.credentials(HTTP_AUTHORIZATION=f"Bearer {token}")
    return client


def test_an_update_does_not_wait_for_an_interaction_being_logged_for_its_customer(api, token):
    customer = CustomerFactory(name="Ann")
    logging = another_client(token)
    body = {"customer_id": customer.pk, "interaction_type": "call", "notes": "Called"}

    with Held(lambda: logging.post("/api/interactions", body, format="json")) as logged, no_waiting_on_locks():
        response = api.patch(f"/api/customers/{customer.pk}", {"name": "Ann B"}, format="json")
        assert logged.commit().status_code == 201

    assert response.status_code == 200, response.json()
    assert response.json()["data"]["name"] == "Ann B"
    assert Interaction.objects.get().customer_id == customer.pk


@dataclass
class Write:
    """An API write of records that others are pointing records at meanwhile (``held``: those records)."""

    held: list
    method: str
    url: str
    body: dict = field(default_factory=dict)
    status: int = 200
    # What is stored once both have committed, checked against ``expected``.
    stored: object = None
    expected: object = None


def patch_customer(how):
    customer = CustomerFactory(name="Ann", external_id="ann-1")
    named = {"name": "Ann B"}
    url, body = {
        "PATCH": (f"/api/customers/{customer.pk}", named),
        "PUT": (f"/api/customers/{customer.pk}", named),
        "batch update": ("/api/customers/batch", {"update": [{"id": customer.pk, **named}]}),
        "batch upsert": ("/api/customers/batch", {"upsert": [{"external_id": "ann-1", **named}]}),
    }[how]
    method = how if how in ("PATCH", "PUT") else "POST"
    names = lambda: Customer.objects.get(pk=customer.pk).name  # noqa: E731
    return Write([customer], method, url, body, stored=names, expected="Ann B")


def stage_move():
    deal = OpportunityFactory(title="Deal")
    stage = lambda: Opportunity.objects.get(pk=deal.pk).stage  # noqa: E731
    return Write([deal], "PATCH", f"/api/opportunities/{deal.pk}", {"stage": "proposal"}, 200, stage, "proposal")


def task_change(action):
    task = TaskFactory(title="Call")
    if action == "reopen":
        Task.objects.filter(pk=task.pk).update(done_at=datetime.datetime(2026, 1, 5, tzinfo=datetime.UTC))
    done = lambda: Task.objects.get(pk=task.pk).done_at is not None  # noqa: E731
    return Write([task], "POST", f"/api/tasks/{task.pk}/{action}", {}, 200, done, action == "complete")


def customer_merge():
    survivor, other = CustomerFactory(name="Ann"), CustomerFactory(name="Ann B")
    deal = OpportunityFactory(customer=other, title="Deal")
    moved = lambda: Opportunity.objects.get(pk=deal.pk).customer_id  # noqa: E731
    body = {"survivor_id": survivor.pk, "merged_ids": [other.pk]}
    return Write([survivor, deal], "POST", "/api/customers/merge", body, 200, moved, survivor.pk)


def company_merge():
    survivor, other = CompanyFactory(name="Acme"), CompanyFactory(name="Acme Inc")
    person = CustomerFactory(name="Ann", company=other)
    moved = lambda: Customer.objects.get(pk=person.pk).company_id  # noqa: E731
    body = {"survivor_id": survivor.pk, "merged_ids": [other.pk]}
    return Write([survivor, person], "POST", "/api/companies/merge", body, 200, moved, survivor.pk)


def merge_undone(api):
    survivor, other = CustomerFactory(name="Ann"), CustomerFactory(name="Ann B")
    deal = OpportunityFactory(customer=other, title="Deal")
    merged = api.post("/api/customers/merge", {"survivor_id": survivor.pk, "merged_ids": [other.pk]}, format="json")
    changeset = Changeset.objects.get(pk=merged.json()["data"]["changeset"]["id"])
    moved_back = lambda: Opportunity.objects.get(pk=deal.pk).customer_id  # noqa: E731
    return Write([changeset, deal], "POST", f"/api/changesets/{changeset.pk}/undo", {}, 200, moved_back, other.pk)


def reassign():
    customer, owner = CustomerFactory(name="Ann"), UserFactory(username="new-owner")
    owned = lambda: Customer.objects.get(pk=customer.pk).owner_id  # noqa: E731
    body = {"owner_id": owner.pk}
    return Write([customer], "POST", f"/api/customers/{customer.pk}/reassign", body, 200, owned, owner.pk)


def tag_change(method):
    customer = CustomerFactory(name="Ann", tags=["VIP"])
    tag = customer.tag_set.get()
    tags = lambda: Customer.objects.get(pk=customer.pk).tags  # noqa: E731
    body = {"name": "Key account"} if method == "PATCH" else {}
    expected = ["Key account"] if method == "PATCH" else []
    return Write([customer], method, f"/api/tags/{tag.pk}", body, 200, tags, expected)


def company_delete():
    company = CompanyFactory(name="Acme")
    person = CustomerFactory(name="Ann", company=company)
    deal = OpportunityFactory(customer=person, title="Deal")
    left = lambda: (Customer.objects.get(pk=person.pk).company_id, Opportunity.objects.get(pk=deal.pk).company_id)  # noqa: E731
    return Write([person, deal], "DELETE", f"/api/companies/{company.pk}", {}, 200, left, (None, None))


def custom_field_retyped():
    definition = CustomField.objects.create(model="customers", key="seats", label="Seats", field_type="text")
    customer = CustomerFactory(name="Ann", custom_fields={"seats": "7"})
    value = lambda: Customer.objects.get(pk=customer.pk).custom_fields  # noqa: E731
    body = {"field_type": "number"}
    return Write([customer], "PATCH", f"/api/custom-fields/{definition.pk}", body, 200, value, {"seats": 7})


def time_zone_moved(api):
    customer = CustomerFactory(name="Ann")
    # Due on 11 December, for the API's user (its creator).
    created = api.post(
        "/api/tasks", {"customer_id": customer.pk, "title": "Call", "due_at": "2026-12-11"}, format="json"
    )
    task = Task.objects.get(pk=created.json()["data"]["id"])
    due = lambda: Task.objects.get(pk=task.pk).due_date.isoformat()  # noqa: E731
    body = {"time_zone": "Pacific/Kiritimati"}
    return Write([task], "PATCH", "/api/auth/me", body, 200, due, "2026-12-11")


# name -> the write, given the API client (the records built in the test's database).
WRITES = {
    "PATCH": lambda api: patch_customer("PATCH"),
    "PUT": lambda api: patch_customer("PUT"),
    "batch update": lambda api: patch_customer("batch update"),
    "batch upsert": lambda api: patch_customer("batch upsert"),
    "stage move": lambda api: stage_move(),
    "task completed": lambda api: task_change("complete"),
    "task reopened": lambda api: task_change("reopen"),
    "customer merge": lambda api: customer_merge(),
    "company merge": lambda api: company_merge(),
    "merge undone": merge_undone,
    "customer reassigned": lambda api: reassign(),
    "tag renamed": lambda api: tag_change("PATCH"),
    "tag deleted": lambda api: tag_change("DELETE"),
    "company deleted": lambda api: company_delete(),
    "custom field retyped": lambda api: custom_field_retyped(),
    "time zone changed": time_zone_moved,
}


@pytest.mark.parametrize("name", WRITES)
def test_a_write_changing_records_does_not_wait_for_records_being_pointed_at_them(api, name):
    # The other transaction holds the records as a write pointing a new record at each does (an interaction at its
    # customer, a task at its deal), until after this write has answered: with the lock of a DELETE (FOR UPDATE),
    # this write would wait for it, and give up after 2 s.
    write = WRITES[name](api)

    with pointed_at(*write.held) as other, no_waiting_on_locks():
        response = getattr(api, write.method.lower())(write.url, write.body, format="json")
        other.commit()

    assert response.status_code == write.status, response.json()
    assert write.stored() == write.expected


@pytest.mark.parametrize("how", ["PATCH", "batch update", "reassign"])
def test_an_update_waits_for_a_delete_under_way_and_finds_the_record_gone(api, how):
    # FOR NO KEY UPDATE still waits for the FOR UPDATE of a delete: the update then reads the record as gone, rather
    # than saving it (Django's save finding no row to update inserts it), or answering that it moved nothing.
    customer = CustomerFactory(name="Ann")
    answers = []
    if how == "PATCH":
        request = lambda: api.patch(f"/api/customers/{customer.pk}", {"name": "Ann B"}, format="json")  # noqa: E731
    elif how == "reassign":
        body = {"owner_id": UserFactory(username="new-owner").pk}
        request = lambda: api.post(f"/api/customers/{customer.pk}/reassign", body, format="json")  # noqa: E731
    else:
        body = {"update": [{"id": customer.pk, "name": "Ann B"}]}
        request = lambda: api.post("/api/customers/batch", body, format="json")  # noqa: E731

    errors = while_deleting(delete_customer, customer, lambda: answers.append(request()))

    assert not errors
    [answer] = answers
    if how in ("PATCH", "reassign"):
        assert answer.status_code == 404, answer.json()
    else:
        assert answer.status_code == 207, answer.json()
        assert [item["status"] for item in answer.json()["data"]["results"]] == [404]
    assert not Customer.objects.filter(pk=customer.pk).exists()
    assert customer.history.first().history_type == "-"


@pytest.mark.parametrize("how", ["DELETE", "batch delete"])
def test_a_delete_waits_for_an_interaction_being_logged_and_takes_it_along(api, token, how):
    customer = CustomerFactory(name="Ann")
    logging = another_client(token)
    body = {"customer_id": customer.pk, "interaction_type": "call", "notes": "Called"}
    answers = []
    if how == "DELETE":
        request = lambda: api.delete(f"/api/customers/{customer.pk}")  # noqa: E731
    else:
        request = lambda: api.post("/api/customers/batch", {"delete": [customer.pk]}, format="json")  # noqa: E731

    errors = in_turn(
        lambda: answers.append(logging.post("/api/interactions", body, format="json")),
        lambda: answers.append(request()),
    )

    assert not errors
    logged, deleted = answers
    assert logged.status_code == 201, logged.json()
    assert deleted.status_code == 200, deleted.json()
    data = deleted.json()["data"]
    counts = data["deleted"] if how == "DELETE" else data["results"][0]["data"]["deleted"]
    assert counts["interactions"] == 1
    assert not Customer.objects.exists() and not Interaction.objects.exists()


def test_a_merge_waits_for_an_interaction_being_logged_for_a_record_it_deletes_and_moves_it(api, token):
    survivor, other = CustomerFactory(name="Ann"), CustomerFactory(name="Ann B")
    logging = another_client(token)
    body = {"customer_id": other.pk, "interaction_type": "call", "notes": "Called"}
    answers = []

    errors = in_turn(
        lambda: answers.append(logging.post("/api/interactions", body, format="json")),
        lambda: answers.append(
            api.post("/api/customers/merge", {"survivor_id": survivor.pk, "merged_ids": [other.pk]}, format="json")
        ),
    )

    assert not errors
    logged, merged = answers
    assert (logged.status_code, merged.status_code) == (201, 200), merged.json()
    assert merged.json()["data"]["moved"]["interactions"] == 1
    assert list(Interaction.objects.values_list("customer_id", flat=True)) == [survivor.pk]
    assert list(Customer.objects.values_list("pk", flat=True)) == [survivor.pk]
