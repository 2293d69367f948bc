"""Merging customers: the service's rules, the API (``POST /api/customers/merge``) and merged-away ids."""

import pytest
from django.contrib.auth.models import Group
from django.core.exceptions import PermissionDenied
from django.db import connection
from django.test.utils import CaptureQueriesContext
from knox.models import get_token_model
from rest_framework.test import APIClient

from companies.models import Company
from companies.services import delete_company
from core.changesets import Changeset
from core.merges import MergeRefused
from core.models import CustomField, Event, MergedRecord
from customers.models import Customer
from customers.services import merge_customers
from interactions.models import Interaction
from opportunities.models import Opportunity
from tasks.models import Task
from tests.concurrency import in_turn
from tests.factories import (
    CompanyFactory,
    CustomerFactory,
    InteractionFactory,
    ManagerFactory,
    OpportunityFactory,
    TaskFactory,
    UserFactory,
)

pytestmark = pytest.mark.django_db


def with_children(customer, interactions=1, opportunities=1, tasks=1):
    InteractionFactory.create_batch(interactions, customer=customer)
    OpportunityFactory.create_batch(opportunities, customer=customer)
    TaskFactory.create_batch(tasks, customer=customer)
    return customer


def user_in(group, username):
    user = UserFactory(username=username)
    user.groups.add(Group.objects.get(name=group))
    return user


def client_of(user):
    client = APIClient()
    _, token = get_token_model().objects.create(user)
    client.credentials(HTTP_AUTHORIZATION=f"Bearer {token}")
    return client


# -- the service ---------------------------------------------------------------


def test_merge_moves_the_children_of_both_sides_to_the_survivor_and_deletes_the_others():
    manager = ManagerFactory()
    survivor = with_children(CustomerFactory(name="Wang Wei"), interactions=2, opportunities=1, tasks=1)
    first = with_children(CustomerFactory(name="王伟"), interactions=3, opportunities=2, tasks=1)
    second = with_children(CustomerFactory(name="W. Wang"), interactions=1, opportunities=0, tasks=2)
    other_ids = [first.pk, second.pk]

    result = merge_customers(survivor, [first, second], user=manager)

    assert result["merged_ids"] == other_ids
    assert result["moved"] == {"interactions": 4, "opportunities": 2, "tasks": 3}
    assert Interaction.objects.filter(customer=survivor).count() == 6
    assert Opportunity.objects.filter(customer=survivor).count() == 3
    assert Task.objects.filter(customer=survivor).count() == 4
    assert not Customer.objects.filter(pk__in=other_ids).exists()
    # Every moved child has an entry in its history; the others' history is kept, ending in a deletion.
    assert Interaction.history.filter(customer_id=survivor.pk, history_type="~").count() == 4
    for pk in other_ids:
        assert list(Customer.history.filter(id=pk).values_list("history_type", flat=True)) == ["-", "+"]
    entry = survivor.history.first()
    assert entry.history_type == "~" and entry.history_change_reason == f"Merged in #{first.pk}, #{second.pk}"
    tombstones = MergedRecord.objects.filter(model="customers.customer").order_by("old_id")
    assert [(t.old_id, t.survivor_id, t.merged_by_id) for t in tombstones] == [
        (pk, survivor.pk, manager.pk) for pk in other_ids
    ]
    assert MergedRecord.history.filter(history_type="+").count() == 2
    event = Event.objects.get(type="customer.merged")
    assert event.object_id == survivor.pk and event.changes["merged_ids"] == {"old": None, "new": other_ids}


def test_each_field_is_the_survivors_unless_chosen_or_empty():
    manager = ManagerFactory()
    company = CompanyFactory(name="Acme")
    survivor = CustomerFactory(name="Li Na", email=None, phone="", status=Customer.Status.LEAD)
    first = CustomerFactory(name="Li Na (old)", email="li.na@example.com", phone="+8613800138001", company=company)
    second = CustomerFactory(name="Na Li", email="na@example.com", phone="+8613900139000", external_id="hs-1")

    merge_customers(survivor, [first, second], choices={"phone": second.pk, "name": second.pk}, user=manager)

    survivor.refresh_from_db()
    assert survivor.name == "Na Li"  # chosen
    assert survivor.phone == "+8613900139000"  # chosen over the first non-empty
    assert survivor.email == "li.na@example.com"  # the survivor had none: the first other's
    assert survivor.company == company and survivor.company_name == "Acme"
    assert survivor.external_id == "hs-1"  # unique: released by the deleted record first
    assert survivor.status == Customer.Status.LEAD


