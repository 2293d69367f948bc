import datetime
import zoneinfo

import pytest
from django.utils import timezone

from core.models import Event, UserPreferences
from interactions.models import Interaction
from tasks.models import Task
from tests.factories import CustomerFactory, OpportunityFactory, TaskFactory

from .conftest import client_of, member

URL = "/api/tasks"
pytestmark = pytest.mark.django_db


def test_create_defaults_to_the_creator_as_assignee(rep, rep_api):
    customer = CustomerFactory(owner=rep)
    response = rep_api.post(URL, {"customer_id": customer.pk, "title": " Call back "}, format="json")
    assert response.status_code == 201, response.content
    data = response.json()["data"]
    assert data["title"] == "Call back"
    assert data["assignee_id"] == data["created_by_id"] == rep.pk
    assert (data["kind"], data["priority"], data["done_at"], data["due_at"]) == ("todo", "normal", None, None)
    assert data["reminder_lead_minutes"] is None
    assert response["ETag"]
    assert Event.objects.filter(type="task.created", object_id=data["id"], owner=rep).count() == 1
    assert Task.history.filter(id=data["id"], history_type="+").count() == 1


def test_a_date_alone_is_a_date_only_task_at_midnight_in_the_assignees_zone(rep, rep_api):
    UserPreferences.objects.create(user=rep, time_zone="Asia/Shanghai")
    customer = CustomerFactory(owner=rep)
    data = rep_api.post(
        URL, {"customer_id": customer.pk, "title": "Renewal", "due_at": "2026-03-10"}, format="json"
    ).json()["data"]
    assert data["due_is_date_only"] is True
    assert data["due_at"] == "2026-03-09T16:00:00Z"
    # A date and time with due_is_date_only keeps only its day (in the assignee's zone).
    data = rep_api.patch(
        f"{URL}/{data['id']}", {"due_at": "2026-03-10T20:00:00Z", "due_is_date_only": True}, format="json"
    ).json()["data"]
    assert data["due_at"] == "2026-03-10T16:00:00Z" and data["due_is_date_only"] is True
    # A date and time alone is a timed task again.
    data = rep_api.patch(f"{URL}/{data['id']}", {"due_at": "2026-03-10T09:30:00+08:00"}, format="json").json()["data"]
    assert data["due_at"] == "2026-03-10T01:30:00Z" and data["due_is_date_only"] is False


@pytest.mark.parametrize("sent", ["2026-03-10", "20260310", "2026-W11-2", "2026W112", " 2026-03-10 "])
def test_a_date_in_any_iso_form_is_a_date_only_task_not_midnight_utc(rep, rep_api, sent):
    UserPreferences.objects.create(user=rep, time_zone="America/New_York")
    customer = CustomerFactory(owner=rep)
    response = rep_api.post(URL, {"customer_id": customer.pk, "title": "Renewal", "due_at": sent}, format="json")
    data = response.json()["data"]
    # The 10th of March at 00:00 in New York (EDT from the 8th), not 00:00 UTC: 19:00 on the 9th there.
    assert (data["due_at"], data["due_is_date_only"]) == ("2026-03-10T04:00:00Z", True)
    assert Task.objects.get().due_date == datetime.date(2026, 3, 10)


@pytest.mark.parametrize(
    ("payload", "field"),
    [
        ({}, "title"),
        ({"title": "   "}, "title"),
        ({"title": 12}, "title"),
        ({"title": "x" * 201}, "title"),
        ({"title": "a\x00b"}, "title"),
        ({"customer_id": None}, "customer_id"),
        ({"customer_id": "1"}, "customer_id"),
        ({"customer_id": 999999}, "customer_id"),
        ({"customer_id": 2**70}, "customer_id"),
        ({"kind": "fax"}, "kind"),
        ({"priority": "urgent"}, "priority"),
        ({"due_at": "tomorrow"}, "due_at"),
        ({"due_at": "2026-13-01"}, "due_at"),
        ({"due_at": "9999-01-01T00:00:00Z"}, "due_at"),
        ({"due_at": "0001-01-01"}, "due_at"),
        ({"due_at": 5}, "due_at"),
        ({"notes": "x" * 20_001}, "notes"),
        ({"reminder_lead_minutes": -1}, "reminder_lead_minutes"),
        ({"reminder_lead_minutes": "15"}, "reminder_lead_minutes"),
        ({"reminder_lead_minutes": 10**9}, "reminder_lead_minutes"),
        ({"assignee_id": 999999}, "assignee_id"),
        ({"opportunity_id": 999999}, "opportunity_id"),
        ({"due_at": "2026-03-10", "due_is_date_only": "yes"}, "due_is_date_only"),
        ({"due_at": "2026-03-10", "due_is_date_only": "true"}, "due_is_date_only"),
        ({"due_at": "2026-03-10", "due_is_date_only": 1}, "due_is_date_only"),
    ],
)
def test_create_rejects_invalid_input(rep, rep_api, payload, field):
    customer = CustomerFactory(owner=rep)
    body = {"customer_id": customer.pk, "title": "T", **payload}
    if not payload.get("title", "T"):
        body.pop("title")
    if payload == {}:
        body.pop("title")
    response = rep_api.post(URL, body, format="json")
    assert response.status_code == 400, response.content
    assert field in response.json()["error"]["fields"]
    assert not Task.objects.exists()


