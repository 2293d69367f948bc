"""``POST /api/<resource>/batch``: items written as the single-record endpoints write them, answered one by one."""

from decimal import Decimal

import pytest
from django.contrib.auth.models import Group
from django.db import connection
from django.test.utils import CaptureQueriesContext
from knox.models import get_token_model
from rest_framework.test import APIClient

from core.api.batch import MAX_ITEMS
from core.models import Event
from customers.models import Customer
from interactions.models import Interaction
from opportunities.models import Opportunity
from tests.factories import CustomerFactory, InteractionFactory, OpportunityFactory, UserFactory

pytestmark = pytest.mark.django_db

URL = "/api/customers/batch"


def api_for(user):
    client = APIClient()
    _, token = get_token_model().objects.create(user)
    client.credentials(HTTP_AUTHORIZATION=f"Bearer {token}")
    return client


@pytest.fixture
def rep():
    user = UserFactory(username="rep")
    user.groups.add(Group.objects.get(name="Sales rep"))
    return user


def results(response):
    return response.json()["data"]["results"]


def summary(response):
    """(op, index, status) of each item, in the order answered."""
    return [(item["op"], item["index"], item["status"]) for item in results(response)]


def snapshot():
    """Everything a batch may write: records, their history and their events."""
    return (
        sorted(Customer.objects.values_list("pk", "name", "phone", "email", "external_id")),
        Customer.history.count(),
        Interaction.objects.count(),
        Opportunity.objects.count(),
        Event.objects.count(),
    )


