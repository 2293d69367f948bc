"""The private iCalendar feed of a user's open tasks: turned on, reset and off; what it holds; what it opens."""

from datetime import UTC, datetime, timedelta

import icalendar
import pytest
import vobject
from django.contrib.auth.models import Group
from django.utils import timezone
from knox.models import get_token_model
from rest_framework.test import APIClient

from core.models import UserPreferences
from tasks.models import Task
from tests.factories import CustomerFactory, OpportunityFactory, UserFactory

pytestmark = pytest.mark.django_db


def client_of(user):
    client = APIClient()
    _, raw = get_token_model().objects.create(user)
    client.credentials(HTTP_AUTHORIZATION=f"Bearer {raw}")
    return client


@pytest.fixture
def rep():
    rep = UserFactory(username="rep")
    rep.groups.add(Group.objects.get(name="Sales rep"))
    UserPreferences.objects.create(user=rep, time_zone="Asia/Shanghai", reminder_lead_minutes=20)
    return rep


@pytest.fixture
def customer(rep):
    return CustomerFactory(name="华为技术有限公司", owner=rep)


def add_task(customer, assignee, **fields):
    fields.setdefault("title", "Call back")
    fields.setdefault("due_at", timezone.now() + timedelta(days=1))
    return Task.objects.create(customer=customer, assignee=assignee, created_by=assignee, **fields)


def turn_on(user):
    response = client_of(user).post("/api/auth/calendar-feed")
    assert response.status_code == 200, response.content
    return response.json()["data"]["url"]


def fetch(url, **headers):
    return APIClient().get(url.removeprefix("http://testserver"), headers=headers)


def events_of(body):
    calendar = icalendar.Calendar.from_ical(body)
    return {str(event["uid"]): event for event in calendar.walk("VEVENT")}


def test_the_feed_holds_the_users_open_dated_tasks_and_parses_with_two_libraries(rep, customer):
    deal = OpportunityFactory(customer=customer, title="ERP rollout")
    timed = add_task(
        customer,
        rep,
        title="Demo",
        kind=Task.Kind.MEETING,
        due_at=datetime(2026, 12, 10, 2, 30, tzinfo=UTC),
        opportunity=deal,
        notes="Bring the pricing sheet",
        priority=Task.Priority.HIGH,
        reminder_lead_minutes=45,
    )
    # A date-only task: the start of 2026-12-11 in Shanghai.
    day = add_task(
        customer, rep, title="Send contract", due_at=datetime(2026, 12, 10, 16, 0, tzinfo=UTC), due_is_date_only=True
    )
    add_task(customer, rep, title="Done already", done_at=timezone.now())
    add_task(customer, rep, title="No date", due_at=None)
    add_task(customer, UserFactory(username="other"), title="Someone else's")

    url = turn_on(rep)
    response = fetch(url)

    assert response.status_code == 200
    assert response["Content-Type"] == "text/calendar; charset=utf-8"
    events = events_of(response.content)
    assert set(events) == {f"task-{timed.pk}@crm", f"task-{day.pk}@crm"}

    demo = events[f"task-{timed.pk}@crm"]
    assert str(demo["summary"]) == "Demo (华为技术有限公司)"
    assert demo.decoded("dtstart") == datetime(2026, 12, 10, 2, 30, tzinfo=UTC)
    assert demo.decoded("dtend") == datetime(2026, 12, 10, 3, 0, tzinfo=UTC)
    assert int(demo["priority"]) == 1
    assert "ERP rollout" in str(demo["description"]) and "Bring the pricing sheet" in str(demo["description"])
    assert str(demo["url"]).endswith(f"/admin/tasks/task/{timed.pk}/change/")
    (alarm,) = demo.walk("VALARM")
    assert alarm.decoded("trigger") == timedelta(minutes=-45)

    contract = events[f"task-{day.pk}@crm"]
    assert contract.decoded("dtstart") == datetime(2026, 12, 11).date()
    assert contract.decoded("dtend") == datetime(2026, 12, 12).date()
    (alarm,) = contract.walk("VALARM")
    assert alarm.decoded("trigger") == timedelta(minutes=-20)  # the user's preference

    # A second, independent parser reads the same feed.
    parsed = vobject.readOne(response.content.decode())
    assert sorted(event.uid.value for event in parsed.vevent_list) == sorted(events)
    assert {event.summary.value for event in parsed.vevent_list} == {
        "Demo (华为技术有限公司)",
        "Send contract (华为技术有限公司)",
    }


def test_control_characters_in_a_record_are_left_out_of_the_feed(rep, customer):
    # A title, note or name may hold them (an import, the API); RFC 5545 text allows only the tab. (Not
    # NUL, which PostgreSQL cannot store.)
    customer.name = "ACME\x1b[31m"
    customer.save()
    task = add_task(customer, rep, title="Call\x0bback\x01\x7f", notes="line one\nline\ttwo\x08\r\nthree")

    body = fetch(turn_on(rep)).content

    assert not any(byte < 0x20 and byte not in b"\t\r\n" or byte == 0x7F for byte in body)
    event = events_of(body)[f"task-{task.pk}@crm"]
    assert str(event["summary"]) == "Callback (ACME[31m)"
    assert "line one\nline\ttwo\nthree" in str(event["description"])
    (alarm,) = event.walk("VALARM")
    assert str(alarm["description"]) == "Callback"
    assert vobject.readOne(body.decode()).vevent.summary.value == "Callback (ACME[31m)"


