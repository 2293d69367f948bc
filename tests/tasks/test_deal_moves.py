"""A deal given to another customer takes its tasks along: a task's deal is one of its customer's, and the deal's
``next_task`` and the tasks list agree on who sees a task."""

import pytest

from core.changesets import Changeset, undo
from tasks.models import Task
from tests.factories import CustomerFactory, OpportunityFactory, TaskFactory, member

from .conftest import client_of

pytestmark = pytest.mark.django_db


@pytest.fixture
def moved():
    """A deal of rep A's customer with an open task of A's, given by a manager to rep B's customer (a batch, so a
    changeset): (the deal, its task, rep B, the manager, the batch's answer)."""
    rep_a, rep_b = member("a", "Sales rep"), member("b", "Sales rep")
    manager = member("boss", "Sales manager")
    deal = OpportunityFactory(customer=CustomerFactory(owner=rep_a), title="Deal")
    task = TaskFactory(customer=deal.customer, opportunity=deal, assignee=rep_a, title="Plan of A")
    theirs = CustomerFactory(owner=rep_b)
    answer = client_of(manager).post(
        "/api/opportunities/batch",
        {"update": [{"id": deal.pk, "customer_id": theirs.pk}]},
        format="json",
    )
    assert answer.status_code == 200, answer.content
    return deal, task, rep_b, manager, answer


def test_the_tasks_of_a_deal_given_to_another_customer_follow_it(moved):
    deal, task, rep_b, _manager, _answer = moved
    deal.refresh_from_db()

    task.refresh_from_db()
    assert task.customer_id == deal.customer_id
    assert task.history.first().customer_id == deal.customer_id and task.history.first().history_type == "~"
    # What the new customer's rep is shown of the deal's next step is a task of their list.
    api = client_of(rep_b)
    next_task = api.get(f"/api/opportunities/{deal.pk}").json()["data"]["next_task"]
    listed = [row["id"] for row in api.get("/api/tasks").json()["data"]]
    assert next_task["id"] == task.pk and task.pk in listed


def test_undoing_the_move_puts_the_deal_and_its_tasks_back(moved):
    deal, task, _rep_b, manager, _answer = moved
    changeset = Changeset.objects.get(kind="batch")
    assert {row.model for row in changeset.rows.all()} == {"opportunities.opportunity", "tasks.task"}

    undo(changeset, manager)

    deal.refresh_from_db()
    assert Task.objects.get(pk=task.pk).customer_id == deal.customer_id == task.customer_id