def test_the_survivor_may_take_a_unique_email_of_a_merged_record():
    manager = ManagerFactory()
    survivor = CustomerFactory(email="old@example.com")
    other = CustomerFactory(email="New@Example.com", external_id="x-9")

    merge_customers(survivor, [other], choices={"email": other.pk, "external_id": other.pk}, user=manager)

    survivor.refresh_from_db()
    assert (survivor.email, survivor.external_id) == ("New@Example.com", "x-9")


def test_tags_are_united_and_custom_values_fill_the_gaps():
    manager = ManagerFactory()
    CustomField.objects.create(model="customers", key="region", label="Region")
    CustomField.objects.create(model="customers", key="tier", label="Tier")
    survivor = CustomerFactory(tags=["VIP", "Beijing"], custom_fields={"region": "north"})
    first = CustomerFactory(tags=["vip", "Reseller"], custom_fields={"region": "south", "tier": "gold"})
    second = CustomerFactory(tags=["上海"], custom_fields={"tier": "silver"})

    merge_customers(survivor, [first, second], user=manager)

    survivor.refresh_from_db()
    # One spelling per tag (the survivor's "VIP", not "vip"), in the order the record keeps them.
    assert sorted(survivor.tags) == sorted(["VIP", "Beijing", "Reseller", "上海"])
    assert sorted(survivor.tag_set.values_list("name", flat=True)) == sorted(survivor.tags)
    assert survivor.custom_fields == {"region": "north", "tier": "gold"}


def test_a_custom_value_can_be_chosen_from_another_record():
    manager = ManagerFactory()
    CustomField.objects.create(model="customers", key="region", label="Region")
    survivor = CustomerFactory(custom_fields={"region": "north"})
    other = CustomerFactory(custom_fields={"region": "south"})

    merge_customers(survivor, [other], choices={"custom_fields.region": other.pk}, user=manager)

    survivor.refresh_from_db()
    assert survivor.custom_fields == {"region": "south"}


def test_a_survivor_that_changes_nothing_still_records_the_merge_in_its_history():
    manager = ManagerFactory()
    survivor = CustomerFactory(name="Same", phone="1")
    other = CustomerFactory(name="Same", phone="1")
    before = survivor.history.count()

    merge_customers(survivor, [other], user=manager)

    assert survivor.history.count() == before + 1
    assert survivor.history.first().history_change_reason == f"Merged in #{other.pk}"


@pytest.mark.parametrize(
    ("case", "field"),
    [
        ("itself", "merged_ids"),
        ("none", "merged_ids"),
        ("too_many", "merged_ids"),
        ("twice", "merged_ids"),
        ("unknown", "merged_ids"),
        ("unknown_survivor", "survivor_id"),
        ("bad_field", "fields"),
        ("bad_source", "fields"),
    ],
)
def test_merges_that_break_a_rule_are_refused_and_change_nothing(case, field):
    manager = ManagerFactory()
    survivor, other = CustomerFactory(), with_children(CustomerFactory())
    arguments = {
        "itself": (survivor.pk, [survivor.pk, other.pk], None),
        "none": (survivor.pk, [], None),
        "too_many": (survivor.pk, [other.pk, *range(10**6, 10**6 + 10)], None),
        "twice": (survivor.pk, [other.pk, other.pk], None),
        "unknown": (survivor.pk, [other.pk, 10**9], None),
        "unknown_survivor": (10**9, [other.pk], None),
        "bad_field": (survivor.pk, [other.pk], {"created_at": other.pk}),
        "bad_source": (survivor.pk, [other.pk], {"name": 10**9}),
    }[case]

    with pytest.raises(MergeRefused) as refused:
        merge_customers(arguments[0], arguments[1], choices=arguments[2], user=manager)

    assert refused.value.field == field
    assert Customer.objects.filter(pk=other.pk).exists()
    assert Interaction.objects.filter(customer=other).count() == 1
    assert not MergedRecord.objects.exists()


def test_a_rep_merges_only_within_their_book_and_read_only_users_not_at_all():
    rep, other_rep = user_in("Sales rep", "rep"), user_in("Sales rep", "other")
    reader = user_in("Read-only", "reader")
    mine, also_mine = CustomerFactory(owner=rep), CustomerFactory(owner=rep)
    theirs = CustomerFactory(owner=other_rep)

    with pytest.raises(MergeRefused):
        merge_customers(mine, [theirs], user=rep)
    with pytest.raises(PermissionDenied):
        merge_customers(mine, [also_mine], user=reader)
    assert Customer.objects.filter(pk__in=[mine.pk, also_mine.pk, theirs.pk]).count() == 3

    merge_customers(mine, [also_mine], user=rep)
    assert not Customer.objects.filter(pk=also_mine.pk).exists()