class TestItems:
    def test_all_items_succeeding_answer_200_in_input_order_with_what_the_single_endpoint_returns(self, api):
        one, two = CustomerFactory(name="One"), CustomerFactory(name="Two")
        body = {
            "delete": [two.pk],
            "create": [{"name": "New", "email": "new@example.com"}],
            "update": [{"id": one.pk, "phone": "555"}],
        }

        response = api.post(URL, body, format="json")

        assert response.status_code == 200, response.content
        payload = response.json()
        assert payload["success"] is True
        assert payload["data"]["succeeded"] == 3 and payload["data"]["failed"] == 0
        # The body's lists in the order they came, each in its own order.
        assert summary(response) == [("delete", 0, 200), ("create", 0, 201), ("update", 0, 200)]
        deleted, created, updated = results(response)
        assert deleted["data"] == {
            "id": two.pk,
            "deleted": {"customers": 1, "interactions": 0, "opportunities": 0, "tasks": 0},
        }
        new = Customer.objects.get(email="new@example.com")
        assert created["data"] == api.get(f"/api/customers/{new.pk}").json()["data"]
        assert created["etag"] == api.get(f"/api/customers/{new.pk}")["ETag"]
        assert updated["id"] == one.pk and updated["data"]["phone"] == "555"
        assert Customer.objects.get(pk=one.pk).phone == "555"
        assert not Customer.objects.filter(pk=two.pk).exists()

    def test_history_and_events_are_written_per_item_as_for_single_requests(self, api, user):
        customer = CustomerFactory()
        before = Event.objects.count()
        response = api.post(
            URL, {"create": [{"name": "A"}], "update": [{"id": customer.pk, "name": "Renamed"}]}, format="json"
        )

        assert response.status_code == 200
        created_id = results(response)[0]["data"]["id"]
        assert list(Event.objects.order_by("id")[before:].values_list("type", "object_id", "actor")) == [
            ("customer.created", created_id, user.pk),
            ("customer.updated", customer.pk, user.pk),
        ]
        assert Event.objects.get(type="customer.updated").changes["name"]["new"] == "Renamed"
        assert customer.history.first().history_user == user
        assert Customer.objects.get(pk=created_id).owner == user

    def test_some_items_failing_answer_207_with_each_error_in_the_envelopes_shape_and_the_rest_written(self, api):
        taken = CustomerFactory(email="taken@example.com")
        body = {
            "create": [{"name": "Good"}, {"name": ""}, {"name": "Clash", "email": "TAKEN@example.com"}, "text"],
            "update": [{"id": taken.pk, "status": "nonsense"}, {"phone": "1"}],
            "delete": [999_999_999, "x"],
        }

        response = api.post(URL, body, format="json")

        assert response.status_code == 207
        payload = response.json()
        assert payload["success"] is False and payload["error"]["code"] == "batch_partially_failed"
        assert payload["data"]["succeeded"] == 1 and payload["data"]["failed"] == 7
        assert summary(response) == [
            ("create", 0, 201),
            ("create", 1, 400),
            ("create", 2, 400),
            ("create", 3, 400),
            ("update", 0, 400),
            ("update", 1, 400),
            ("delete", 0, 404),
            ("delete", 1, 400),
        ]
        items = results(response)
        assert items[1]["error"]["code"] == "validation_error"
        assert items[1]["error"]["fields"] == {"name": ["This field may not be blank."]}
        assert items[2]["error"]["fields"] == {"email": ["A customer with this email already exists."]}
        assert items[4]["error"]["fields"]["status"] == ['"nonsense" is not a valid choice.']
        assert "id" in items[5]["error"]["fields"]
        assert items[6]["error"]["code"] == "not_found" and items[6]["id"] == 999_999_999
        good = items[0]["data"]["id"]
        assert sorted(Customer.objects.values_list("pk", flat=True)) == sorted([taken.pk, good])
        assert Customer.objects.get(pk=taken.pk).status == Customer.Status.ACTIVE

    def test_a_later_item_sees_what_an_earlier_item_of_the_batch_wrote(self, api):
        response = api.post(
            URL,
            {"create": [{"name": "A", "email": "a@example.com"}, {"name": "B", "email": "a@example.com"}]},
            format="json",
        )

        assert summary(response) == [("create", 0, 201), ("create", 1, 400)]
        assert Customer.objects.count() == 1

    def test_a_stale_if_match_fails_that_item_only_with_412(self, api):
        customer = CustomerFactory()
        etag = api.get(f"/api/customers/{customer.pk}")["ETag"]

        response = api.post(
            URL,
            {
                "update": [
                    {"id": customer.pk, "if_match": etag, "phone": "1"},
                    {"id": customer.pk, "if_match": etag, "phone": "2"},
                ]
            },
            format="json",
        )

        assert summary(response) == [("update", 0, 200), ("update", 1, 412)]
        assert results(response)[1]["error"]["code"] == "precondition_failed"
        assert Customer.objects.get(pk=customer.pk).phone == "1"

    def test_an_interaction_for_an_unknown_customer_is_a_400_on_customer_id(self, api):
        customer = CustomerFactory()
        response = api.post(
            "/api/interactions/batch",
            {
                "create": [
                    {"customer_id": customer.pk, "interaction_type": "call"},
                    {"customer_id": 999, "interaction_type": "call"},
                ]
            },
            format="json",
        )

        assert summary(response) == [("create", 0, 201), ("create", 1, 400)]
        assert "customer_id" in results(response)[1]["error"]["fields"]
        assert Interaction.objects.get().customer == customer

    def test_an_opportunity_stage_change_in_a_batch_sets_probability_and_closed_at_as_a_single_update(self, api):
        opportunity = OpportunityFactory(stage=Opportunity.Stage.LEAD)

        response = api.post(
            "/api/opportunities/batch", {"update": [{"id": opportunity.pk, "stage": "closed"}]}, format="json"
        )

        assert response.status_code == 200
        data = results(response)[0]["data"]
        assert data["probability"] == 100 and data["closed_at"] is not None
        assert Event.objects.filter(type="opportunity.stage_changed", object_id=opportunity.pk).exists()


