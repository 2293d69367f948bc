"""The event log: one event per change, written in the change's transaction, on every write path."""

from datetime import timedelta

import pytest
from django.db import IntegrityError, connection, transaction
from django.utils import timezone
from huey.contrib.djhuey import HUEY

from core import events, maintenance
from core.models import Event
from core.tasks import dispatch_events, purge_expired, sweep_events
from customers.models import Customer
from customers.services import delete_customer, reassign_customers
from interactions.models import Interaction
from opportunities.models import Opportunity
from tests.concurrency import a_session_waits
from tests.factories import CustomerFactory, InteractionFactory, ManagerFactory, OpportunityFactory, UserFactory

pytestmark = pytest.mark.django_db


def types(**filters):
    return list(Event.objects.filter(**filters).order_by("id").values_list("type", flat=True))


class TestApiWrites:
    def test_create_writes_one_event_with_the_api_representation_who_and_request_id(self, api, user):
        response = api.post(
            "/api/interactions",
            {"customer_id": CustomerFactory().pk, "interaction_type": "call"},
            format="json",
            HTTP_X_REQUEST_ID="req-123",
        )
        assert response.status_code == 201
        created = response.json()["data"]
        event = Event.objects.get(type="interaction.created")
        assert (event.model, event.object_id, event.actor_id, event.request_id) == (
            "interactions.interaction",
            created["id"],
            user.pk,
            "req-123",
        )
        assert event.data == created
        assert event.changes["interaction_type"] == {"old": None, "new": "call"}

    def test_update_records_old_and_new_values_of_the_changed_fields_only(self, api):
        customer = CustomerFactory(name="Old", phone="1")
        response = api.put(f"/api/customers/{customer.pk}", {"name": "New", "phone": "1"}, format="json")
        assert response.status_code == 200
        event = Event.objects.get(type="customer.updated")
        assert event.changes == {"name": {"old": "Old", "new": "New"}}
        assert event.data["name"] == "New" and event.data["id"] == customer.pk
        assert event.data == {key: value for key, value in response.json()["data"].items() if key in event.data}

    def test_update_that_changes_nothing_writes_no_event(self, api):
        customer = CustomerFactory(name="Same")
        Event.objects.all().delete()
        assert api.put(f"/api/customers/{customer.pk}", {"name": "Same"}, format="json").status_code == 200
        assert not Event.objects.exists()

    def test_stage_change_writes_updated_and_stage_changed(self, api):
        opportunity = OpportunityFactory(stage=Opportunity.Stage.LEAD)
        api.put(f"/api/opportunities/{opportunity.pk}", {"stage": "proposal"}, format="json")
        assert types(object_id=opportunity.pk, model="opportunities.opportunity") == [
            "opportunity.created",
            "opportunity.updated",
            "opportunity.stage_changed",
        ]
        stage_changed = Event.objects.get(type="opportunity.stage_changed")
        assert stage_changed.changes["stage"] == {"old": "lead", "new": "proposal"}
        assert stage_changed.changes["probability"] == {"old": 10, "new": 40}
        api.put(f"/api/opportunities/{opportunity.pk}", {"title": "Renamed"}, format="json")
        assert types(type="opportunity.stage_changed") == ["opportunity.stage_changed"]

    def test_deleting_a_customer_writes_its_childrens_events_in_bulk_with_their_owner(self, api):
        rep = UserFactory()
        customer = CustomerFactory(owner=rep)
        interactions = InteractionFactory.create_batch(3, customer=customer)
        opportunity = OpportunityFactory(customer=customer)
        assert api.delete(f"/api/customers/{customer.pk}").status_code == 200
        deleted = Event.objects.filter(type__endswith=".deleted")
        assert sorted(deleted.values_list("model", "object_id")) == sorted(
            [("customers.customer", customer.pk), ("opportunities.opportunity", opportunity.pk)]
            + [("interactions.interaction", interaction.pk) for interaction in interactions]
        )
        assert set(deleted.values_list("owner_id", flat=True)) == {rep.pk}
        assert all(event.data is None and event.changes == {} for event in deleted)

    def test_child_deletion_events_cost_one_insert_per_table(self, api, django_assert_max_num_queries):
        small, large = CustomerFactory(), CustomerFactory()
        InteractionFactory(customer=small)
        InteractionFactory.create_batch(30, customer=large)
        with django_assert_max_num_queries(100) as small_queries:
            api.delete(f"/api/customers/{small.pk}")
        with django_assert_max_num_queries(len(small_queries)):
            api.delete(f"/api/customers/{large.pk}")
        assert Event.objects.filter(type="interaction.deleted").count() == 31


