import datetime

import pytest
from django.db import connection
from django.test import Client
from django.test.utils import CaptureQueriesContext
from django.utils import timezone

from interactions.models import Interaction
from opportunities.models import Opportunity
from tasks.models import Task
from tests.conftest import browser
from tests.core.admin.helpers import CSV_FORMAT, XLSX_FORMAT, change_form_data, confirm, upload
from tests.factories import PASSWORD, CustomerFactory, OpportunityFactory, TaskFactory

from .conftest import member

URL = "/admin/tasks/task/"
MY_DAY = f"{URL}my-day/"
ACT = f"{MY_DAY}act/"
pytestmark = pytest.mark.django_db


def staff(username, group, **kwargs):
    return member(username, group, is_staff=True, **kwargs)


@pytest.fixture
def rep_user(db):
    return staff("rep", "Sales rep")


@pytest.fixture
def browser_rep(rep_user):
    return browser(rep_user)


@pytest.mark.parametrize(("group", "offered"), [("Sales rep", True), ("Sales manager", True), ("Read-only", False)])
def test_my_day_offers_to_add_a_task_to_those_who_may(group, offered):
    page = browser(staff("someone", group)).get(MY_DAY)

    assert page.status_code == 200
    assert (f'href="{URL}add/"' in page.content.decode()) is offered


def titles(response, section):
    return [task.title for task in dict((key, rows) for key, _label, rows in response.context["sections"])[section]]


class TestMyDay:
    def test_sections(self, rep_user, browser_rep):
        customer = CustomerFactory(owner=rep_user)
        now = timezone.now()
        TaskFactory(customer=customer, assignee=rep_user, title="late", due_at=now - datetime.timedelta(hours=2))
        TaskFactory(customer=customer, assignee=rep_user, title="today", due_at=now, due_is_date_only=False)
        Task.objects.filter(title="today").update(due_at=now + datetime.timedelta(seconds=5))
        TaskFactory(customer=customer, assignee=rep_user, title="later", due_at=now + datetime.timedelta(days=3))
        TaskFactory(customer=customer, assignee=rep_user, title="finished", due_at=now, done_at=now)
        TaskFactory(customer=customer, assignee=staff("colleague", "Sales rep"), title="not mine", due_at=now)
        OpportunityFactory(customer=customer, title="No plan")
        response = browser_rep.get(MY_DAY)
        assert response.status_code == 200
        assert titles(response, "overdue") == ["late"]
        assert titles(response, "upcoming") == ["later"]
        # "today" may already have become overdue if the test ran across midnight: both are fine.
        assert set(titles(response, "today")) | set(titles(response, "overdue")) >= {"today"}
        page = response.content.decode()
        assert "No plan" in page and 'name="csrfmiddlewaretoken"' in page and 'value="log_call"' in page

    @pytest.mark.parametrize(("language", "label"), [("en", "Proposal"), ("zh-hans", "方案")])
    def test_deals_show_their_stage_by_its_label(self, rep_user, browser_rep, language, label):
        customer = CustomerFactory(owner=rep_user)
        OpportunityFactory(customer=customer, title="No plan", stage=Opportunity.Stage.PROPOSAL)
        page = browser_rep.get(MY_DAY, HTTP_ACCEPT_LANGUAGE=language).content.decode()
        row = page[page.index('id="my-day-no-next-step"') :].split("</tr>")[1]
        assert "No plan" in row and f"<td>{label}</td>" in row
        assert "<td>proposal</td>" not in page

    def test_read_only_users_see_no_buttons_and_no_role_is_refused(self):
        reader = staff("reader", "Read-only")
        TaskFactory(assignee=reader, due_at=timezone.now())
        page = browser(reader).get(MY_DAY)
        assert page.status_code == 200 and 'value="done"' not in page.content.decode()
        assert browser(staff("nobody", None)).get(MY_DAY).status_code == 403

    def test_done_snooze_and_log_a_call(self, rep_user, browser_rep):
        customer = CustomerFactory(owner=rep_user)
        due = timezone.now() + datetime.timedelta(hours=1)
        task = TaskFactory(customer=customer, assignee=rep_user, due_at=due, kind=Task.Kind.EMAIL)

        def act(action):
            task.refresh_from_db()
            return browser_rep.post(ACT, {"task": task.pk, "action": action, "version": task.updated_at.isoformat()})

        assert act("snooze").status_code == 302
        task.refresh_from_db()
        assert task.due_at == due + datetime.timedelta(days=1)
        assert act("log_call")["Location"] == MY_DAY
        task.refresh_from_db()
        assert task.done_at is not None
        call = Interaction.objects.get(customer=customer)
        assert call.interaction_type == "call" and call.created_by == rep_user
        # Done already: a second click changes nothing.
        assert act("done").status_code == 302
        assert Interaction.objects.count() == 1

    def test_a_stale_page_changes_nothing(self, rep_user, browser_rep):
        task = TaskFactory(customer=CustomerFactory(owner=rep_user), assignee=rep_user, due_at=timezone.now())
        version = task.updated_at.isoformat()
        task.title = "Renamed elsewhere"
        task.save()
        response = browser_rep.post(ACT, {"task": task.pk, "action": "done", "version": version}, follow=True)
        task.refresh_from_db()
        assert task.done_at is None
        assert "changed meanwhile" in response.content.decode()

    def test_another_reps_task_is_not_reachable(self, browser_rep):
        other = staff("other", "Sales rep")
        task = TaskFactory(customer=CustomerFactory(owner=other), assignee=other)
        browser_rep.post(ACT, {"task": task.pk, "action": "done", "version": task.updated_at.isoformat()})
        task.refresh_from_db()
        assert task.done_at is None

    @pytest.mark.parametrize(
        "data",
        [{}, {"task": "x", "action": "done"}, {"task": "1", "action": "explode"}, {"task": "²", "action": "done"}],
    )
    def test_incomplete_posts_change_nothing(self, browser_rep, data):
        assert browser_rep.post(ACT, data).status_code == 302

    def test_get_on_the_action_url_is_refused(self, browser_rep):
        assert browser_rep.get(ACT).status_code == 405

    def test_query_count_does_not_grow_with_tasks(self, rep_user, browser_rep):
        customer = CustomerFactory(owner=rep_user)

        def add(n):
            now = timezone.now()
            for hours in range(n):
                deal = OpportunityFactory(customer=customer)
                Opportunity.objects.filter(pk=deal.pk).update(created_at=now - datetime.timedelta(days=40))
                TaskFactory(customer=customer, assignee=rep_user, due_at=now - datetime.timedelta(hours=hours + 1))
                TaskFactory(customer=customer, assignee=rep_user, due_at=now + datetime.timedelta(days=2, hours=hours))

        add(2)
        with CaptureQueriesContext(connection) as few:
            browser_rep.get(MY_DAY)
        add(10)
        with CaptureQueriesContext(connection) as many:
            response = browser_rep.get(MY_DAY)
        assert len(titles(response, "overdue")) == 12
        assert len(many) == len(few)