class TestBody:
    @pytest.mark.parametrize(
        "body",
        [{}, {"create": []}, {"merge": [{"name": "A"}]}, {"create": {"name": "A"}}, [{"name": "A"}]],
        ids=["empty", "no-items", "unknown-operation", "not-a-list", "not-an-object"],
    )
    def test_a_malformed_batch_is_a_400_and_writes_nothing(self, api, body):
        response = api.post(URL, body, format="json")

        assert response.status_code == 400
        assert response.json()["success"] is False
        assert response.json()["error"]["code"] == "validation_error"
        assert Customer.objects.count() == 0

    def test_more_than_the_item_cap_is_a_400_and_writes_nothing(self, api):
        customer = CustomerFactory()
        body = {"create": [{"name": f"C{i}"} for i in range(MAX_ITEMS)], "delete": [customer.pk]}

        response = api.post(URL, body, format="json")

        assert MAX_ITEMS == 100
        assert response.status_code == 400
        assert "at most 100 items" in response.json()["error"]["message"]
        assert list(Customer.objects.values_list("pk", flat=True)) == [customer.pk]

    def test_exactly_the_item_cap_is_written(self, api):
        response = api.post(URL, {"create": [{"name": f"C{i}"} for i in range(MAX_ITEMS)]}, format="json")

        assert response.status_code == 200
        assert Customer.objects.count() == MAX_ITEMS


class TestAtomic:
    def test_one_failure_rolls_back_every_item_and_answers_400_with_each_item_reported(self, api):
        customer = CustomerFactory(phone="old")
        removed = CustomerFactory()
        before = snapshot()

        response = api.post(
            f"{URL}?atomic=true",
            {
                "create": [{"name": "A"}],
                "update": [{"id": customer.pk, "phone": "new"}],
                "delete": [removed.pk],
                "upsert": [{"name": ""}],
            },
            format="json",
        )

        assert response.status_code == 400
        payload = response.json()
        assert payload["success"] is False and payload["error"]["code"] == "batch_rolled_back"
        assert payload["data"] == {**payload["data"], "atomic": True, "succeeded": 0, "failed": 1}
        assert summary(response) == [("create", 0, 424), ("update", 0, 424), ("delete", 0, 424), ("upsert", 0, 400)]
        assert results(response)[0]["error"]["code"] == "not_written"
        assert "data" not in results(response)[0]
        assert snapshot() == before

    def test_an_atomic_batch_without_failures_writes_everything(self, api):
        response = api.post(f"{URL}?atomic=true", {"create": [{"name": "A"}, {"name": "B"}]}, format="json")

        assert response.status_code == 200
        assert response.json()["data"]["atomic"] is True
        assert Customer.objects.count() == 2

    def test_an_invalid_atomic_flag_is_a_400(self, api):
        response = api.post(f"{URL}?atomic=maybe", {"create": [{"name": "A"}]}, format="json")

        assert response.status_code == 400
        assert "atomic" in response.json()["error"]["fields"]
        assert Customer.objects.count() == 0


class TestScope:
    def test_a_reps_items_on_another_reps_customer_are_404_and_leave_it_alone(self, rep):
        other = CustomerFactory(owner=UserFactory(), phone="theirs")
        mine = CustomerFactory(owner=rep)

        response = api_for(rep).post(
            URL,
            {"update": [{"id": other.pk, "phone": "mine"}, {"id": mine.pk, "phone": "mine"}]},
            format="json",
        )

        assert response.status_code == 207
        assert summary(response) == [("update", 0, 404), ("update", 1, 200)]
        assert results(response)[0]["error"]["code"] == "not_found"
        assert Customer.objects.get(pk=other.pk).phone == "theirs"
        assert Customer.objects.get(pk=mine.pk).phone == "mine"

    def test_a_rep_may_not_delete_customers_in_a_batch_either(self, rep):
        mine = CustomerFactory(owner=rep)

        response = api_for(rep).post(URL, {"delete": [mine.pk]}, format="json")

        assert summary(response) == [("delete", 0, 403)]
        assert Customer.objects.filter(pk=mine.pk).exists()

    def test_a_rep_cannot_attach_an_interaction_to_another_reps_customer(self, rep):
        other = CustomerFactory(owner=UserFactory())

        response = api_for(rep).post(
            "/api/interactions/batch",
            {"create": [{"customer_id": other.pk, "interaction_type": "call"}]},
            format="json",
        )

        assert summary(response) == [("create", 0, 400)]
        assert not Interaction.objects.exists()

    def test_a_rep_cannot_give_a_created_customer_to_someone_else(self, rep):
        response = api_for(rep).post(URL, {"create": [{"name": "A", "owner_id": UserFactory().pk}]}, format="json")

        assert summary(response) == [("create", 0, 400)]
        assert "owner_id" in results(response)[0]["error"]["fields"]

    def test_a_read_only_user_cannot_post_a_batch(self):
        user = UserFactory()
        user.groups.add(Group.objects.get(name="Read-only"))

        response = api_for(user).post(URL, {"create": [{"name": "A"}]}, format="json")

        assert response.status_code == 403
        assert not Customer.objects.exists()


