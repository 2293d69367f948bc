"""``/api/changesets``: the list (scoped), the rows, the undo and its conflicts."""

import pytest
from django.contrib.auth.models import Group
from django.db import connection
from knox.models import get_token_model
from rest_framework.test import APIClient

from core.changesets import Changeset, recording
from core.models import Event
from customers.models import Customer
from interactions.models import Interaction
from tests.concurrency import deadlocked
from tests.factories import CompanyFactory, CustomerFactory, ManagerFactory, UserFactory

pytestmark = pytest.mark.django_db


def client(user):
    _, token = get_token_model().objects.create(user)
    api = APIClient()
    api.credentials(HTTP_AUTHORIZATION=f"Bearer {token}")
    return api


@pytest.fixture
def rep():
    user = UserFactory(username="rep")
    user.groups.add(Group.objects.get(name="Sales rep"))
    return user


def renamed(user, *customers, name="Renamed"):
    with recording("action", user=user, label="rename", source={"action": "rename"}) as cs:
        for customer in customers:
            customer.name = name
            customer.save()
    return cs


def test_a_rep_lists_their_own_changesets_a_manager_all(rep):
    manager = ManagerFactory()
    mine = renamed(rep, CustomerFactory(owner=rep))
    theirs = renamed(manager, CustomerFactory())
    listed = client(rep).get("/api/changesets").json()
    assert [row["id"] for row in listed["data"]] == [mine.pk]
    assert listed["data"][0] | {"created_at": None} == {
        "id": mine.pk,
        "kind": "action",
        "label": "rename",
        "user_id": rep.pk,
        "created_at": None,
        "source": {"action": "rename"},
        "counts": {"customers.customer": {"created": 0, "updated": 1, "deleted": 0}},
        "status": "applied",
        "undoes_id": None,
        "undone_by_id": None,
        "undone_at": None,
    }
    assert {row["id"] for row in client(manager).get("/api/changesets").json()["data"]} == {mine.pk, theirs.pk}


def test_rows_are_paged_in_order_with_their_diff():
    manager = ManagerFactory()
    customers = [CustomerFactory(name=f"C{n}") for n in range(3)]
    cs = renamed(manager, *customers)
    api = client(manager)
    page = api.get(f"/api/changesets/{cs.pk}/rows", {"page_size": 2}).json()
    assert [row["seq"] for row in page["data"]] == [1, 2]
    assert page["data"][0] == {
        "seq": 1,
        "model": "customers.customer",
        "object_id": customers[0].pk,
        "name": "Renamed",
        "op": "updated",
        "before": {"name": "C0"},
        "after": {"name": "Renamed"},
    }
    assert page["meta"]["count"] == 3
    rest = api.get(f"/api/changesets/{cs.pk}/rows", {"page_size": 2, "page": 2}).json()
    assert [row["seq"] for row in rest["data"]] == [3]


def test_undo_then_redo_through_the_api():
    manager = ManagerFactory()
    customer = CustomerFactory(name="Old")
    cs = renamed(manager, customer)
    api = client(manager)
    answer = api.post(f"/api/changesets/{cs.pk}/undo", {}, format="json")
    assert answer.status_code == 200, answer.content
    undo = answer.json()["data"]
    assert undo["kind"] == "undo" and undo["undoes_id"] == cs.pk and undo["user_id"] == manager.pk
    assert Customer.objects.get(pk=customer.pk).name == "Old"
    again = api.post(f"/api/changesets/{cs.pk}/undo", {}, format="json")
    assert again.status_code == 409 and again.json()["error"]["code"] == "already_undone"
    redo = api.post(f"/api/changesets/{undo['id']}/undo", {}, format="json")
    assert redo.status_code == 200
    assert Customer.objects.get(pk=customer.pk).name == "Renamed"
    assert Changeset.objects.get(pk=cs.pk).status == "undone"


def test_undo_refuses_a_null_body_and_takes_none():
    """A JSON ``null`` is not the object the schema asks for (nothing is undone); no body at all is."""
    manager = ManagerFactory()
    customer = CustomerFactory(name="Old")
    cs = renamed(manager, customer)
    api = client(manager)
    refused = api.post(f"/api/changesets/{cs.pk}/undo", "null", content_type="application/json")
    assert refused.status_code == 400 and refused.json()["success"] is False
    assert Customer.objects.get(pk=customer.pk).name == "Renamed"
    assert api.post(f"/api/changesets/{cs.pk}/undo").status_code == 200
    assert Customer.objects.get(pk=customer.pk).name == "Old"


