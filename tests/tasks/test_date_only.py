"""A date-only task stays due on the date it was given, whoever it is assigned to and whatever their time zone.

11 December 2026 starts at 15:00 UTC on the 10th in Tokyo (UTC+9), at 08:00 UTC on the 11th in Los Angeles
(UTC-8) and at 23:00 UTC on the 10th in Paris (UTC+1).
"""

import datetime

import icalendar
import pytest
from django.utils import timezone
from rest_framework.test import APIClient

from core.models import Event, UserPreferences
from reminders import services as reminders
from tasks.models import Task
from tests.conftest import browser
from tests.core.admin.helpers import XLSX_FORMAT, change_form_data, confirm, upload
from tests.factories import CustomerFactory, TaskFactory

from .conftest import client_of, member

pytestmark = pytest.mark.django_db
UTC = datetime.UTC
TOKYO_11TH = "2026-12-10T15:00:00Z"
LOS_ANGELES_11TH = "2026-12-11T08:00:00Z"


def at(*args):
    return datetime.datetime(*args, tzinfo=UTC)


@pytest.fixture
def tokyo(db):
    return member("tokyo", "Sales rep", time_zone="Asia/Tokyo", is_staff=True)


@pytest.fixture
def los_angeles(db):
    return member("la", "Sales rep", time_zone="America/Los_Angeles", is_staff=True)


@pytest.fixture
def manager(db):
    return member("boss", "Sales manager", time_zone="Europe/Paris", is_staff=True)


@pytest.fixture
def customer(tokyo):
    return CustomerFactory(owner=tokyo, name="Acme")


@pytest.fixture
def task(manager, customer, tokyo):
    """Set by the manager through the API: due 11 December, for the rep in Tokyo."""
    response = client_of(manager).post(
        "/api/tasks",
        {"customer_id": customer.pk, "title": "Send contract", "assignee_id": tokyo.pk, "due_at": "2026-12-11"},
        format="json",
    )
    assert response.status_code == 201, response.content
    data = response.json()["data"]
    assert (data["due_at"], data["due_is_date_only"]) == (TOKYO_11TH, True)
    return Task.objects.get(pk=data["id"])


def api_due(client, task):
    data = client.get(f"/api/tasks/{task.pk}").json()["data"]
    return data["due_at"], data["due_is_date_only"]


def feed_days(user):
    """{title: DTSTART} of the tasks in ``user``'s calendar feed, parsed with icalendar."""
    url = client_of(user).post("/api/auth/calendar-feed").json()["data"]["url"]
    body = APIClient().get(url.removeprefix("http://testserver")).content
    return {
        str(event["summary"]): event.decoded("dtstart") for event in icalendar.Calendar.from_ical(body).walk("VEVENT")
    }