@pytest.mark.parametrize("sent", ["yes", "true", "on", 1, 0])
def test_an_update_with_a_boolean_that_is_not_true_or_false_changes_nothing(rep, rep_api, sent):
    task = TaskFactory(customer=CustomerFactory(owner=rep), assignee=rep, title="Call", due_at=None)
    entries, events = task.history.count(), Event.objects.count()

    response = rep_api.patch(
        f"{URL}/{task.pk}", {"title": "Renamed", "due_at": "2026-03-10", "due_is_date_only": sent}, format="json"
    )

    assert response.status_code == 400, response.content
    assert response.json()["error"]["fields"] == {"due_is_date_only": ["Must be a valid boolean."]}
    task.refresh_from_db()
    assert (task.title, task.due_at, task.due_is_date_only) == ("Call", None, False)
    assert (task.history.count(), Event.objects.count()) == (entries, events)


def test_malformed_json_is_a_400(rep_api):
    response = rep_api.generic("POST", URL, "{not json", content_type="application/json")
    assert response.status_code == 400 and response.json()["success"] is False


def test_the_opportunity_must_belong_to_the_customer(rep, rep_api):
    mine, other = CustomerFactory(owner=rep), CustomerFactory(owner=rep)
    deal = OpportunityFactory(customer=other)
    response = rep_api.post(URL, {"customer_id": mine.pk, "title": "T", "opportunity_id": deal.pk}, format="json")
    assert response.status_code == 400 and "opportunity_id" in response.json()["error"]["fields"]
    task = TaskFactory(customer=mine, assignee=rep)
    moved = rep_api.patch(f"{URL}/{task.pk}", {"opportunity_id": deal.pk}, format="json")
    assert moved.status_code == 400 and "opportunity_id" in moved.json()["error"]["fields"]
    ok = rep_api.patch(f"{URL}/{task.pk}", {"customer_id": other.pk, "opportunity_id": deal.pk}, format="json")
    assert ok.status_code == 200 and ok.json()["data"]["opportunity_id"] == deal.pk


@pytest.mark.parametrize(
    ("kind", "accepted"),
    [("manager", True), ("other_rep", True), ("read_only", False), ("no_role", False), ("inactive_rep", False)],
)
def test_assignee_is_an_active_manager_or_rep(rep, rep_api, kind, accepted):
    groups = {
        "manager": "Sales manager",
        "other_rep": "Sales rep",
        "read_only": "Read-only",
        "inactive_rep": "Sales rep",
    }
    assignee = member(kind, groups.get(kind), is_active=kind != "inactive_rep")
    customer = CustomerFactory(owner=rep)
    response = rep_api.post(URL, {"customer_id": customer.pk, "title": "T", "assignee_id": assignee.pk}, format="json")
    assert response.status_code == (201 if accepted else 400), response.content
    if accepted:
        # The assignee sees the task (not the customer).
        assignee_api = client_of(assignee)
        assert assignee_api.get(f"{URL}/{response.json()['data']['id']}").status_code == 200
        if kind == "other_rep":
            assert assignee_api.get(f"/api/customers/{customer.pk}").status_code == 404