class TestUpsert:
    def test_a_customer_is_matched_by_email_in_any_case_and_updated_partially(self, api):
        customer = CustomerFactory(email="ann@example.com", phone="1", company="Old")

        response = api.post(URL, {"upsert": [{"email": "ANN@Example.com", "company": "New"}]}, format="json")

        assert response.status_code == 200
        item = results(response)[0]
        assert item["status"] == 200 and item["created"] is False and item["data"]["id"] == customer.pk
        customer.refresh_from_db()
        assert (customer.company_name, customer.phone, customer.email) == ("New", "1", "ANN@Example.com")
        assert Customer.objects.count() == 1

    def test_an_unmatched_upsert_creates(self, api):
        response = api.post(
            URL, {"upsert": [{"name": "Bea", "email": "bea@example.com", "external_id": "crm-9"}]}, format="json"
        )

        item = results(response)[0]
        assert item["status"] == 201 and item["created"] is True
        assert Customer.objects.get(external_id="crm-9").email == "bea@example.com"

    def test_external_id_is_matched_before_email(self, api):
        by_external = CustomerFactory(external_id="ext-1", email="one@example.com")
        CustomerFactory(email="two@example.com")

        response = api.post(URL, {"upsert": [{"external_id": "ext-1", "email": "two@example.com"}]}, format="json")

        # Matched by external_id; the email it asks for belongs to another customer.
        item = results(response)[0]
        assert item["status"] == 400 and item["error"]["fields"] == {
            "email": ["A customer with this email already exists."]
        }
        assert Customer.objects.get(pk=by_external.pk).email == "one@example.com"

    def test_an_email_match_links_the_customer_to_the_external_id(self, api):
        customer = CustomerFactory(email="cy@example.com")

        response = api.post(URL, {"upsert": [{"external_id": "ext-7", "email": "cy@example.com"}]}, format="json")

        assert results(response)[0]["created"] is False
        assert Customer.objects.get(pk=customer.pk).external_id == "ext-7"

    @pytest.mark.parametrize(
        ("resource", "factory", "field", "value"),
        [
            ("interactions", InteractionFactory, "notes", "from the other system"),
            ("opportunities", OpportunityFactory, "title", "Mirrored"),
        ],
    )
    def test_interactions_and_opportunities_are_matched_by_external_id(self, api, resource, factory, field, value):
        existing = factory(external_id="sys-1")

        response = api.post(
            f"/api/{resource}/batch",
            {
                "upsert": [
                    {"external_id": "sys-1", field: value},
                    {"external_id": "sys-2", "customer_id": existing.customer_id, field: value}
                    | ({"interaction_type": "call"} if resource == "interactions" else {}),
                ]
            },
            format="json",
        )

        assert response.status_code == 200, response.content
        assert [(item["status"], item["created"]) for item in results(response)] == [(200, False), (201, True)]
        model = type(existing)
        assert getattr(model.objects.get(pk=existing.pk), field) == value
        assert model.objects.get(external_id="sys-2").customer_id == existing.customer_id

    def test_an_upsert_without_a_key_creates_and_one_with_an_id_is_refused(self, api):
        customer = CustomerFactory()

        response = api.post(URL, {"upsert": [{"name": "No key"}, {"id": customer.pk, "name": "X"}]}, format="json")

        assert summary(response) == [("upsert", 0, 201), ("upsert", 1, 400)]
        assert results(response)[0]["created"] is True
        assert Customer.objects.get(pk=customer.pk).name != "X"

    @pytest.mark.parametrize("key", ["external_id", "email"])
    def test_an_upsert_key_with_a_nul_is_refused_not_a_crash(self, api, key):
        # PostgreSQL refuses a NUL in a query's text: the key is no match, and the create refuses it.
        response = api.post(URL, {"upsert": [{key: "a\x00b@example.com", "name": "Nul"}]}, format="json")

        item = results(response)[0]
        assert response.status_code == 207 and item["status"] == 400 and key in item["error"]["fields"]
        assert not Customer.objects.exists()

    def test_a_reps_upsert_never_updates_another_reps_customer(self, rep):
        other = CustomerFactory(owner=UserFactory(), external_id="theirs", name="Theirs")

        response = api_for(rep).post(URL, {"upsert": [{"external_id": "theirs", "name": "Mine"}]}, format="json")

        # Not in the rep's book, so not matched; creating it would break the unique key.
        item = results(response)[0]
        assert item["status"] == 400 and "external_id" in item["error"]["fields"]
        assert Customer.objects.get(pk=other.pk).name == "Theirs"
        assert Customer.objects.count() == 1