def test_a_conflict_is_a_409_naming_the_records_unless_skipped():
    manager = ManagerFactory()
    kept, changed = CustomerFactory(name="Kept"), CustomerFactory(name="Changed")
    cs = renamed(manager, kept, changed, name="Bulk")
    changed.refresh_from_db()
    changed.email = "new@example.com"
    changed.save()
    api = client(manager)
    refused = api.post(f"/api/changesets/{cs.pk}/undo", {}, format="json")
    assert refused.status_code == 409
    error = refused.json()["error"]
    assert error["code"] == "undo_conflict" and "Bulk (changed since)" in error["message"]
    assert error["conflicts"] == [
        {"model": "customers.customer", "object_id": changed.pk, "name": "Bulk", "reason": "changed"}
    ]
    assert Customer.objects.get(pk=kept.pk).name == "Bulk"
    done = api.post(f"/api/changesets/{cs.pk}/undo", {"skip_conflicts": True}, format="json")
    assert done.status_code == 200
    assert Customer.objects.get(pk=kept.pk).name == "Kept"
    assert Customer.objects.get(pk=changed.pk).name == "Bulk"


def test_undoing_a_merge_whose_merged_away_email_is_taken_since_is_a_409_not_a_server_error():
    manager = ManagerFactory()
    survivor = CustomerFactory(name="Survivor", email="survivor@example.com")
    merged = CustomerFactory(name="Merged", email="merged@example.com")
    Interaction.objects.create(customer=merged, interaction_type=Interaction.Type.CALL, notes="Called")
    api = client(manager)
    merge = api.post("/api/customers/merge", {"survivor_id": survivor.pk, "merged_ids": [merged.pk]}, format="json")
    changeset = merge.json()["data"]["changeset"]["id"]
    assert (
        api.post("/api/customers", {"name": "Newcomer", "email": "merged@example.com"}, format="json").status_code
        == 201
    )

    refused = api.post(f"/api/changesets/{changeset}/undo", {}, format="json")
    assert refused.status_code == 409
    assert refused.json()["error"]["conflicts"] == [
        {"model": "customers.customer", "object_id": merged.pk, "name": "Merged", "reason": "taken"}
    ]
    done = api.post(f"/api/changesets/{changeset}/undo", {"skip_conflicts": True}, format="json")
    assert done.status_code == 200, done.content
    # The merged-away record stays merged, its interaction with the survivor.
    assert not Customer.objects.filter(pk=merged.pk).exists()
    assert Interaction.objects.get(notes="Called").customer_id == survivor.pk


def give_to_another_rep(customer):
    """A manager reassigns ``customer`` (and with it its interactions and deals) to a second rep."""
    other = UserFactory(username="rep2")
    other.groups.add(Group.objects.get(name="Sales rep"))
    moved = client(ManagerFactory()).post(
        f"/api/customers/{customer.pk}/reassign", {"owner_id": other.pk}, format="json"
    )
    assert moved.status_code == 200


def test_a_rep_cannot_undo_what_has_left_their_book(rep):
    # The interaction itself is unchanged: its customer, and so the interaction, went to another rep.
    customer = CustomerFactory(owner=rep)
    api = client(rep)
    batch = {"create": [{"customer_id": customer.pk, "interaction_type": "call", "notes": "Mine"}]}
    answer = api.post("/api/interactions/batch", batch, format="json").json()["data"]
    interaction_id = answer["results"][0]["data"]["id"]
    changeset_id = answer["changeset"]["id"]
    give_to_another_rep(customer)

    refused = api.post(f"/api/changesets/{changeset_id}/undo", {}, format="json")
    assert refused.status_code == 409
    assert refused.json()["error"]["conflicts"] == [
        {
            "model": "interactions.interaction",
            "object_id": interaction_id,
            "name": f"Call · {customer.pk}",
            "reason": "not_in_your_book",
        }
    ]
    skipped = api.post(f"/api/changesets/{changeset_id}/undo", {"skip_conflicts": True}, format="json")
    assert skipped.status_code == 200 and skipped.json()["data"]["source"]["skipped"] == 1
    assert Interaction.objects.filter(pk=interaction_id, notes="Mine").exists()


@pytest.mark.parametrize("body", [{"skip_conflicts": "maybe"}, [1], {"skip_conflicts": None}])
def test_a_bad_body_is_a_400(body):
    manager = ManagerFactory()
    cs = renamed(manager, CustomerFactory())
    answer = client(manager).post(f"/api/changesets/{cs.pk}/undo", body, format="json")
    assert answer.status_code == 400 and answer.json()["success"] is False
    assert Changeset.objects.get(pk=cs.pk).status == "applied"