class TestReassigning:
    def test_through_the_api_the_task_stays_on_its_date_in_the_new_assignees_zone(self, manager, los_angeles, task):
        api = client_of(manager)
        response = api.patch(f"/api/tasks/{task.pk}", {"assignee_id": los_angeles.pk}, format="json")

        assert response.status_code == 200, response.content
        data = response.json()["data"]
        assert (data["assignee_id"], data["due_at"], data["due_is_date_only"]) == (
            los_angeles.pk,
            LOS_ANGELES_11TH,
            True,
        )
        assert api_due(api, task) == (LOS_ANGELES_11TH, True)
        assert response["ETag"] == api.get(f"/api/tasks/{task.pk}")["ETag"]
        # One change, with its history and its event: the assignee and the instant the date is stored as.
        entry = task.history.first()
        assert (entry.assignee_id, entry.due_at, entry.history_user) == (los_angeles.pk, at(2026, 12, 11, 8), manager)
        event = Event.objects.filter(type="task.updated", object_id=task.pk).latest("id")
        assert event.changes["due_at"] == {"old": TOKYO_11TH, "new": LOS_ANGELES_11TH}

    def test_a_new_date_given_with_the_new_assignee_is_that_date_in_their_zone(self, manager, los_angeles, task):
        api = client_of(manager)
        body = {"assignee_id": los_angeles.pk, "due_at": "2026-12-12"}
        assert api.patch(f"/api/tasks/{task.pk}", body, format="json").status_code == 200
        assert api_due(api, task) == ("2026-12-12T08:00:00Z", True)

    def test_a_timed_task_keeps_its_instant(self, manager, los_angeles, customer, tokyo):
        api = client_of(manager)
        timed = TaskFactory(customer=customer, assignee=tokyo, due_at=at(2026, 12, 11, 1, 30))
        assert api.patch(f"/api/tasks/{timed.pk}", {"assignee_id": los_angeles.pk}, format="json").status_code == 200
        assert api_due(api, timed) == ("2026-12-11T01:30:00Z", False)

    def test_in_a_batch(self, manager, los_angeles, task):
        api = client_of(manager)
        response = api.post(
            "/api/tasks/batch", {"update": [{"id": task.pk, "assignee_id": los_angeles.pk}]}, format="json"
        )

        assert response.status_code == 200, response.content
        assert response.json()["data"]["results"][0]["data"]["due_at"] == LOS_ANGELES_11TH
        assert api_due(api, task) == (LOS_ANGELES_11TH, True)

    def test_in_the_admin_the_task_stays_on_its_date(self, manager, los_angeles, task):
        admin = browser(manager)
        url = f"/admin/tasks/task/{task.pk}/change/"
        page = admin.get(url)
        # The page's values as a browser in Paris posts them back.
        with timezone.override(UserPreferences.for_user(manager).zone):
            data = change_form_data(page)
        data["assignee"] = los_angeles.pk

        response = admin.post(url, data)

        assert response.status_code == 302, response.context["errors"] if response.context else response
        task.refresh_from_db()
        assert (task.assignee, task.due_at, task.due_date) == (
            los_angeles,
            at(2026, 12, 11, 8),
            datetime.date(2026, 12, 11),
        )

    def test_by_an_import_the_task_stays_on_its_date(self, manager, los_angeles, customer, task):
        admin = browser(manager)
        preview = upload(
            admin,
            "/admin/tasks/task/",
            [["id", "customer", "title", "assignee"], [task.pk, customer.pk, "Send contract", los_angeles.pk]],
        )
        confirm(admin, "/admin/tasks/task/", preview)

        task.refresh_from_db()
        assert (task.assignee, task.due_at) == (los_angeles, at(2026, 12, 11, 8))

    def test_the_new_assignees_calendar_shows_the_date(self, manager, los_angeles, task):
        client_of(manager).patch(f"/api/tasks/{task.pk}", {"assignee_id": los_angeles.pk}, format="json")
        assert feed_days(los_angeles) == {"Send contract (Acme)": datetime.date(2026, 12, 11)}


class TestImportedFromASpreadsheet:
    def test_a_date_cell_is_a_date_only_task_and_a_date_and_time_cell_a_timed_one(self, manager, customer, tokyo):
        """An XLSX cell shown as a date holds a date, as "2026-12-11" in a CSV does: not 00:00 of the importer's day."""
        admin = browser(manager)
        rows = [
            ["customer", "title", "assignee", "due_at"],
            [customer.pk, "On the date", tokyo.pk, datetime.date(2026, 12, 11)],
            [customer.pk, "At a time", tokyo.pk, datetime.datetime(2026, 12, 11, 9, 30)],
        ]
        confirm(admin, "/admin/tasks/task/", upload(admin, "/admin/tasks/task/", rows, XLSX_FORMAT))

        dated, timed = Task.objects.get(title="On the date"), Task.objects.get(title="At a time")
        assert (dated.due_is_date_only, dated.due_at, dated.due_date) == (True, at(2026, 12, 10, 15), rows[1][3])
        # A date and time is read in the importer's zone (the admin's): 09:30 in Paris.
        assert (timed.due_is_date_only, timed.due_at) == (False, at(2026, 12, 11, 8, 30))