class TestExternalId:
    def test_external_id_is_unique_when_set_and_blank_is_none(self, api):
        first = api.post("/api/customers", {"name": "A", "external_id": " x-1 "}, format="json")
        clash = api.post("/api/customers", {"name": "B", "external_id": "x-1"}, format="json")
        blanks = [api.post("/api/customers", {"name": n, "external_id": ""}, format="json") for n in ("C", "D")]

        assert first.status_code == 201 and first.json()["data"]["external_id"] == "x-1"
        assert clash.status_code == 400
        assert clash.json()["error"]["fields"] == {"external_id": ["A record with this external_id already exists."]}
        assert [b.json()["data"]["external_id"] for b in blanks] == [None, None]

    def test_external_id_longer_than_255_characters_is_a_400(self, api):
        response = api.post(
            "/api/opportunities",
            {"customer_id": CustomerFactory().pk, "title": "T", "external_id": "x" * 256},
            format="json",
        )

        assert response.status_code == 400
        assert "external_id" in response.json()["error"]["fields"]

    @pytest.mark.parametrize(
        ("resource", "factory"),
        [("customers", CustomerFactory), ("interactions", InteractionFactory), ("opportunities", OpportunityFactory)],
    )
    def test_the_external_id_filter_finds_the_one_record(self, api, resource, factory):
        wanted = factory(external_id="abc")
        factory(external_id="abcd")
        factory()

        data = api.get(f"/api/{resource}", {"external_id": "abc"}).json()["data"]

        assert [row["id"] for row in data] == [wanted.pk]

    def test_a_concurrent_writer_winning_the_external_id_is_a_400_not_a_500(self, api, monkeypatch):
        from customers.serializers import CustomerSerializer

        CustomerFactory(external_id="race")
        # The serializer's check passing (as when another request commits between it and the insert).
        monkeypatch.setattr(CustomerSerializer, "validate_external_id", lambda self, value: value)

        response = api.post("/api/customers", {"name": "Late", "external_id": "race"}, format="json")

        assert response.status_code == 400
        assert response.json()["error"]["fields"] == {"external_id": ["A record with this external_id already exists."]}