@pytest.mark.parametrize("sent", ["true", "yes", 1, 0])
def test_a_skip_conflicts_that_is_not_true_or_false_is_a_400_and_undoes_nothing(sent):
    manager = ManagerFactory()
    customer = CustomerFactory(name="Old")
    cs = renamed(manager, customer)
    entries, events = Customer.history.count(), Event.objects.count()

    answer = client(manager).post(f"/api/changesets/{cs.pk}/undo", {"skip_conflicts": sent}, format="json")

    assert answer.status_code == 400, answer.content
    assert answer.json()["error"]["fields"] == {"skip_conflicts": ["Must be a valid boolean."]}
    assert Customer.objects.get(pk=customer.pk).name == "Renamed"
    assert Changeset.objects.get(pk=cs.pk).status == "applied" and Changeset.objects.count() == 1
    assert (Customer.history.count(), Event.objects.count()) == (entries, events)


def test_the_list_costs_the_same_queries_for_more_changesets(django_assert_max_num_queries):
    manager = ManagerFactory()
    api = client(manager)
    renamed(manager, CustomerFactory())
    api.get("/api/changesets")
    from django.db import connection
    from django.test.utils import CaptureQueriesContext

    with CaptureQueriesContext(connection) as few:
        api.get("/api/changesets")
    for _ in range(5):
        renamed(manager, CustomerFactory())
    with CaptureQueriesContext(connection) as many:
        assert len(api.get("/api/changesets").json()["data"]) == 6
    assert len(many) == len(few)


def test_the_undo_is_in_the_event_feed_of_the_changesets_maker(rep):
    manager = ManagerFactory()
    cs = renamed(rep, CustomerFactory(owner=rep, name="Old"))
    assert client(rep).post(f"/api/changesets/{cs.pk}/undo", {}, format="json").status_code == 200
    feed = client(rep).get("/api/events", {"type": "changeset.undone"}).json()["data"]
    assert [(event["model"], event["object_id"], event["actor_id"]) for event in feed] == [
        ("core.changeset", cs.pk, rep.pk)
    ]
    assert len(client(manager).get("/api/events", {"type": "changeset.undone"}).json()["data"]) == 1


def test_an_api_reassign_names_its_changeset_its_dry_run_writes_nothing_and_its_undo_gives_back(rep):
    manager = ManagerFactory()
    api = client(manager)
    customers = CustomerFactory.create_batch(3, owner=rep)
    body = {"from_owner_id": rep.pk, "to_owner_id": manager.pk}

    preview = api.post("/api/customers/reassign?dry_run=true", body, format="json").json()["data"]
    assert preview["dry_run"] is True and preview["customers"] == 3
    assert preview["changeset"]["counts"] == {"customers.customer": {"created": 0, "updated": 3, "deleted": 0}}
    assert {row["before"]["owner_id"] for row in preview["changeset"]["rows"]} == {rep.pk}
    assert Customer.objects.filter(owner=rep).count() == 3 and not Changeset.objects.exists()

    answer = api.post("/api/customers/reassign", body, format="json").json()["data"]
    assert answer["dry_run"] is False and answer["changeset"]["kind"] == "reassign"
    assert Customer.objects.filter(owner=manager).count() == 3

    response = api.post(f"/api/changesets/{answer['changeset']['id']}/undo", {}, format="json")
    assert response.status_code == 200, response.content
    assert sorted(Customer.objects.filter(owner=rep).values_list("pk", flat=True)) == [c.pk for c in customers]


def test_a_reassign_that_moves_nothing_names_no_changeset_and_a_bad_dry_run_is_a_400(rep):
    api = client(ManagerFactory())
    customer = CustomerFactory(owner=rep)
    answer = api.post(f"/api/customers/{customer.pk}/reassign", {"owner_id": rep.pk}, format="json").json()["data"]
    assert answer["customers"] == 0 and answer["changeset"] is None
    response = api.post(f"/api/customers/{customer.pk}/reassign?dry_run=maybe", {"owner_id": rep.pk}, format="json")
    assert response.status_code == 400 and "dry_run" in response.json()["error"]["fields"]


def test_an_undo_that_skips_every_record_changes_nothing_and_is_recorded(rep):
    manager = ManagerFactory()
    customer = CustomerFactory(owner=manager)
    changeset = renamed(manager, customer)
    customer.refresh_from_db()
    customer.name = "Changed since"
    customer.save()

    response = client(manager).post(f"/api/changesets/{changeset.pk}/undo", {"skip_conflicts": True}, format="json")

    assert response.status_code == 200, response.content
    done = response.json()["data"]
    assert done["id"] is not None and done["undoes_id"] == changeset.pk and done["counts"] == {}
    assert done["source"] == {"undoes": changeset.pk, "skipped": 1}
    changeset.refresh_from_db()
    assert changeset.status == "undone" and Customer.objects.get(pk=customer.pk).name == "Changed since"


def interaction_deleted_in_a_batch(api, customer):
    """(interaction id, changeset id): an interaction of ``customer`` made, then deleted by a batch, through ``api``."""
    made = api.post("/api/interactions", {"customer_id": customer.pk, "interaction_type": "call"}, format="json")
    interaction_id = made.json()["data"]["id"]
    answer = api.post("/api/interactions/batch", {"delete": [interaction_id]}, format="json").json()["data"]
    assert answer["results"][0]["status"] == 200
    return interaction_id, answer["changeset"]["id"]


