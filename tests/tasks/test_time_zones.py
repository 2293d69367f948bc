""" "Today" and "overdue" are the requesting user's: a user in Shanghai and one in Los Angeles around midnight."""

import datetime

import pytest
from django.utils import timezone

from tasks.models import Task
from tasks.services import snooze_task
from tasks.windows import WINDOWS, condition, day_of, window_of
from tests.factories import CustomerFactory, TaskFactory

from .conftest import client_of, member

pytestmark = pytest.mark.django_db
UTC = datetime.UTC


def at(*args):
    return datetime.datetime(*args, tzinfo=UTC)


@pytest.fixture
def shanghai(db):
    return member("shanghai", "Sales manager", time_zone="Asia/Shanghai")


@pytest.fixture
def los_angeles(db):
    return member("la", "Sales manager", time_zone="America/Los_Angeles")


def windows(user, now):
    day = day_of(user, now)
    return {
        window: set(Task.objects.filter(condition(window, day)).values_list("title", flat=True)) for window in WINDOWS
    }


def test_a_timed_task_is_tomorrow_in_shanghai_and_today_in_los_angeles(shanghai, los_angeles):
    # 17:00 UTC on 10 March 2026: 01:00 on the 11th in Shanghai, 10:00 on the 10th in Los Angeles (PDT).
    TaskFactory(title="call", due_at=at(2026, 3, 10, 17), assignee=shanghai)
    now = at(2026, 3, 10, 15)  # 23:00 in Shanghai, 08:00 in Los Angeles
    assert windows(shanghai, now)["upcoming"] == {"call"}
    assert windows(los_angeles, now)["today"] == {"call"}
    # An hour later it is the 11th in Shanghai as well: today there.
    assert windows(shanghai, at(2026, 3, 10, 16, 30))["today"] == {"call"}
    # Past its time it is overdue everywhere; once done, overdue nowhere.
    assert (
        windows(shanghai, at(2026, 3, 10, 18))["overdue"]
        == windows(los_angeles, at(2026, 3, 10, 18))["overdue"]
        == {"call"}
    )
    Task.objects.update(done_at=at(2026, 3, 10, 17, 30))
    assert windows(los_angeles, at(2026, 3, 10, 18))["overdue"] == set()
    assert windows(los_angeles, at(2026, 3, 10, 18))["today"] == {"call"}


def test_a_date_only_task_is_overdue_once_its_day_has_ended(los_angeles):
    # The 10th of March as a date-only task of a Los Angeles user: 00:00 PDT = 07:00 UTC.
    TaskFactory(title="renew", due_at=at(2026, 3, 10, 7), due_is_date_only=True, assignee=los_angeles)
    assert windows(los_angeles, at(2026, 3, 10, 6))["upcoming"] == {"renew"}  # 23:00 on the 9th
    assert windows(los_angeles, at(2026, 3, 10, 8))["today"] == {"renew"}  # 01:00 on the 10th
    assert windows(los_angeles, at(2026, 3, 11, 6, 59))["today"] == {"renew"}  # 23:59 on the 10th
    assert windows(los_angeles, at(2026, 3, 11, 7))["overdue"] == {"renew"}  # 00:00 on the 11th


def test_a_date_only_task_is_due_on_its_date_for_whoever_looks(shanghai, los_angeles):
    # The 11th of March as a date-only task of a Shanghai user: 00:00 CST = 16:00 UTC on the 10th.
    TaskFactory(title="renew", due_at=at(2026, 3, 10, 16), due_is_date_only=True, assignee=shanghai)
    now = at(2026, 3, 10, 18)  # 02:00 on the 11th in Shanghai, 11:00 on the 10th in Los Angeles (PDT)
    assert windows(shanghai, now)["today"] == {"renew"}
    assert windows(los_angeles, now)["upcoming"] == {"renew"}  # the 11th is tomorrow there
    assert windows(los_angeles, at(2026, 3, 11, 8))["today"] == {"renew"}  # 01:00 on the 11th
    assert windows(los_angeles, at(2026, 3, 12, 6, 59))["today"] == {"renew"}  # 23:59 on the 11th
    assert windows(los_angeles, at(2026, 3, 12, 7))["overdue"] == {"renew"}  # 00:00 on the 12th
    day = day_of(los_angeles, now)
    assert window_of(Task.objects.get(title="renew"), day) == "upcoming"