class TestOtherPaths:
    def test_shell_save_and_delete_write_events(self):
        customer = Customer(name="Shell")
        customer.save()
        customer.phone = "42"
        customer.save()
        pk = customer.pk
        customer.delete()
        assert types(object_id=pk, model="customers.customer") == [
            "customer.created",
            "customer.updated",
            "customer.deleted",
        ]
        assert Event.objects.get(type="customer.updated").changes == {"phone": {"old": None, "new": "42"}}

    def test_admin_form_with_inlines_writes_each_records_event_by_the_staff_user(self, admin_client, admin_user):
        data = {
            "name": "Inline buyer",
            "status": Customer.Status.PROSPECT,
            "interactions-TOTAL_FORMS": "1",
            "interactions-INITIAL_FORMS": "0",
            "interactions-0-occurred_at_0": "2025-03-01",
            "interactions-0-occurred_at_1": "10:00:00",
            "interactions-0-interaction_type": Interaction.Type.MEETING,
            "opportunities-TOTAL_FORMS": "1",
            "opportunities-INITIAL_FORMS": "0",
            "tasks-TOTAL_FORMS": "0",
            "tasks-INITIAL_FORMS": "0",
            "opportunities-0-title": "First order",
            "opportunities-0-value": "1200.00",
            "opportunities-0-stage": Opportunity.Stage.PROPOSAL,
        }
        response = admin_client.post("/admin/customers/customer/add/", data)
        assert response.status_code == 302
        assert types() == ["customer.created", "interaction.created", "opportunity.created"]
        assert set(Event.objects.values_list("actor_id", flat=True)) == {admin_user.pk}
        customer = Customer.objects.get(name="Inline buyer")
        response = admin_client.post(
            f"/admin/customers/customer/{customer.pk}/change/",
            {
                **data,
                "name": "Renamed",
                "interactions-TOTAL_FORMS": "0",
                "opportunities-TOTAL_FORMS": "0",
            },
        )
        assert response.status_code == 302
        assert Event.objects.get(type="customer.updated").changes["name"] == {"old": "Inline buyer", "new": "Renamed"}

    def test_reassign_writes_one_update_per_customer_in_bulk(self):
        old, new = UserFactory(), UserFactory()
        customers = CustomerFactory.create_batch(3, owner=old)
        CustomerFactory(owner=new)
        result = reassign_customers(Customer.objects.filter(owner=old), new)
        assert result["customers"] == 3
        updated = Event.objects.filter(type="customer.updated")
        assert sorted(updated.values_list("object_id", flat=True)) == sorted(c.pk for c in customers)
        for event in updated:
            assert event.changes == {"owner_id": {"old": old.pk, "new": new.pk}}
            assert event.owner_id == new.pk and event.data["owner_id"] == new.pk

    def test_service_delete_writes_every_deletion(self):
        customer = CustomerFactory()
        InteractionFactory(customer=customer)
        delete_customer(customer)
        assert sorted(types(type__endswith="deleted")) == ["customer.deleted", "interaction.deleted"]


class TestTransactions:
    def test_rolled_back_write_leaves_no_event(self):
        with pytest.raises(RuntimeError), transaction.atomic():
            CustomerFactory(name="Phantom")
            assert Event.objects.filter(type="customer.created").exists()
            raise RuntimeError("the write fails after its event was staged")
        assert not Customer.objects.filter(name="Phantom").exists()
        assert not Event.objects.exists()

    def test_a_write_failing_after_its_event_leaves_neither(self):
        CustomerFactory(email="taken@example.com")
        before = Event.objects.count()
        with pytest.raises(IntegrityError), transaction.atomic():
            Customer.objects.create(name="First")
            Customer.objects.create(name="Clash", email="TAKEN@example.com")
        assert Event.objects.count() == before
        assert not Customer.objects.filter(name="First").exists()