def test_a_record_changed_since_the_user_looked_refuses_the_merge():
    manager = ManagerFactory()
    survivor, other = CustomerFactory(), CustomerFactory()
    seen = {survivor.pk: survivor.updated_at.isoformat(), other.pk: other.updated_at.isoformat()}
    other.name = "Changed meanwhile"
    other.save()

    with pytest.raises(MergeRefused):
        merge_customers(survivor, [other], user=manager, versions=seen)
    assert Customer.objects.filter(pk=other.pk).exists()


def test_merge_queries_do_not_grow_with_the_children():
    manager = ManagerFactory()

    def queries(children):
        survivor = with_children(CustomerFactory(), children, children, children)
        other = with_children(CustomerFactory(), children, children, children)
        with CaptureQueriesContext(connection) as captured:
            merge_customers(survivor, [other], user=manager)
        return len(captured)

    queries(1)  # Roles and tracked fields read once, then cached.
    assert queries(2) == queries(40)


@pytest.mark.skipif(connection.vendor != "postgresql", reason="two connections at once: PostgreSQL")
@pytest.mark.django_db(transaction=True)
def test_a_merge_taking_a_company_and_that_companys_delete_do_not_deadlock():
    # A company's delete locks the company, then its people. The merge locks its records (here it then waits for an
    # interaction it moves, held by another transaction, while the delete takes the company and waits for the
    # person), and the company the survivor takes is checked at its COMMIT: the merge must hold it first, or the
    # two deadlock.
    manager = ManagerFactory()
    company = CompanyFactory(name="Acme")
    survivor = CustomerFactory(name="Ann")
    other = CustomerFactory(name="Ann B", company=company)
    interaction = InteractionFactory(customer=other)

    errors = in_turn(
        lambda: list(Interaction.objects.select_for_update().filter(pk=interaction.pk)),
        lambda: merge_customers(survivor.pk, [other.pk], choices={"company": other.pk}, user=manager),
        lambda: delete_company(Company.objects.select_for_update().get(pk=company.pk)),
    )

    assert not errors
    # The delete waited for the merge, then unlinked the survivor from the company it took.
    assert not Company.objects.filter(pk=company.pk).exists()
    assert not Customer.objects.filter(pk=other.pk).exists()
    survivor.refresh_from_db()
    assert survivor.company_id is None
    assert [entry.company_id for entry in survivor.history.order_by("history_id")][-2:] == [company.pk, None]


@pytest.mark.skipif(connection.vendor != "postgresql", reason="two connections at once: PostgreSQL")
@pytest.mark.django_db(transaction=True)
def test_a_task_moved_to_another_customer_while_the_merge_waits_for_it_stays_there():
    # The merge holds its customers, then locks the tasks it moves (by their customer). One moved meanwhile to a
    # customer the merge does not hold is waited for, then read again as moved: it no longer belongs to a merged
    # customer, is neither moved nor deleted, and the merge writes nothing that points at its new customer.
    manager = ManagerFactory()
    survivor, other, elsewhere = CustomerFactory(name="Ann"), CustomerFactory(name="Ann B"), CustomerFactory()
    moving, staying = TaskFactory(customer=other), TaskFactory(customer=other)

    def move_away():
        task = Task.objects.select_for_update().get(pk=moving.pk)
        task.customer = elsewhere
        task.save()

    results = []
    errors = in_turn(move_away, lambda: results.append(merge_customers(survivor.pk, [other.pk], user=manager)))

    assert not errors
    assert results[0]["moved"]["tasks"] == 1
    assert Task.objects.get(pk=moving.pk).customer_id == elsewhere.pk
    assert Task.objects.get(pk=staying.pk).customer_id == survivor.pk
    assert [entry.customer_id for entry in Task.history.filter(id=moving.pk).order_by("history_id")] == [
        other.pk,
        elsewhere.pk,
    ]


# -- the API -------------------------------------------------------------------