def test_a_rep_cannot_file_a_task_on_another_reps_customer(rep_api, other_rep):
    theirs = CustomerFactory(owner=other_rep)
    response = rep_api.post(URL, {"customer_id": theirs.pk, "title": "T"}, format="json")
    assert response.status_code == 400 and "customer_id" in response.json()["error"]["fields"]


def test_assignee_of_a_task_on_someone_elses_customer_cannot_move_it_to_that_customer(rep, rep_api, other_rep):
    task = TaskFactory(customer=CustomerFactory(owner=other_rep), assignee=rep)
    mine = CustomerFactory(owner=rep)
    assert rep_api.patch(f"{URL}/{task.pk}", {"due_at": "2030-01-01"}, format="json").status_code == 200
    response = rep_api.patch(f"{URL}/{task.pk}", {"customer_id": mine.pk}, format="json")
    assert response.status_code == 200  # to a customer of their own book: allowed
    task.refresh_from_db()
    assert task.customer_id == mine.pk


class TestCompleteAndReopen:
    def test_complete_then_reopen(self, rep, rep_api):
        task = TaskFactory(customer=CustomerFactory(owner=rep), assignee=rep)
        response = rep_api.post(f"{URL}/{task.pk}/complete", {"outcome": "Agreed a demo"}, format="json")
        assert response.status_code == 200, response.content
        data = response.json()["data"]
        assert data["interaction"] is None
        assert data["task"]["done_at"] and data["task"]["outcome"] == "Agreed a demo"
        assert response["ETag"] == rep_api.get(f"{URL}/{task.pk}")["ETag"]
        assert rep_api.post(f"{URL}/{task.pk}/complete", {}, format="json").status_code == 409
        reopened = rep_api.post(f"{URL}/{task.pk}/reopen")
        assert reopened.status_code == 200 and reopened.json()["data"]["done_at"] is None
        assert rep_api.post(f"{URL}/{task.pk}/reopen").status_code == 409
        types = list(Event.objects.filter(object_id=task.pk, model="tasks.task").values_list("type", flat=True))
        assert types == ["task.created", "task.updated", "task.completed", "task.updated", "task.reopened"]

    def test_complete_logs_an_interaction_in_one_step(self, rep, rep_api):
        customer = CustomerFactory(owner=rep)
        task = TaskFactory(customer=customer, assignee=rep, kind=Task.Kind.MEETING)
        response = rep_api.post(
            f"{URL}/{task.pk}/complete", {"outcome": "签了意向书", "log_interaction": True}, format="json"
        )
        interaction = response.json()["data"]["interaction"]
        assert interaction["interaction_type"] == "meeting" and interaction["notes"] == "签了意向书"
        assert interaction["customer_id"] == customer.pk and interaction["created_by_id"] == rep.pk
        stored = Interaction.objects.get(pk=interaction["id"])
        assert stored.customer_id == customer.pk
        assert Event.objects.filter(type="interaction.created", object_id=stored.pk).count() == 1
        timeline = rep_api.get(f"/api/customers/{customer.pk}/timeline").json()["data"]
        assert [entry["type"] for entry in timeline][:2] == ["task_completed", "interaction"] or {
            entry["type"] for entry in timeline
        } >= {"task_completed", "task_created", "interaction"}

    def test_a_bad_interaction_rolls_the_completion_back(self, rep, rep_api):
        task = TaskFactory(customer=CustomerFactory(owner=rep), assignee=rep)
        response = rep_api.post(
            f"{URL}/{task.pk}/complete",
            {"log_interaction": True, "occurred_at": "9999-01-01T00:00:00Z"},
            format="json",
        )
        assert response.status_code == 400
        task.refresh_from_db()
        assert task.done_at is None and not Interaction.objects.exists()

    @pytest.mark.parametrize(
        "body",
        [
            {"interaction_type": "fax"},
            {"log_interaction": "maybe"},
            {"outcome": "x" * 20_001},
            {"outcome": "a\x00b"},
            {"surprise": 1},
            [1, 2],
        ],
    )
    def test_complete_rejects_bad_bodies(self, rep, rep_api, body):
        task = TaskFactory(customer=CustomerFactory(owner=rep), assignee=rep)
        response = rep_api.post(f"{URL}/{task.pk}/complete", body, format="json")
        assert response.status_code == 400 and response.json()["success"] is False
        task.refresh_from_db()
        assert task.done_at is None

    @pytest.mark.parametrize(
        ("body", "field", "message"),
        [
            ({"outcome": 12}, "outcome", "Not a valid string."),
            ({"log_interaction": "true"}, "log_interaction", "Must be a valid boolean."),
            ({"log_interaction": 1}, "log_interaction", "Must be a valid boolean."),
            ({"outcome": "Agreed", "log_interaction": "yes"}, "log_interaction", "Must be a valid boolean."),
        ],
    )
    def test_complete_refuses_values_of_the_wrong_json_type_and_writes_nothing(
        self, rep, rep_api, body, field, message
    ):
        task = TaskFactory(customer=CustomerFactory(owner=rep), assignee=rep)
        entries, events = task.history.count(), Event.objects.count()

        response = rep_api.post(f"{URL}/{task.pk}/complete", body, format="json")

        assert response.status_code == 400, response.content
        assert response.json()["success"] is False
        assert response.json()["error"]["fields"] == {field: [message]}
        task.refresh_from_db()
        assert (task.done_at, task.outcome) == (None, "")
        assert (task.history.count(), Event.objects.count()) == (entries, events)
        assert not Interaction.objects.exists()

    def test_complete_refuses_a_null_body_and_takes_none(self, rep, rep_api):
        """A JSON ``null`` is not the object the schema asks for; a request without a body is."""
        task = TaskFactory(customer=CustomerFactory(owner=rep), assignee=rep)
        response = rep_api.post(f"{URL}/{task.pk}/complete", "null", content_type="application/json")
        assert response.status_code == 400 and response.json()["success"] is False
        task.refresh_from_db()
        assert task.done_at is None
        assert rep_api.post(f"{URL}/{task.pk}/complete").status_code == 200
        task.refresh_from_db()
        assert task.done_at is not None

    def test_complete_honours_if_match(self, rep, rep_api):
        task = TaskFactory(customer=CustomerFactory(owner=rep), assignee=rep)
        etag = rep_api.get(f"{URL}/{task.pk}")["ETag"]
        rep_api.patch(f"{URL}/{task.pk}", {"title": "Changed"}, format="json")
        stale = rep_api.post(f"{URL}/{task.pk}/complete", {}, format="json", HTTP_IF_MATCH=etag)
        assert stale.status_code == 412
        fresh = rep_api.get(f"{URL}/{task.pk}")["ETag"]
        assert rep_api.post(f"{URL}/{task.pk}/complete", {}, format="json", HTTP_IF_MATCH=fresh).status_code == 200

    def test_complete_is_idempotent_with_a_key(self, rep, rep_api):
        task = TaskFactory(customer=CustomerFactory(owner=rep), assignee=rep)
        first = rep_api.post(
            f"{URL}/{task.pk}/complete", {"log_interaction": True}, format="json", HTTP_IDEMPOTENCY_KEY="k-1"
        )
        again = rep_api.post(
            f"{URL}/{task.pk}/complete", {"log_interaction": True}, format="json", HTTP_IDEMPOTENCY_KEY="k-1"
        )
        assert first.status_code == again.status_code == 200
        assert again["Idempotent-Replayed"] == "true"
        assert Interaction.objects.count() == 1