@pytest.mark.django_db(transaction=True)
class TestCommits:
    def test_committed_save_outside_a_transaction_has_its_event_and_is_dispatched(self):
        customer = Customer.objects.create(name="Committed")
        event = Event.objects.get(object_id=customer.pk, type="customer.created")
        # The dispatch job ran after the commit (inline in tests: CRM_QUEUE_IMMEDIATE).
        assert event.dispatched_at is not None

    def test_save_whose_event_cannot_be_written_is_not_saved(self):
        quote = connection.ops.quote_name
        with connection.cursor() as cursor:
            cursor.execute(f"ALTER TABLE {quote('core_event')} RENAME TO {quote('core_event_away')}")
        try:
            with pytest.raises(Exception):  # noqa: B017 - the backend's own "no such table" error
                Customer(name="Eventless").save()
        finally:
            with connection.cursor() as cursor:
                cursor.execute(f"ALTER TABLE {quote('core_event_away')} RENAME TO {quote('core_event')}")
        assert not Customer.objects.filter(name="Eventless").exists()

    def test_dispatchers_get_committed_events_only_after_the_commit(self):
        seen = []
        events.register_dispatcher(seen.extend)
        try:
            with transaction.atomic():
                customer = Customer.objects.create(name="Later")
                assert seen == []
            assert [(event.type, event.object_id) for event in seen] == [("customer.created", customer.pk)]
            with pytest.raises(RuntimeError), transaction.atomic():
                Customer.objects.create(name="Never")
                raise RuntimeError
            assert len(seen) == 1
        finally:
            events.unregister_dispatcher(seen.extend)

    def test_sweep_dispatches_events_left_behind(self):
        customer = CustomerFactory()
        Event.objects.update(dispatched_at=None, created_at=timezone.now() - timedelta(minutes=5))
        sweep_events.call_local()
        assert Event.objects.get(object_id=customer.pk).dispatched_at is not None


class TestJobs:
    def test_purge_drops_events_past_retention_keys_and_tokens(self, settings):
        settings.EVENT_RETENTION_DAYS = 30
        old, recent = CustomerFactory(), CustomerFactory()
        Event.objects.filter(object_id=old.pk).update(created_at=timezone.now() - timedelta(days=31))
        counts = purge_expired.call_local()
        assert counts["events"] == 1
        assert list(Event.objects.values_list("object_id", flat=True)) == [recent.pk]

    def test_purge_tokens_removes_only_expired_tokens(self):
        from knox.models import get_token_model

        tokens = get_token_model().objects
        user = UserFactory()
        expired, _ = tokens.create(user, expiry=timedelta(seconds=-1))
        live, _ = tokens.create(user)
        assert maintenance.purge_expired_tokens() == 1
        assert list(tokens.values_list("pk", flat=True)) == [live.pk]

    def test_periodic_jobs_are_scheduled(self):
        due = {task.name for task in HUEY.read_periodic(timezone.now().replace(hour=3, minute=17))}
        assert {"purge_expired", "sweep_events"} <= due
        due = {task.name for task in HUEY.read_periodic(timezone.now().replace(hour=3, minute=18))}
        assert "purge_expired" not in due and "sweep_events" in due

    def test_dispatch_job_retries_with_backoff(self):
        assert (dispatch_events.retries, dispatch_events.retry_delay) == (8, 2)
        assert dispatch_events.task_class.default_retry_backoff == 2


