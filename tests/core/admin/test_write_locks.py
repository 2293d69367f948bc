"""How the admin's screens that write outside its shared base lock their records, against the writes of the records
below them: the pipeline board's move of a deal, My day's buttons on a task, the customer page's quick actions.

As in the API (``tests/core/api/test_write_locks.py``): a write pointing a new record at a parent (a task at its
deal, an interaction at its customer) holds the parent ``FOR KEY SHARE``, as its foreign key's check does, until it
commits. A screen that changes a record locks it as its UPDATE does, ``FOR NO KEY UPDATE``, which that lock does not
hold up; a quick action, which adds a record below the customer, holds the customer (and its company, and the deal
it names) as the new record's keys do, as the API's create does. Each still waits for a delete of its record under
way, then answers as for a record gone, writing nothing.

Two connections at once (a thread each): PostgreSQL. SQLite runs one writer at a time (``core/sqlite``).
"""

import datetime
from collections.abc import Callable
from dataclasses import dataclass

import pytest
from django.db import connection
from django.urls import reverse
from django.utils import timezone

from customers.models import Customer
from customers.services import delete_customer
from interactions.models import Interaction
from opportunities.models import Opportunity
from tasks.models import Task
from tests.concurrency import Held, no_waiting_on_locks, pointed_at, while_deleting
from tests.conftest import browser
from tests.factories import CompanyFactory, CustomerFactory, OpportunityFactory, TaskFactory, member

pytestmark = [
    pytest.mark.django_db(transaction=True),
    pytest.mark.skipif(connection.vendor != "postgresql", reason="two connections at once: PostgreSQL"),
]


def stored(record):
    return type(record)._base_manager.filter(pk=record.pk).first()


def counts():
    """The customers, deals, tasks and interactions stored."""
    return tuple(model._base_manager.count() for model in (Customer, Opportunity, Task, Interaction))


def told(response):
    """What the screen tells its user: the board's answer, or the messages and form errors of the page shown."""
    if response["Content-Type"].startswith("application/json"):
        return [response.json()["message"]]
    shown = [str(message) for message in response.context.get("messages", ())]
    form = response.context.get("form")
    return shown + (list(form.non_field_errors()) if form is not None else [])


@dataclass
class Screen:
    """An admin screen's post writing ``record`` (a quick action: adding a record below it), while others point
    records at it (``held``: those records)."""

    record: object
    held: list
    post: Callable
    # What is stored once both have committed, checked against ``expected``.
    stored: Callable
    expected: object
    # What the screen tells when ``record`` was deleted meanwhile, and what is then left (``counts``).
    gone: str
    left: tuple


def a_rep():
    rep = member("rep", "Sales rep", is_staff=True)
    return rep, CustomerFactory(owner=rep, name="Ann", company=CompanyFactory(name="Acme"))


def board_move():
    rep, customer = a_rep()
    deal = OpportunityFactory(customer=customer, title="Deal", stage=Opportunity.Stage.LEAD)
    url = reverse("admin:opportunities_opportunity_board_move")
    data = {"opportunity": deal.pk, "stage": "proposal", "version": stored(deal).updated_at.isoformat()}
    return Screen(
        deal,
        [deal],
        lambda: browser(rep).post(url, data, HTTP_ACCEPT="application/json"),
        lambda: stored(deal).stage,
        Opportunity.Stage.PROPOSAL,
        "That opportunity no longer exists, or is not in your book.",
        (1, 0, 0, 0),
    )


def my_day(action):
    rep, customer = a_rep()
    due = timezone.now() + datetime.timedelta(hours=1)
    task = TaskFactory(customer=customer, assignee=rep, title="Call Ann", due_at=due)
    url = reverse("admin:tasks_task_my_day_act")
    data = {"task": task.pk, "action": action, "version": stored(task).updated_at.isoformat()}

    def outcome():
        current = stored(task)
        return (
            current.done_at is not None,
            current.due_at,
            list(Interaction.objects.values_list("customer_id", flat=True)),
        )

    expected = {
        "done": (True, due, []),
        "log_call": (True, due, [customer.pk]),
        "snooze": (False, due + datetime.timedelta(days=1), []),
    }[action]
    return Screen(
        task,
        # Its customer too: the task is read joined to it (a rep sees the tasks of their customers).
        [customer, task],
        lambda: browser(rep).post(url, data, follow=True),
        outcome,
        expected,
        "That task no longer exists, or is not yours to see.",
        (1, 0, 0, 0),
    )