class TestFilters:
    def test_assignee_done_customer_and_opportunity(self, rep, rep_api, other_rep):
        customer = CustomerFactory(owner=rep)
        deal = OpportunityFactory(customer=customer)
        mine = TaskFactory(customer=customer, assignee=rep, opportunity=deal)
        theirs = TaskFactory(customer=customer, assignee=other_rep)
        done = TaskFactory(customer=customer, assignee=rep, done_at=timezone.now())

        def ids(**params):
            response = rep_api.get(URL, params)
            assert response.status_code == 200, response.content
            return {row["id"] for row in response.json()["data"]}

        assert ids() == {mine.pk, theirs.pk, done.pk}
        assert ids(assignee="me") == {mine.pk, done.pk}
        assert ids(assignee=other_rep.pk) == {theirs.pk}
        assert ids(done="true") == {done.pk}
        assert ids(done="false") == {mine.pk, theirs.pk}
        assert ids(opportunity_id=deal.pk) == {mine.pk}
        assert ids(customer_id=customer.pk) == {mine.pk, theirs.pk, done.pk}

    @pytest.mark.parametrize(
        "params",
        [
            {"assignee": "someone"},
            {"done": "perhaps"},
            {"due": "soon"},
            {"due_before": "yesterday"},
            {"customer_id": "x"},
            {"opportunity_id": "-3"},
        ],
    )
    def test_bad_filters_are_400s(self, rep_api, params):
        response = rep_api.get(URL, params)
        assert response.status_code == 400 and response.json()["success"] is False

    def test_due_before_and_after(self, rep, rep_api):
        customer = CustomerFactory(owner=rep)
        early = TaskFactory(customer=customer, assignee=rep, due_at=datetime.datetime(2026, 1, 1, tzinfo=datetime.UTC))
        late = TaskFactory(customer=customer, assignee=rep, due_at=datetime.datetime(2026, 6, 1, tzinfo=datetime.UTC))
        rows = rep_api.get(URL, {"due_after": "2026-03-01T00:00:00Z"}).json()["data"]
        assert [row["id"] for row in rows] == [late.pk]
        rows = rep_api.get(URL, {"due_before": "2026-03-01T00:00:00Z"}).json()["data"]
        assert [row["id"] for row in rows] == [early.pk]