def test_api_merge_answers_the_survivor_with_what_moved(api):
    survivor = with_children(CustomerFactory(name="Survivor", phone=""), interactions=1)
    other = with_children(CustomerFactory(name="Other", phone="+8613800138000"), interactions=2)

    response = api.post(
        "/api/customers/merge",
        {"survivor_id": survivor.pk, "merged_ids": [other.pk], "fields": {"name": other.pk}},
        format="json",
    )

    assert response.status_code == 200, response.content
    data = response.json()["data"]
    assert data["id"] == survivor.pk and data["name"] == "Other" and data["phone"] == "+8613800138000"
    assert data["merged_ids"] == [other.pk] and data["dry_run"] is False
    assert data["moved"] == {"interactions": 2, "opportunities": 1, "tasks": 1}
    assert data["interaction_count"] == 3


def test_api_dry_run_answers_the_merge_without_writing(api):
    survivor = with_children(CustomerFactory(name="Survivor"))
    other = with_children(CustomerFactory(name="Other"), interactions=4)
    events = Event.objects.count()

    response = api.post(
        "/api/customers/merge?dry_run=true",
        {"survivor_id": survivor.pk, "merged_ids": [other.pk], "fields": {"name": other.pk}},
        format="json",
    )

    data = response.json()["data"]
    assert response.status_code == 200 and data["dry_run"] is True
    assert data["name"] == "Other" and data["moved"]["interactions"] == 4 and data["interaction_count"] == 5
    survivor.refresh_from_db()
    assert survivor.name == "Survivor"
    assert Interaction.objects.filter(customer=other).count() == 4
    assert not MergedRecord.objects.exists() and Event.objects.count() == events


@pytest.mark.parametrize(
    ("body", "field"),
    [
        ({"merged_ids": [1]}, "survivor_id"),
        ({"survivor_id": 1, "merged_ids": []}, "merged_ids"),
        ({"survivor_id": 1, "merged_ids": list(range(2, 14))}, "merged_ids"),
        ({"survivor_id": 1, "merged_ids": ["x"]}, "merged_ids"),
        ({"survivor_id": 1, "merged_ids": [2], "fields": {"name": "x"}}, "fields"),
        ({"survivor_id": 10**20, "merged_ids": [2]}, "survivor_id"),
        ({"survivor_id": 1, "merged_ids": [-1]}, "merged_ids"),
        ({"survivor_id": 1, "merged_ids": [2], "fields": {"name": 10**20}}, "fields"),
    ],
)
def test_api_refuses_a_malformed_merge_with_a_400(api, body, field):
    response = api.post("/api/customers/merge", body, format="json")

    assert response.status_code == 400
    assert field in response.json()["error"]["fields"]


@pytest.mark.parametrize(
    ("field", "message"),
    [
        ("survivor_id", "A valid integer is required."),
        ("merged_ids", "0: A valid integer is required."),
        ("fields", "name: A valid integer is required."),
    ],
)
def test_api_refuses_ids_given_as_text_and_merges_nothing(api, field, message):
    survivor = with_children(CustomerFactory(name="Survivor"))
    other = with_children(CustomerFactory(name="Other"))
    as_text = {"survivor_id": str(survivor.pk), "merged_ids": [str(other.pk)], "fields": {"name": str(other.pk)}}
    body = {"survivor_id": survivor.pk, "merged_ids": [other.pk], "fields": {"name": other.pk}, field: as_text[field]}
    entries, events = Customer.history.count(), Event.objects.count()

    response = api.post("/api/customers/merge", body, format="json")

    assert response.status_code == 400, response.content
    assert response.json()["error"]["fields"] == {field: [message]}
    assert Customer.objects.get(pk=survivor.pk).name == "Survivor" and Customer.objects.filter(pk=other.pk).exists()
    assert Interaction.objects.filter(customer=other).count() == 1
    assert not MergedRecord.objects.exists() and not Changeset.objects.exists()
    assert (Customer.history.count(), Event.objects.count()) == (entries, events)


def test_api_refuses_merging_a_customer_with_itself(api):
    customer = CustomerFactory()

    response = api.post(
        "/api/customers/merge", {"survivor_id": customer.pk, "merged_ids": [customer.pk]}, format="json"
    )

    assert response.status_code == 400
    assert response.json()["error"]["fields"]["merged_ids"] == ["A record cannot be merged with itself."]


def test_api_merge_with_an_idempotency_key_is_replayed_not_repeated(api):
    survivor, other = CustomerFactory(), CustomerFactory()
    body = {"survivor_id": survivor.pk, "merged_ids": [other.pk]}

    first = api.post("/api/customers/merge", body, format="json", HTTP_IDEMPOTENCY_KEY="merge-1")
    second = api.post("/api/customers/merge", body, format="json", HTTP_IDEMPOTENCY_KEY="merge-1")

    assert first.status_code == second.status_code == 200
    assert second.headers["Idempotent-Replayed"] == "true"
    assert second.json() == first.json()
    assert MergedRecord.objects.count() == 1