def test_the_day_spans_a_dst_change(los_angeles):
    # 8 March 2026 has 23 hours in Los Angeles.
    day = day_of(los_angeles, at(2026, 3, 8, 12))
    assert day.end - day.start == datetime.timedelta(hours=23)
    assert day.date == datetime.date(2026, 3, 8)


def test_no_due_date_is_none(shanghai):
    TaskFactory(title="someday", assignee=shanghai)
    assert windows(shanghai, timezone.now())["none"] == {"someday"}


def test_the_api_filters_in_each_users_zone_as_the_rules_say(shanghai, los_angeles):
    """Tasks due at instants around now, timed and date-only: each user's ?due= lists what their day says."""
    customer = CustomerFactory()
    now = timezone.now()
    for hours in (-30, -13, -7, -2, 1, 5, 9, 14, 20, 26, 40):
        TaskFactory(
            customer=customer, title=f"t{hours}", due_at=now + datetime.timedelta(hours=hours), assignee=shanghai
        )
    for user in (shanghai, los_angeles):
        for days in (-1, 0, 1):
            zone = day_of(user).zone
            local = (now.astimezone(zone) + datetime.timedelta(days=days)).date()
            start = datetime.datetime.combine(local, datetime.time.min, tzinfo=zone)
            TaskFactory(
                customer=customer, title=f"{user.username}{days}", due_at=start, due_is_date_only=True, assignee=user
            )
    TaskFactory(customer=customer, title="undated", assignee=shanghai)
    for user in (shanghai, los_angeles):
        api = client_of(user)
        day = day_of(user)
        for window in WINDOWS:
            rows = api.get("/api/tasks", {"due": window, "page_size": 100}).json()["data"]
            expected = {task.title for task in Task.objects.all() if window_of(task, day) == window}
            assert {row["title"] for row in rows} == expected, (user.username, window)
        # The user's own date-only tasks: yesterday's overdue, today's today, tomorrow's upcoming.
        assert window_of(Task.objects.get(title=f"{user.username}-1"), day) == "overdue"
        assert window_of(Task.objects.get(title=f"{user.username}0"), day) == "today"
        assert window_of(Task.objects.get(title=f"{user.username}1"), day) == "upcoming"


@pytest.fixture
def new_york(db):
    return member("ny", "Sales rep", time_zone="America/New_York")


@pytest.mark.parametrize(
    ("due", "snoozed"),
    [
        # 09:00 EST on Saturday 13 March 2027; the clocks go forward that night: 09:00 EDT on the 14th.
        (at(2027, 3, 13, 14), at(2027, 3, 14, 13)),
        # 09:00 EDT on Saturday 6 November 2027; the clocks go back that night: 09:00 EST on the 7th.
        (at(2027, 11, 6, 13), at(2027, 11, 7, 14)),
        # 02:30 on the 13th; the 14th has no 02:30 in New York: the time the clocks jumped to, 03:30 EDT.
        (at(2027, 3, 13, 7, 30), at(2027, 3, 14, 7, 30)),
    ],
)
def test_a_snoozed_task_keeps_its_time_of_day_across_a_dst_change(new_york, due, snoozed):
    task = TaskFactory(assignee=new_york, due_at=due)
    snooze_task(task)
    task.refresh_from_db()
    assert task.due_at == snoozed


def test_a_date_alone_as_a_due_bound_is_that_day_in_the_users_zone(shanghai):
    """A date-only task due on the 10th is due on or after the 10th and not before it, for its assignee; a
    date-time bound is the instant it says."""
    customer = CustomerFactory(owner=shanghai)
    api = client_of(shanghai)
    api.post("/api/tasks", {"customer_id": customer.pk, "title": "renew", "due_at": "2026-03-10"}, format="json")
    # 00:30 on the 10th in Shanghai, 16:30 UTC on the 9th.
    TaskFactory(customer=customer, assignee=shanghai, title="call", due_at=at(2026, 3, 9, 16, 30))

    def listed(**bounds):
        response = api.get("/api/tasks", bounds)
        assert response.status_code == 200, response.content
        return {row["title"] for row in response.json()["data"]}

    assert listed(due_after="2026-03-10") == {"renew", "call"}
    assert listed(due_before="2026-03-10") == set()
    assert listed(due_after="2026-03-11") == set()
    assert listed(due_before="2026-03-11") == {"renew", "call"}
    assert listed(due_after="2026-03-10T00:00:00Z") == set()
    assert listed(due_before="2026-03-09T16:15:00Z") == {"renew"}