QUICK = {
    "interaction": (Interaction, {"interaction-interaction_type": "call", "interaction-notes": "Called"}),
    "opportunity": (Opportunity, {"opportunity-title": "Extra trucks", "opportunity-stage": "proposal"}),
    "task": (Task, {"task-title": "Follow up", "task-kind": "call"}),
}


def quick_action(name, on_a_deal=False):
    rep, customer = a_rep()
    model, data = QUICK[name]
    deals = []
    if on_a_deal:
        deals = [OpportunityFactory(customer=customer, title="Deal", stage=Opportunity.Stage.LEAD)]
        data = {**data, "task-opportunity": str(deals[0].pk)}
    url = reverse("admin:customers_customer_quick_action", args=[customer.pk, name])
    return Screen(
        customer,
        [customer.company, customer, *deals],
        lambda: browser(rep).post(url, data, follow=True),
        lambda: list(model.objects.values_list("customer_id", flat=True)),
        [customer.pk],
        "This customer is no longer among the records you may see.",
        (0, 0, 0, 0),
    )


# name -> the screen's write, with the records built in the test's database; and how its record is deleted.
SCREENS = {
    "board move": (board_move, lambda deal: deal.delete()),
    "My day: done": (lambda: my_day("done"), lambda task: task.delete()),
    "My day: log a call": (lambda: my_day("log_call"), lambda task: task.delete()),
    "My day: snooze": (lambda: my_day("snooze"), lambda task: task.delete()),
    "quick interaction": (lambda: quick_action("interaction"), delete_customer),
    "quick opportunity": (lambda: quick_action("opportunity"), delete_customer),
    "quick task": (lambda: quick_action("task"), delete_customer),
    "quick task on a deal": (lambda: quick_action("task", on_a_deal=True), delete_customer),
}


@pytest.mark.parametrize("name", SCREENS)
def test_a_screen_writing_a_record_does_not_wait_for_records_being_pointed_at_it(name):
    # The other transaction holds the records as a write pointing a new record at each does (a task at its deal,
    # an interaction at its customer), until after the screen has answered: with the lock of a DELETE (FOR UPDATE),
    # the screen would wait for it, and give up after 2 s.
    screen = SCREENS[name][0]()

    with pointed_at(*screen.held) as other, no_waiting_on_locks():
        response = screen.post()
        other.commit()

    assert response.status_code == 200, told(response)
    assert screen.stored() == screen.expected, told(response)


@pytest.mark.parametrize("name", SCREENS)
def test_a_screen_waits_for_a_delete_of_its_record_under_way_and_finds_it_gone(name):
    # FOR NO KEY UPDATE (and FOR KEY SHARE) still waits for the FOR UPDATE of a delete: the screen then reads its
    # record as gone, rather than saving it again or pointing a new record at it.
    make, delete = SCREENS[name]
    screen = make()
    answers = []

    errors = while_deleting(delete, screen.record, lambda: answers.append(screen.post()))

    assert not errors
    [answer] = answers
    assert screen.gone in told(answer)
    assert stored(screen.record) is None
    assert counts() == screen.left


def test_a_quick_action_does_not_wait_for_its_customer_company_or_deal_being_saved():
    # Someone else saving the customer, its company and the deal a quick task names, caught before their COMMIT,
    # holds them as their UPDATEs do (FOR NO KEY UPDATE): the quick action, which changes none of them, goes on.
    screen = quick_action("task", on_a_deal=True)
    customer, deal = stored(screen.record), Opportunity.objects.get()

    with Held(lambda: [record.save() for record in (customer.company, customer, deal)]) as other, no_waiting_on_locks():
        response = screen.post()
        other.commit()

    assert response.status_code == 200, told(response)
    assert screen.stored() == screen.expected
    assert Task.objects.get().opportunity_id == deal.pk