class TestFeed:
    def test_feed_is_oldest_first_and_continues_after_the_cursor(self, api):
        customers = [CustomerFactory() for _ in range(5)]
        first = api.get("/api/events", {"page_size": 2}).json()
        assert [e["object_id"] for e in first["data"]] == [c.pk for c in customers[:2]]
        assert first["meta"]["next"] is not None
        cursor = first["meta"]["next_cursor"]
        rest = api.get("/api/events", {"after": cursor}).json()
        assert [e["object_id"] for e in rest["data"]] == [c.pk for c in customers[2:]]
        assert rest["meta"]["next"] is None
        # Nothing new yet: an empty page that keeps the position.
        end = api.get("/api/events", {"after": rest["meta"]["next_cursor"]}).json()
        assert end["data"] == [] and end["meta"]["next_cursor"] == rest["meta"]["next_cursor"]
        CustomerFactory(name="Later")
        assert [
            e["data"]["name"] for e in api.get("/api/events", {"after": end["meta"]["next_cursor"]}).json()["data"]
        ] == ["Later"]

    def test_type_filter(self, api):
        customer = CustomerFactory()
        InteractionFactory(customer=customer)
        data = api.get("/api/events", {"type": ["interaction.created"]}).json()["data"]
        assert [event["type"] for event in data] == ["interaction.created"]
        both = api.get("/api/events?type=interaction.created&type=customer.created").json()["data"]
        assert len(both) == 2

    def test_empty_type_is_no_filter(self, api):
        CustomerFactory()
        assert len(api.get("/api/events?type=").json()["data"]) == 1

    @pytest.mark.parametrize("query", [{"after": "x"}, {"after": "-1"}, {"after": str(2**63)}, {"type": "nope"}])
    def test_bad_parameters_are_a_400(self, api, query):
        response = api.get("/api/events", query)
        assert response.status_code == 400 and response.json()["success"] is False

    def test_rep_keeps_seeing_events_of_their_deleted_customer(self, user):
        from django.contrib.auth.models import Group
        from knox.models import get_token_model
        from rest_framework.test import APIClient

        rep = UserFactory()
        rep.groups.add(Group.objects.get(name="Sales rep"))
        mine, other = CustomerFactory(owner=rep), CustomerFactory(owner=ManagerFactory())
        mine_pk = mine.pk
        delete_customer(mine)
        client = APIClient()
        client.credentials(HTTP_AUTHORIZATION=f"Bearer {get_token_model().objects.create(rep)[1]}")
        feed = client.get("/api/events").json()["data"]
        assert [(e["type"], e["object_id"]) for e in feed] == [
            ("customer.created", mine_pk),
            ("customer.deleted", mine_pk),
        ]
        assert other.pk not in [e["object_id"] for e in feed]

    def test_feed_query_count_stays_constant(self, api, django_assert_num_queries):
        # token, (PostgreSQL: the relay placing what has committed), page
        expected = 3 if connection.vendor == "postgresql" else 2
        CustomerFactory.create_batch(3)
        with django_assert_num_queries(expected):
            api.get("/api/events")
        CustomerFactory.create_batch(30)
        with django_assert_num_queries(expected):
            api.get("/api/events")

    def test_cursor_is_the_position_and_positions_follow_the_ids_of_one_writer(self, api):
        customers = CustomerFactory.create_batch(3)
        served = api.get("/api/events").json()
        placed = list(Event.objects.order_by("id").values_list("id", "position"))
        assert all(position is not None for _, position in placed)
        assert [position for _, position in placed] == sorted(position for _, position in placed)
        assert [e["object_id"] for e in served["data"]] == [c.pk for c in customers]
        assert served["meta"]["next_cursor"] == str(placed[-1][1])
        if connection.vendor == "sqlite":
            # One writer at a time: the id is the position, as every cursor before positions was.
            assert all(pk == position for pk, position in placed)


@pytest.mark.django_db(transaction=True)
def test_feed_serves_an_event_of_a_long_transaction_that_commits_after_a_later_one(api):
    """A transaction that took a lower event id and commits late: a client following the feed still gets it.

    Positions are given in commit order (``core.events.relay``): the shorter, later write is served
    as soon as it commits, the long one once it commits, after it; the dispatchers get them in that
    order too. On SQLite one transaction writes at a time, so the late writer holds the others back
    instead; ids are in commit order there.
    """
    import threading

    from django.db import connections

    if connection.vendor != "postgresql":
        # SQLite: the second writer would wait for the first; nothing to interleave.
        pytest.skip("SQLite serialises writing transactions: event ids are in commit order")
    CustomerFactory(name="Before")
    start = api.get("/api/events").json()["meta"]["next_cursor"]
    written, release, failed = threading.Event(), threading.Event(), []
    dispatched = []

    def record(batch):
        dispatched.extend(event.data["name"] for event in batch)

    def long_transaction():
        try:
            with transaction.atomic():
                CustomerFactory(name="Long")  # its event takes the next id now...
                written.set()
                release.wait(30)  # ...and commits only after the next customer's
        except Exception as error:  # the test's assertions below report it
            failed.append(error)
            written.set()
        finally:
            connections.close_all()

    events.register_dispatcher(record)
    thread = threading.Thread(target=long_transaction)
    thread.start()
    try:
        assert written.wait(30) and not failed, failed
        CustomerFactory(name="Short")  # a higher id, committed first
        served = api.get("/api/events", {"after": start}).json()
        # The committed event is served at once; the running transaction's is not there yet.
        assert [event["data"]["name"] for event in served["data"]] == ["Short"]
        cursor = served["meta"]["next_cursor"]
    finally:
        release.set()
        thread.join(30)
        events.unregister_dispatcher(record)
    assert not thread.is_alive() and not failed, failed
    # The client continues from where it was: the late event comes next, though its id is lower.
    served = api.get("/api/events", {"after": cursor}).json()
    assert [event["data"]["name"] for event in served["data"]] == ["Long"]
    assert api.get("/api/events", {"after": served["meta"]["next_cursor"]}).json()["data"] == []
    everything = api.get("/api/events", {"after": start}).json()["data"]
    assert [event["data"]["name"] for event in everything] == ["Short", "Long"]
    short_id, long_id = (event["id"] for event in everything)
    assert long_id < short_id
    assert dispatched == ["Short", "Long"]