class TestChangingTimeZone:
    def test_the_users_open_date_only_tasks_stay_on_their_dates(self, tokyo, customer, task):
        done = TaskFactory(
            customer=customer,
            assignee=tokyo,
            due_at=at(2026, 12, 10, 15),
            due_is_date_only=True,
            done_at=at(2026, 12, 1),
        )
        timed = TaskFactory(customer=customer, assignee=tokyo, due_at=at(2026, 12, 11, 1, 30))
        before = Event.objects.order_by("id").last().id
        api = client_of(tokyo)

        response = api.patch("/api/auth/me", {"time_zone": "America/Los_Angeles"}, format="json")

        assert response.status_code == 200, response.content
        assert api_due(api, task) == (LOS_ANGELES_11TH, True)
        assert api_due(api, timed) == ("2026-12-11T01:30:00Z", False)
        # A done task is left as it was done.
        assert api_due(api, done) == (TOKYO_11TH, True)
        entry = task.history.first()
        assert (entry.due_at, entry.history_user) == (at(2026, 12, 11, 8), tokyo)
        assert list(Event.objects.filter(id__gt=before).values_list("type", "object_id")) == [("task.updated", task.pk)]
        assert feed_days(tokyo)["Send contract (Acme)"] == datetime.date(2026, 12, 11)

    def test_a_first_choice_of_zone_moves_them_from_the_sites(self, settings, customer):
        settings.TIME_ZONE = "UTC"
        newcomer = member("new", "Sales rep")
        mine = Task.objects.create(
            customer=customer, assignee=newcomer, title="Renew", due_at=at(2026, 12, 11), due_is_date_only=True
        )
        assert client_of(newcomer).patch("/api/auth/me", {"time_zone": "Asia/Tokyo"}, format="json").status_code == 200
        mine.refresh_from_db()
        assert mine.due_at == at(2026, 12, 10, 15)

    def test_the_digest_lists_the_task_on_its_day(self, smtp_server, settings, tokyo, task):
        settings.CRM_DIGEST_HOUR = 7
        client_of(tokyo).patch(
            "/api/auth/me", {"time_zone": "America/Los_Angeles", "daily_digest": True}, format="json"
        )

        # 16:00 UTC on the 11th: 08:00 on the 11th in Los Angeles.
        assert reminders.send_digests(at(2026, 12, 11, 16)) == 1
        [(_, message)] = smtp_server.inbox.messages
        body = message.get_content().replace("\r\n", "\n")
        assert "Today:\n- 2026-12-11 Send contract (Acme)" in body
        assert "Overdue" not in body

    def test_my_day_shows_the_task_today(self, tokyo, task, monkeypatch):
        client_of(tokyo).patch("/api/auth/me", {"time_zone": "America/Los_Angeles"}, format="json")
        monkeypatch.setattr("django.utils.timezone.now", lambda: at(2026, 12, 11, 16))

        page = browser(tokyo).get("/admin/tasks/task/my-day/")

        sections = {key: [row.title for row in rows] for key, _label, rows in page.context["sections"]}
        assert sections["today"] == ["Send contract"] and sections["overdue"] == []

    def test_a_zone_left_as_it_was_writes_nothing(self, tokyo, task):
        before = (Event.objects.count(), task.history.count())
        assert client_of(tokyo).patch("/api/auth/me", {"time_zone": "Asia/Tokyo"}, format="json").status_code == 200
        preferences = UserPreferences.objects.get(user=tokyo)
        preferences.daily_digest = True
        preferences.save()
        assert (Event.objects.count(), task.history.count()) == before