def test_me_shows_the_current_url_and_post_again_resets_it(rep, customer):
    client = client_of(rep)
    assert client.get("/api/auth/me").json()["data"]["calendar_feed_url"] is None

    first = turn_on(rep)
    assert client.get("/api/auth/me").json()["data"]["calendar_feed_url"] == first
    second = turn_on(rep)

    assert second != first
    assert fetch(first).status_code == 404
    assert fetch(second).status_code == 200
    assert client.get("/api/auth/me").json()["data"]["calendar_feed_url"] == second


def test_delete_turns_the_feed_off(rep, customer):
    url = turn_on(rep)
    client = client_of(rep)

    response = client.delete("/api/auth/calendar-feed")

    assert response.status_code == 200 and response.json()["success"] is True
    assert fetch(url).status_code == 404
    assert client.get("/api/auth/me").json()["data"]["calendar_feed_url"] is None


def test_the_feed_stops_when_the_user_is_deactivated_or_loses_their_role(rep, customer):
    url = turn_on(rep)
    rep.is_active = False
    rep.save()
    assert fetch(url).status_code == 404

    rep.is_active = True
    rep.save()
    assert fetch(url).status_code == 200
    rep.groups.clear()
    assert fetch(url).status_code == 404


def test_the_token_opens_the_feed_and_nothing_else(rep, customer):
    token = turn_on(rep).rsplit("/", 1)[1].removesuffix(".ics")
    client = APIClient()
    client.credentials(HTTP_AUTHORIZATION=f"Bearer {token}")

    assert client.get("/api/customers").status_code == 401
    assert client.get("/api/auth/me").status_code == 401
    assert client.get(f"/api/customers?token={token}").status_code == 401
    assert APIClient().get(f"/calendar/{token[:-1]}x.ics").status_code == 404
    assert APIClient().get("/calendar/.ics").status_code == 404


@pytest.mark.parametrize("token", ["%00", "a%00b", "%FF%FE", "%F0%9F%98%80", "a.b", "x" * 5000])
def test_a_token_of_what_no_token_holds_is_404_not_an_error(rep, customer, token):
    # A NUL reached PostgreSQL, which refuses it in a text parameter: a 500 for anyone who asked.
    turn_on(rep)
    response = APIClient().get(f"/calendar/{token}.ics")
    assert response.status_code == 404


def test_the_feed_only_reads(rep, customer):
    url = turn_on(rep).removeprefix("http://testserver")
    client = APIClient()

    assert client.post(url).status_code == 405
    assert client.delete(url).status_code == 405
    assert client.head(url).status_code == 200


def test_an_unchanged_feed_answers_304(rep, customer):
    add_task(customer, rep)
    url = turn_on(rep)
    etag = fetch(url)["ETag"]

    assert fetch(url, **{"If-None-Match": etag}).status_code == 304
    add_task(customer, rep, title="Another")
    assert fetch(url, **{"If-None-Match": etag}).status_code == 200


@pytest.mark.parametrize("role", ["Sales rep", "Sales manager", "Read-only"])
def test_every_role_may_have_a_feed(role):
    user = UserFactory(username="someone")
    user.groups.add(Group.objects.get(name=role))
    assert turn_on(user)


def test_no_role_and_anonymous_are_refused():
    assert APIClient().post("/api/auth/calendar-feed").status_code == 401
    assert APIClient().delete("/api/auth/calendar-feed").status_code == 401
    assert client_of(UserFactory(username="nobody")).post("/api/auth/calendar-feed").status_code == 403


def test_queries_stay_constant_as_tasks_grow(rep, customer, django_assert_num_queries):
    url = turn_on(rep)
    deal = OpportunityFactory(customer=customer)
    add_task(customer, rep, opportunity=deal)
    # The feed and its user, their role, their preferences, the tasks.
    with django_assert_num_queries(4) as few:
        fetch(url)
    for n in range(20):
        add_task(customer, rep, title=f"Task {n}", opportunity=deal)
    with django_assert_num_queries(len(few.captured_queries)):
        assert len(events_of(fetch(url).content)) == 21


def test_the_access_log_keeps_no_feed_token(rep, customer, caplog):
    url = turn_on(rep)
    token = url.rsplit("/", 1)[1].removesuffix(".ics")

    with caplog.at_level("INFO", logger="crm.access"):
        fetch(url)

    lines = [record.getMessage() for record in caplog.records if record.name == "crm.access"]
    assert any('"/calendar/[token].ics"' in line for line in lines)
    assert not any(token in line for line in lines)


def test_a_zone_no_longer_known_names_the_sites_zone_its_days_are_in(rep, customer, settings):
    """A stored zone name that the time zone database dropped is read as the site's zone (``zone_named``): the
    feed names that zone, not one that calendar apps cannot place."""
    settings.TIME_ZONE = "Europe/Paris"
    UserPreferences.objects.filter(user=rep).update(time_zone="Asia/Atlantis")
    # 23:30 UTC on the 10th: the 11th in Paris.
    add_task(customer, rep, title="Sign", due_at=datetime(2026, 12, 10, 23, 30, tzinfo=UTC), due_is_date_only=True)

    calendar = icalendar.Calendar.from_ical(fetch(turn_on(rep)).content)
    assert str(calendar["x-wr-timezone"]) == "Europe/Paris"
    (event,) = calendar.walk("VEVENT")
    assert event.decoded("dtstart") == datetime(2026, 12, 11).date()