@pytest.mark.django_db(transaction=True)
def test_feed_keeps_the_order_of_changes_to_one_record_whatever_the_transactions_ids(api):
    """Two updates of one customer, the second waiting for the first's row lock: served in that order.

    The second transaction wrote (and so took its transaction id) before the first did: ordering the
    feed by transaction id would serve its update first, and a client replaying the feed would end on
    the older state. Positions follow commits.
    """
    import threading

    from django.db import connections

    if connection.vendor != "postgresql":
        pytest.skip("SQLite serialises writing transactions: event ids are in commit order")
    customer = CustomerFactory(name="Zero")
    start = api.get("/api/events").json()["meta"]["next_cursor"]
    began, locked, failed, xids = threading.Event(), threading.Event(), [], {}

    def second():
        try:
            with transaction.atomic():
                CustomerFactory(name="Elsewhere")  # a write: this transaction has its id now
                xids["second"] = _transaction_id()
                began.set()
                locked.wait(30)
                row = Customer.objects.select_for_update().get(pk=customer.pk)  # waits for the first
                row.name = "Two"
                row.save()
        except Exception as error:
            failed.append(error)
        finally:
            connections.close_all()

    thread = threading.Thread(target=second)
    thread.start()
    try:
        assert began.wait(30)
        with transaction.atomic():
            row = Customer.objects.select_for_update().get(pk=customer.pk)
            locked.set()
            row.name = "One"
            row.save()
            xids["first"] = _transaction_id()
            # Let the second transaction reach the lock before this one commits.
            assert a_session_waits()
    finally:
        locked.set()
        thread.join(30)
    assert not thread.is_alive() and not failed, failed
    assert xids["second"] < xids["first"]  # what ordering by transaction id would get wrong
    served = api.get("/api/events", {"after": start}).json()["data"]
    updates = [event["data"]["name"] for event in served if event["type"] == "customer.updated"]
    assert updates == ["One", "Two"]
    assert Customer.objects.get(pk=customer.pk).name == "Two"


def _transaction_id():
    from django.db import connections

    with connections["default"].cursor() as cursor:
        cursor.execute("SELECT pg_current_xact_id()::text::bigint")
        return cursor.fetchone()[0]


@pytest.mark.django_db(transaction=True)
def test_relays_take_turns(api):
    """While one relay holds its turn, a reader's relay places nothing and the reader is served what was placed."""
    import threading

    from django.db import connections

    if connection.vendor != "postgresql":
        pytest.skip("SQLite gives positions on insert, with no relay")
    CustomerFactory(name="Placed")
    assert [e["data"]["name"] for e in api.get("/api/events").json()["data"]] == ["Placed"]
    holding, done, failed = threading.Event(), threading.Event(), []

    def hold_the_turn():
        try:
            with transaction.atomic():
                events.relay(wait=True)
                holding.set()
                done.wait(30)
        except Exception as error:
            failed.append(error)
            holding.set()
        finally:
            connections.close_all()

    thread = threading.Thread(target=hold_the_turn)
    thread.start()
    try:
        assert holding.wait(30) and not failed, failed
        with transaction.atomic():
            Customer.objects.create(name="Waiting")
            # Inside its transaction a relay would place this event; the turn is taken, so it does not,
            # and the feed (read in the same transaction) serves what was placed before.
            assert events.relay() == 0
            assert Event.objects.get(type="customer.created", data__name="Waiting").position is None
            assert [e["data"]["name"] for e in api.get("/api/events").json()["data"]] == ["Placed"]
            done.set()
            thread.join(30)
    finally:
        done.set()
        thread.join(30)
    assert not thread.is_alive() and not failed, failed
    assert [e["data"]["name"] for e in api.get("/api/events").json()["data"]] == ["Placed", "Waiting"]