def test_reps_land_on_their_day_and_managers_on_the_dashboard():
    staff("rep", "Sales rep")
    staff("boss", "Sales manager")
    # The login page's form carries next=/admin/ when no page was asked for.
    response = Client().post("/admin/login/", {"username": "rep", "password": PASSWORD, "next": "/admin/"})
    assert response.status_code == 302 and response["Location"] == MY_DAY
    response = Client().post("/admin/login/", {"username": "boss", "password": PASSWORD, "next": "/admin/"})
    assert response["Location"] == "/admin/"
    dashboard = Client()
    dashboard.post("/admin/login/", {"username": "boss", "password": PASSWORD, "next": "/admin/"})
    assert MY_DAY in dashboard.get("/admin/").content.decode()
    # Asked for a page, a rep goes there.
    asked = Client().post(
        "/admin/login/?next=/admin/customers/customer/",
        {"username": "rep", "password": PASSWORD, "next": "/admin/customers/customer/"},
    )
    assert asked["Location"] == "/admin/customers/customer/"


class TestTaskAdmin:
    def test_filters(self, rep_user, browser_rep):
        customer = CustomerFactory(owner=rep_user)
        colleague = staff("colleague", "Sales rep")
        now = timezone.now()
        TaskFactory(customer=customer, assignee=rep_user, title="mine late", due_at=now - datetime.timedelta(days=1))
        TaskFactory(customer=customer, assignee=colleague, title="theirs", due_at=now + datetime.timedelta(days=2))
        TaskFactory(customer=customer, assignee=rep_user, title="done", done_at=now)

        def listed(**params):
            response = browser_rep.get(URL, params)
            assert response.status_code == 200
            return sorted(task.title for task in response.context["cl"].result_list)

        # A rep lands on their own tasks; "All I may see" adds the others' tasks on their customers.
        assert listed() == ["done", "mine late"]
        assert listed(assignee="all") == ["done", "mine late", "theirs"]
        assert listed(assignee="me") == listed(assignee="mine") == ["done", "mine late"]
        assert listed(assignee=str(colleague.pk)) == ["theirs"]
        assert listed(due="overdue") == ["mine late"]
        assert listed(due="upcoming", assignee="all") == ["theirs"]
        assert listed(due="none") == ["done"]
        assert listed(done="yes") == ["done"]
        assert listed(done="no", assignee="all") == ["mine late", "theirs"]
        assert "My day" in browser_rep.get(URL).content.decode()

    def test_add_form_defaults_and_rules(self, rep_user, browser_rep):
        customer, other = CustomerFactory(owner=rep_user), CustomerFactory(owner=rep_user)
        form = browser_rep.get(f"{URL}add/")
        assert form.context["adminform"].form.initial["assignee"] == rep_user.pk
        data = change_form_data(form)
        deal = OpportunityFactory(customer=other)
        data.update({"title": "Call", "customer": customer.pk, "opportunity": deal.pk, "kind": "call"})
        refused = browser_rep.post(f"{URL}add/", data)
        assert refused.status_code == 200 and "another customer" in refused.content.decode()
        reader = staff("reader", "Read-only")
        data.update({"opportunity": "", "assignee": reader.pk})
        assert browser_rep.post(f"{URL}add/", data).status_code == 200
        data["assignee"] = rep_user.pk
        assert browser_rep.post(f"{URL}add/", data).status_code == 302
        task = Task.objects.get()
        assert (task.assignee, task.created_by, task.customer) == (rep_user, rep_user, customer)

    def test_assignee_of_another_books_task_can_change_it_but_not_its_customer(self, rep_user, browser_rep):
        other = staff("other", "Sales rep")
        task = TaskFactory(customer=CustomerFactory(owner=other), assignee=rep_user, title="Help out")
        form = browser_rep.get(f"{URL}{task.pk}/change/")
        assert form.status_code == 200
        data = change_form_data(form)
        data["title"] = "Helped"
        assert browser_rep.post(f"{URL}{task.pk}/change/", data).status_code == 302
        task.refresh_from_db()
        assert task.title == "Helped" and task.customer.owner == other

    def test_inlines_on_customer_and_opportunity_pages(self, rep_user, browser_rep):
        customer = CustomerFactory(owner=rep_user)
        deal = OpportunityFactory(customer=customer)
        TaskFactory(customer=customer, opportunity=deal, assignee=rep_user, title="Inline one")
        assert "Inline one" in browser_rep.get(f"/admin/customers/customer/{customer.pk}/change/").content.decode()
        page = browser_rep.get(f"/admin/opportunities/opportunity/{deal.pk}/change/")
        assert "Inline one" in page.content.decode()
        # A task added from the deal's page belongs to its customer and to whoever added it.
        data = change_form_data(page)
        prefix = next(key[: -len("-TOTAL_FORMS")] for key in data if key.endswith("-TOTAL_FORMS") and "task" in key)
        data.update(
            {
                f"{prefix}-TOTAL_FORMS": "2",
                f"{prefix}-1-title": "Added inline",
                f"{prefix}-1-kind": "todo",
                f"{prefix}-1-priority": "normal",
            }
        )
        response = browser_rep.post(f"/admin/opportunities/opportunity/{deal.pk}/change/", data)
        assert response.status_code == 302, response.context["errors"] if response.context else response
        added = Task.objects.get(title="Added inline")
        assert (added.customer, added.opportunity, added.assignee, added.created_by) == (
            customer,
            deal,
            rep_user,
            rep_user,
        )

    def test_import_assigns_to_the_importer(self, rep_user, browser_rep):
        customer = CustomerFactory(owner=rep_user)
        preview = upload(browser_rep, URL, [["customer", "title", "kind"], [customer.pk, "Imported", "call"]])
        confirm(browser_rep, URL, preview)
        task = Task.objects.get(title="Imported")
        assert task.assignee == rep_user and task.created_by == rep_user

    @pytest.mark.parametrize(
        ("file_format", "cells"),
        [
            (
                CSV_FORMAT,
                [
                    ("TRUE", True),
                    ("yes", True),
                    ("1", True),
                    ("t", True),
                    ("是", True),
                    ("False", False),
                    ("0", False),
                    ("F", False),
                ],
            ),
            # Boolean and number cells of a workbook, and text.
            (XLSX_FORMAT, [(True, True), (1, True), ("Y", True), (False, False), (0, False), ("否", False)]),
        ],
    )
    def test_import_reads_date_only_cells_as_true_or_false(self, rep_user, browser_rep, file_format, cells):
        customer = CustomerFactory(owner=rep_user)
        rows = [["customer", "title", "due_at", "due_is_date_only"]]
        rows += [[customer.pk, f"Task {index}", "2026-03-10", cell] for index, (cell, _value) in enumerate(cells)]
        preview = upload(browser_rep, URL, rows, file_format)
        assert not preview.context["result"].has_errors() and not preview.context["result"].invalid_rows
        confirm(browser_rep, URL, preview)
        stored = dict(Task.objects.values_list("title", "due_is_date_only"))
        assert stored == {f"Task {index}": value for index, (_cell, value) in enumerate(cells)}

    def test_import_refuses_a_date_only_cell_that_is_neither_true_nor_false(self, rep_user, browser_rep):
        customer = CustomerFactory(owner=rep_user)
        rows = [["customer", "title", "due_at", "due_is_date_only"], [customer.pk, "Call", "2026-03-10", "maybe"]]
        preview = upload(browser_rep, URL, rows)
        invalid = {row.number: row.field_specific_errors for row in preview.context["result"].invalid_rows}
        assert invalid == {1: {"due_is_date_only": ["Must be a valid boolean."]}}
        assert not Task.objects.exists()