class TestIdempotency:
    def test_a_batch_replayed_with_its_key_answers_the_same_and_writes_once(self, api):
        body = {"create": [{"name": "A"}, {"name": ""}]}
        headers = {"HTTP_IDEMPOTENCY_KEY": "batch-1"}

        first = api.post(URL, body, format="json", **headers)
        again = api.post(URL, body, format="json", **headers)

        assert first.status_code == again.status_code == 207
        assert again.content == first.content
        assert again["Idempotent-Replayed"] == "true"
        assert Customer.objects.count() == 1

    def test_a_key_reused_for_another_batch_is_refused(self, api):
        headers = {"HTTP_IDEMPOTENCY_KEY": "batch-2"}
        api.post(URL, {"create": [{"name": "A"}]}, format="json", **headers)

        response = api.post(URL, {"create": [{"name": "B"}]}, format="json", **headers)

        assert response.status_code == 422
        assert list(Customer.objects.values_list("name", flat=True)) == ["A"]

    def test_an_atomic_batch_that_rolled_back_is_replayed_without_writing(self, api):
        body = {"create": [{"name": "A"}, {"name": ""}]}
        headers = {"HTTP_IDEMPOTENCY_KEY": "batch-3"}

        first = api.post(f"{URL}?atomic=true", body, format="json", **headers)
        again = api.post(f"{URL}?atomic=true", body, format="json", **headers)

        assert first.status_code == again.status_code == 400
        assert again.content == first.content and again["Idempotent-Replayed"] == "true"
        assert not Customer.objects.exists()


def _queries(api, count, start):
    body = {"create": [{"name": f"C{start + i}", "email": f"c{start + i}@example.com"} for i in range(count)]}
    with CaptureQueriesContext(connection) as queries:
        assert api.post(URL, body, format="json").status_code == 200
    return len(queries)


def test_a_batchs_queries_grow_by_the_same_amount_per_item(api):
    _queries(api, 1, 0)  # warm-up: tokens, content types
    five, ten, twenty = _queries(api, 5, 100), _queries(api, 10, 200), _queries(api, 20, 300)

    per_item = (ten - five) / 5
    assert per_item == (twenty - ten) / 10
    assert per_item <= 12
    assert Decimal(five) == Decimal(ten) - 5 * Decimal(per_item)


def test_an_empty_atomic_parameter_means_not_atomic(api):
    response = api.post(f"{URL}?atomic=", {"create": [{"name": "A"}, {"name": ""}]}, format="json")

    assert response.status_code == 207
    assert response.json()["data"]["atomic"] is False
    assert Customer.objects.count() == 1


@pytest.mark.django_db(transaction=True)
@pytest.mark.skipif(connection.vendor != "postgresql", reason="two writers at once: PostgreSQL (SQLite has one)")
def test_an_upsert_whose_record_another_request_creates_meanwhile_updates_it(api):
    # Both found no record with the key, and both create: the second meets the unique key and updates the
    # record the first made, as it would have had it come a moment later. (SQLite runs one writer at a time.)
    from django.db import connections
    from django.db.models.signals import pre_save
    from django.db.models.sql import InsertQuery

    def create_it_meanwhile(sender, instance, **kwargs):
        pre_save.disconnect(create_it_meanwhile, sender=Customer)
        first = Customer(name="First", external_id="ext-race", email="first@example.com")
        query = InsertQuery(Customer)
        query.insert_values([field for field in Customer._meta.concrete_fields if not field.primary_key], [first])
        other = connections.create_connection("default")
        try:
            with other.cursor() as cursor:
                for sql, params in query.get_compiler(connection=other).as_sql():
                    cursor.execute(sql, params)
        finally:
            other.close()

    pre_save.connect(create_it_meanwhile, sender=Customer)
    try:
        response = api.post(URL, {"upsert": [{"external_id": "ext-race", "name": "Second"}]}, format="json")
    finally:
        pre_save.disconnect(create_it_meanwhile, sender=Customer)

    assert response.status_code == 200, response.json()
    [result] = results(response)
    assert (result["status"], result["created"], result["data"]["name"]) == (200, False, "Second")
    assert list(Customer.objects.values_list("external_id", "name", "email")) == [
        ("ext-race", "Second", "first@example.com")
    ]