def test_snooze_is_a_patch_of_due_at(rep, rep_api):
    task = TaskFactory(customer=CustomerFactory(owner=rep), assignee=rep, due_at=timezone.now())
    later = (task.due_at + datetime.timedelta(days=1)).isoformat()
    response = rep_api.patch(f"{URL}/{task.pk}", {"due_at": later}, format="json")
    assert response.status_code == 200
    task.refresh_from_db()
    assert task.due_at.isoformat() == later


class TestPreferences:
    def test_me_shows_and_sets_preferences(self, rep, rep_api):
        data = rep_api.get("/api/auth/me").json()["data"]
        assert (data["time_zone"], data["reminder_lead_minutes"], data["daily_digest"]) == ("UTC", 15, False)
        assert not UserPreferences.objects.exists()  # created on first change only
        response = rep_api.patch(
            "/api/auth/me",
            {"time_zone": "Asia/Shanghai", "daily_digest": True, "reminder_lead_minutes": 30},
            format="json",
        )
        assert response.status_code == 200, response.content
        data = response.json()["data"]
        assert (data["time_zone"], data["reminder_lead_minutes"], data["daily_digest"]) == ("Asia/Shanghai", 30, True)
        assert data["username"] == "rep" and data["role"] == "rep"
        assert rep_api.get("/api/auth/me").json()["data"]["time_zone"] == "Asia/Shanghai"

    @pytest.mark.parametrize(
        "body",
        [
            {"time_zone": "Mars/Olympus"},
            {"time_zone": "../../etc/passwd"},
            {"time_zone": "Asia/Shang\x00hai"},
            {"time_zone": "x" * 10_000},
            # Files of the zone database that name no place: the server's own zone, a leap-second clock, none.
            {"time_zone": "localtime"},
            {"time_zone": "right/Asia/Shanghai"},
            {"time_zone": "posix/Asia/Shanghai"},
            {"time_zone": "posixrules"},
            {"time_zone": "Factory"},
            {"time_zone": 8},
            {"reminder_lead_minutes": -5},
            {"reminder_lead_minutes": "15"},
            {"daily_digest": "perhaps"},
            {"username": "root"},
        ],
    )
    def test_bad_preferences_are_400s(self, rep_api, body):
        response = rep_api.patch("/api/auth/me", body, format="json")
        assert response.status_code == 400, response.content
        assert response.json()["success"] is False
        assert not UserPreferences.objects.exists()

    @pytest.mark.parametrize("sent", ["yes", "true", "on", 1, 0])
    def test_the_daily_digest_takes_only_true_or_false(self, rep, rep_api, sent):
        UserPreferences.objects.create(user=rep, time_zone="Asia/Shanghai")

        response = rep_api.patch("/api/auth/me", {"time_zone": "Europe/Paris", "daily_digest": sent}, format="json")

        assert response.status_code == 400, response.content
        assert response.json()["error"]["fields"] == {"daily_digest": ["Must be a valid boolean."]}
        stored = UserPreferences.objects.get(user=rep)
        assert (stored.time_zone, stored.daily_digest) == ("Asia/Shanghai", False)