# -- merged-away ids -----------------------------------------------------------


def test_a_merged_away_id_answers_404_with_the_survivor(api):
    manager = ManagerFactory()
    survivor, other = CustomerFactory(), CustomerFactory()
    merge_customers(survivor, [other], user=manager)

    for method in ("get", "patch", "put", "delete"):
        response = getattr(api, method)(f"/api/customers/{other.pk}", {}, format="json")
        assert response.status_code == 404, method
        assert response.json()["error"]["merged_into"] == survivor.pk
        assert response.json()["success"] is False
    assert api.get(f"/api/customers/{other.pk}/history").json()["error"]["merged_into"] == survivor.pk


def test_merged_ids_follow_chains_and_a_deleted_survivor_is_a_plain_404(api):
    manager = ManagerFactory()
    a, b, c = CustomerFactory(), CustomerFactory(), CustomerFactory()
    merge_customers(b, [a], user=manager)
    merge_customers(c, [b], user=manager)

    assert api.get(f"/api/customers/{a.pk}").json()["error"]["merged_into"] == c.pk
    assert api.get(f"/api/customers/{b.pk}").json()["error"]["merged_into"] == c.pk

    assert api.delete(f"/api/customers/{c.pk}").status_code == 200
    gone = api.get(f"/api/customers/{a.pk}")
    assert gone.status_code == 404 and "merged_into" not in gone.json()["error"]


def test_a_rep_who_cannot_see_the_survivor_gets_a_plain_404():
    rep, other_rep = user_in("Sales rep", "rep"), user_in("Sales rep", "other")
    survivor, other = CustomerFactory(owner=other_rep), CustomerFactory(owner=other_rep)
    merge_customers(survivor, [other], user=other_rep)

    hidden = client_of(rep).get(f"/api/customers/{other.pk}")
    shown = client_of(other_rep).get(f"/api/customers/{other.pk}")

    assert hidden.status_code == 404 and "merged_into" not in hidden.json()["error"]
    assert shown.json()["error"]["merged_into"] == survivor.pk


def test_api_merge_by_a_rep_outside_their_book_is_a_400_and_read_only_a_403():
    rep, other_rep = user_in("Sales rep", "rep"), user_in("Sales rep", "other")
    reader = user_in("Read-only", "reader")
    mine, theirs = CustomerFactory(owner=rep), CustomerFactory(owner=other_rep)
    body = {"survivor_id": mine.pk, "merged_ids": [theirs.pk]}

    refused = client_of(rep).post("/api/customers/merge", body, format="json")
    forbidden = client_of(reader).post("/api/customers/merge", body, format="json")

    assert refused.status_code == 400 and refused.json()["error"]["fields"]["merged_ids"]
    assert forbidden.status_code == 403
    assert Customer.objects.filter(pk__in=[mine.pk, theirs.pk]).count() == 2


def test_a_batch_item_on_a_merged_away_id_names_the_survivor(api):
    manager = ManagerFactory()
    survivor, other = CustomerFactory(), CustomerFactory()
    merge_customers(survivor, [other], user=manager)

    response = api.post("/api/customers/batch", {"update": [{"id": other.pk, "phone": "1"}]}, format="json")

    item = response.json()["data"]["results"][0]
    assert response.status_code == 207, response.content
    assert item["status"] == 404 and item["error"]["merged_into"] == survivor.pk


def test_api_refuses_a_dry_run_that_is_not_a_boolean(api):
    survivor, other = CustomerFactory(), CustomerFactory()

    response = api.post(
        "/api/customers/merge?dry_run=maybe", {"survivor_id": survivor.pk, "merged_ids": [other.pk]}, format="json"
    )

    assert response.status_code == 400 and "dry_run" in response.json()["error"]["fields"]
    assert Customer.objects.filter(pk=other.pk).exists()


def test_errors_of_a_lists_items_are_strings_named_by_their_place(api):
    response = api.post(
        "/api/customers/merge", {"survivor_id": 1, "merged_ids": [2, "x"], "fields": {"name": "y"}}, format="json"
    )
    fields = response.json()["error"]["fields"]
    assert response.status_code == 400
    assert fields["merged_ids"] == ["1: A valid integer is required."]
    assert fields["fields"] == ["name: A valid integer is required."]