class TestTheAdminShowsTheDate:
    """A manager in Paris looks at a task due 11 December for the rep in Tokyo (15:00 UTC on the 10th)."""

    def test_in_the_list_and_the_customers_header(self, manager, customer, task):
        admin = browser(manager)
        row = admin.get("/admin/tasks/task/").content.decode()
        assert "Dec. 11, 2026" in row and "Dec. 10, 2026" not in row
        header = admin.get(f"/admin/customers/customer/{customer.pk}/change/").content.decode()
        assert "Send contract (12/11/2026)" in header

    def test_in_the_form_and_a_save_keeps_it(self, manager, task):
        admin = browser(manager)
        url = f"/admin/tasks/task/{task.pk}/change/"
        page = admin.get(url)
        assert 'name="due_at_0" value="2026-12-11"' in page.content.decode()
        with timezone.override(UserPreferences.for_user(manager).zone):
            data = change_form_data(page)
        assert (data["due_at_0"], data["due_at_1"]) == ("2026-12-11", "00:00:00")
        data["title"] = "Send the contract"

        assert admin.post(url, data).status_code == 302
        task.refresh_from_db()
        assert (task.title, task.due_at) == ("Send the contract", at(2026, 12, 10, 15))

    @staticmethod
    def add_form(editor, customer, assignee, day):
        """The add page of ``editor``, posted with a date-only task due on ``day`` (00:00 beside it, as shown)."""
        admin = browser(editor)
        page = admin.get("/admin/tasks/task/add/")
        with timezone.override(UserPreferences.for_user(editor).zone):
            data = change_form_data(page)
        data.update(
            {
                "title": "Renew",
                "customer": customer.pk,
                "assignee": assignee.pk,
                "kind": "todo",
                "due_at_0": day,
                "due_at_1": "00:00:00",
                "due_is_date_only": "on",
            }
        )
        return admin, data

    def test_a_date_entered_is_that_date_for_the_assignee(self, manager, customer, tokyo):
        admin, data = self.add_form(manager, customer, tokyo, "2026-12-11")

        assert admin.post("/admin/tasks/task/add/", data).status_code == 302
        added = Task.objects.get(title="Renew")
        assert (added.due_at, added.due_date) == (at(2026, 12, 10, 15), datetime.date(2026, 12, 11))

    def test_a_date_whose_midnight_the_editors_clocks_skip_is_still_that_date(self, customer, tokyo):
        """Cairo's clocks go from 00:00 to 01:00 on 24 April 2026: a date-only task is due on that date all the same."""
        cairo = member("cairo", "Sales manager", time_zone="Africa/Cairo", is_staff=True)
        admin, data = self.add_form(cairo, customer, tokyo, "2026-04-24")

        response = admin.post("/admin/tasks/task/add/", data)
        assert response.status_code == 302, response.context["adminform"].form.errors
        added = Task.objects.get(title="Renew")
        assert (added.due_at, added.due_date) == (at(2026, 4, 23, 15), datetime.date(2026, 4, 24))
        # A timed task at a time that does not exist is refused on the form, as before.
        data.update({"title": "Call", "due_is_date_only": ""})
        response = admin.post("/admin/tasks/task/add/", data)
        assert response.status_code == 200 and "due_at" in response.context["adminform"].form.errors


class TestSentBackAsRead:
    """A client or a spreadsheet sends the task back as it read it, with another assignee."""

    def test_a_full_body_keeps_the_date(self, manager, los_angeles, task):
        api = client_of(manager)
        body = api.get(f"/api/tasks/{task.pk}").json()["data"]
        body["assignee_id"] = los_angeles.pk
        for name in ("id", "done_at", "created_at", "updated_at", "created_by_id"):
            body.pop(name)

        response = api.put(f"/api/tasks/{task.pk}", body, format="json")

        assert response.status_code == 200, response.content
        assert api_due(api, task) == (LOS_ANGELES_11TH, True)

    def test_an_exported_row_imported_again_keeps_the_date(self, manager, los_angeles, customer, task):
        admin = browser(manager)
        # The due date as the export writes it: the stored instant.
        preview = upload(
            admin,
            "/admin/tasks/task/",
            [
                ["id", "customer", "title", "assignee", "due_at", "due_is_date_only"],
                [task.pk, customer.pk, "Send contract", los_angeles.pk, "2026-12-10T15:00:00+00:00", "1"],
            ],
        )
        confirm(admin, "/admin/tasks/task/", preview)

        task.refresh_from_db()
        assert (task.assignee, task.due_at) == (los_angeles, at(2026, 12, 11, 8))