class TestQueryCounts:
    @pytest.mark.parametrize("size", [2, 20])
    def test_list_and_detail_stay_constant(self, rep, rep_api, django_assert_num_queries, size):
        customer = CustomerFactory(owner=rep)
        tasks = TaskFactory.create_batch(size, customer=customer, assignee=rep)
        # Token (with the role), the page with its count.
        with django_assert_num_queries(2):
            assert rep_api.get(URL, {"page_size": 100}).status_code == 200
        with django_assert_num_queries(4):  # and the preferences and the zones in use, for "today"
            assert rep_api.get(URL, {"due": "today"}).status_code == 200
        with django_assert_num_queries(2):
            assert rep_api.get(f"{URL}/{tasks[0].pk}").status_code == 200

    @pytest.mark.parametrize("size", [1, 15])
    def test_opportunity_list_with_next_task_stays_constant(self, api, django_assert_num_queries, size):
        for _ in range(size):
            deal = OpportunityFactory()
            TaskFactory.create_batch(2, customer=deal.customer, opportunity=deal)
        with django_assert_num_queries(2):
            response = api.get("/api/opportunities", {"page_size": 100})
        assert all(row["next_task"] is not None for row in response.json()["data"])


def test_next_task_is_the_earliest_open_task(api):
    deal = OpportunityFactory()
    assert api.get(f"/api/opportunities/{deal.pk}").json()["data"]["next_task"] is None
    base = timezone.now().replace(microsecond=0)
    TaskFactory(customer=deal.customer, opportunity=deal, title="undated")
    later = TaskFactory(
        customer=deal.customer, opportunity=deal, title="later", due_at=base + datetime.timedelta(days=3)
    )
    soon = TaskFactory(customer=deal.customer, opportunity=deal, title="soon", due_at=base + datetime.timedelta(days=1))
    TaskFactory(customer=deal.customer, opportunity=deal, due_at=base, done_at=base)
    detail = api.get(f"/api/opportunities/{deal.pk}")
    assert detail.json()["data"]["next_task"] == {
        "id": soon.pk,
        "title": "soon",
        "due_at": (base + datetime.timedelta(days=1)).astimezone(datetime.UTC).isoformat().replace("+00:00", "Z"),
    }
    listed = api.get("/api/opportunities").json()["data"][0]["next_task"]
    assert listed == detail.json()["data"]["next_task"]
    # Completing it moves the next step on, and the opportunity's ETag stays (a derived figure).
    etag = detail["ETag"]
    api.post(f"{URL}/{soon.pk}/complete", {}, format="json")
    again = api.get(f"/api/opportunities/{deal.pk}")
    assert again.json()["data"]["next_task"]["id"] == later.pk
    assert again["ETag"] == etag
    # The answer to a write shows it too.
    patched = api.patch(f"/api/opportunities/{deal.pk}", {"value": 5}, format="json").json()["data"]
    assert patched["next_task"]["id"] == later.pk


def test_deleting_an_opportunity_keeps_its_tasks(api):
    deal = OpportunityFactory()
    task = TaskFactory(customer=deal.customer, opportunity=deal)
    assert api.delete(f"/api/opportunities/{deal.pk}").status_code == 200
    task.refresh_from_db()
    assert task.opportunity_id is None


def test_timeline_shows_tasks_created_and_completed(api):
    customer = CustomerFactory()
    task = TaskFactory(customer=customer, title="Send the quote")
    api.post(f"{URL}/{task.pk}/complete", {"outcome": "Sent"}, format="json")
    entries = api.get(f"/api/customers/{customer.pk}/timeline").json()["data"]
    by_type = {entry["type"]: entry for entry in entries}
    assert by_type["task_created"]["task"] == {"id": task.pk, "title": "Send the quote", "kind": "call"}
    assert by_type["task_completed"]["task"] == {
        "id": task.pk,
        "title": "Send the quote",
        "kind": "call",
        "outcome": "Sent",
    }
    assert [entry["type"] for entry in entries][0] == "task_completed"


def test_zoneinfo_names_accepted():
    from core.models import is_time_zone

    assert is_time_zone("America/Los_Angeles") and is_time_zone("UTC")
    assert not is_time_zone("") and not is_time_zone(None) and not is_time_zone("Not/AZone")
    assert zoneinfo.ZoneInfo("Asia/Shanghai")