def test_a_rep_cannot_undo_a_delete_into_another_reps_book(rep):
    # The rep deleted their own interaction; its customer went to another rep since. Undoing the delete would
    # make the interaction again under that rep's customer, a record the undoing rep could not even read.
    customer = CustomerFactory(owner=rep)
    api = client(rep)
    interaction_id, changeset_id = interaction_deleted_in_a_batch(api, customer)
    give_to_another_rep(customer)

    refused = api.post(f"/api/changesets/{changeset_id}/undo", {}, format="json")
    assert refused.status_code == 409
    assert [(c["object_id"], c["reason"]) for c in refused.json()["error"]["conflicts"]] == [
        (interaction_id, "not_in_your_book")
    ]
    skipped = api.post(f"/api/changesets/{changeset_id}/undo", {"skip_conflicts": True}, format="json")
    assert skipped.status_code == 200
    assert not Interaction.objects.filter(pk=interaction_id).exists()


def test_a_rep_may_undo_a_delete_of_what_is_still_theirs(rep):
    customer = CustomerFactory(owner=rep)
    api = client(rep)
    interaction_id, changeset_id = interaction_deleted_in_a_batch(api, customer)
    undone = api.post(f"/api/changesets/{changeset_id}/undo", {}, format="json")
    assert undone.status_code == 200
    assert Interaction.objects.filter(pk=interaction_id, customer=customer).exists()


def test_a_reps_company_rename_lists_and_undoes_the_people_of_their_book_alone(rep):
    """Another rep's person at the company takes its new name too, in their history, but the rep's changeset
    neither names them nor holds up its undo with them (not in the rep's book)."""
    other_rep = UserFactory(username="other")
    other_rep.groups.add(Group.objects.get(name="Sales rep"))
    company = CompanyFactory(name="Acme", owner=rep)
    mine = CustomerFactory(name="Mine", company=company, owner=rep)
    theirs = CustomerFactory(name="Theirs", company=company, owner=other_rep)
    api = client(rep)

    body = {"update": [{"id": company.pk, "name": "Acme Ltd"}]}
    cs = api.post("/api/companies/batch", body, format="json").json()["data"]["changeset"]
    assert cs["counts"]["customers.customer"] == {"created": 0, "updated": 1, "deleted": 0}
    rows = api.get(f"/api/changesets/{cs['id']}/rows").json()["data"]
    assert [(row["model"], row["object_id"]) for row in rows] == [
        ("companies.company", company.pk),
        ("customers.customer", mine.pk),
    ]
    assert "Theirs" not in str(rows)
    assert Customer.objects.get(pk=theirs.pk).company_name == "Acme Ltd"
    assert Customer.history.filter(id=theirs.pk).latest().company_name == "Acme Ltd"

    answer = api.post(f"/api/changesets/{cs['id']}/undo", {}, format="json")
    assert answer.status_code == 200, answer.content
    assert "Theirs" not in answer.content.decode()
    assert answer.json()["data"]["counts"]["customers.customer"] == {"created": 0, "updated": 1, "deleted": 0}
    assert {Customer.objects.get(pk=person.pk).company_name for person in (mine, theirs)} == {"Acme"}


@pytest.mark.django_db(transaction=True)
@pytest.mark.skipif(connection.vendor != "postgresql", reason="two connections at once: PostgreSQL")
def test_an_undo_aborted_in_a_deadlock_is_a_409_with_nothing_undone():
    # The undo puts the newest row back first (the second customer), then the first; another transaction holds
    # the first, then asks for the second: PostgreSQL aborts the undo. A 409 the client retries, not a 500.
    manager = ManagerFactory()
    api = client(manager)
    first, second = CustomerFactory(name="First"), CustomerFactory(name="Second")
    cs = renamed(manager, first, second, name="Bulk")

    answer, errors = deadlocked(second, first, lambda: api.post(f"/api/changesets/{cs.pk}/undo", {}, format="json"))

    assert not errors
    assert not isinstance(answer, Exception), answer
    assert answer.status_code == 409
    assert answer.json()["error"]["code"] == "conflict"
    assert [Customer.objects.get(pk=c.pk).name for c in (first, second)] == ["Bulk", "Bulk"]
    assert Changeset.objects.get(pk=cs.pk).status == Changeset.Status.APPLIED
    # Undone once the other change is over.
    assert api.post(f"/api/changesets/{cs.pk}/undo", {}, format="json").status_code == 200
    assert [Customer.objects.get(pk=c.pk).name for c in (first, second)] == ["First", "Second"]
