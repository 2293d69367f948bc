"""Completing a task (the API's ``complete``, My day's buttons) while its customer is deleted.

A customer's delete locks the customer, then its deals, then its tasks. Completing a task holds its customer
and deal before the task (``tasks.services.hold_parents``): it waits for a delete under way, then finds the task
gone; locking the task first, the interaction it logs locked the customer only at COMMIT (its foreign key's
check), and the two deadlocked. Two connections at once (a thread each): PostgreSQL.
"""

import pytest
from django.db import connection, transaction
from django.db.models.signals import post_save

from customers.models import Customer
from customers.services import delete_customer
from interactions.models import Interaction
from tasks.models import Task
from tests.concurrency import Thread, deadlocked, in_turn, waits, while_deleting
from tests.conftest import browser
from tests.factories import CustomerFactory, OpportunityFactory, TaskFactory, member

from .conftest import client_of

pytestmark = [
    pytest.mark.django_db(transaction=True),
    pytest.mark.skipif(connection.vendor != "postgresql", reason="two connections at once: PostgreSQL"),
]

MY_DAY = "/admin/tasks/task/my-day/"


def completing(task, via):
    """A request of the task's assignee that completes ``task`` and logs a call with its customer: the API's
    ``complete``, or My day's "Log a call" (its redirect followed, to read the message)."""
    if via == "api":
        api = client_of(task.assignee)
        return lambda: api.post(
            f"/api/tasks/{task.pk}/complete", {"log_interaction": True, "interaction_type": "call"}, format="json"
        )
    client = browser(task.assignee)
    data = {"task": task.pk, "action": "log_call", "version": task.updated_at.isoformat()}
    return lambda: client.post(f"{MY_DAY}act/", data, follow=True)


def a_task(with_deal=False):
    rep = member("rep", "Sales rep", is_staff=True)
    customer = CustomerFactory(owner=rep, name="Ann")
    deal = OpportunityFactory(customer=customer, title="Deal") if with_deal else None
    return TaskFactory(customer=customer, opportunity=deal, assignee=rep, title="Call Ann")


@pytest.mark.parametrize("via", ["api", "my day"])
def test_completing_a_task_and_a_delete_of_its_customer_do_not_deadlock(via):
    # The other transaction locks the customer as its delete does, then the task once the completion waits: the
    # completion waits for the customer before it takes the task, so the other takes it, and ends first.
    task = a_task()

    answer, errors = deadlocked(task, task.customer, completing(task, via))

    assert not errors
    assert not isinstance(answer, Exception), answer
    if via == "api":
        assert answer.status_code == 200, answer.json()
        assert answer.json()["data"]["interaction"]["customer_id"] == task.customer_id
    else:
        assert answer.status_code == 200 and "“Call Ann” done, and the call logged." in answer.content.decode()
    assert Task.objects.get(pk=task.pk).done_at is not None
    assert Interaction.objects.get().customer_id == task.customer_id


@pytest.mark.parametrize("with_deal", [False, True], ids=["", "on a deal"])
@pytest.mark.parametrize("via", ["api", "my day"])
def test_a_task_whose_customer_is_being_deleted_is_answered_as_gone(via, with_deal):
    # The delete is under way (the customer locked, its deals and tasks deleted, not committed) when the task is
    # completed: the completion waits for it, then finds the task gone, and writes nothing.
    task = a_task(with_deal)
    answers = []

    errors = while_deleting(delete_customer, task.customer, lambda: answers.append(completing(task, via)()))

    assert not errors
    [answer] = answers
    if via == "api":
        assert answer.status_code == 404
        assert answer.json()["success"] is False
    else:
        assert answer.status_code == 200
        assert "That task no longer exists, or is not yours to see." in answer.content.decode()
    assert not Task.objects.exists()
    assert not Interaction.objects.exists()


@pytest.mark.parametrize("via", ["api", "my day"])
def test_a_task_moved_to_another_customer_while_it_waits_is_completed_holding_its_new_customer(via):
    # The completion holds the task's customer, then waits for the task: an update is moving it to another
    # customer. Once that commits, the completion holds the new customer too, before it writes, so that a delete of
    # the new customer begun meanwhile waits for the completion, then takes the task and its interaction along.
    # Not held, that customer was locked by the interaction's foreign key check at COMMIT, after the task, which
    # the delete (holding the customer) waited for: a deadlock.
    # Neither of My day's guards lets such a completion through from a page as shown, and the test passes them: it
    # reads a rep's task joined to its customer, and so finds a task moved meanwhile gone, where a manager's task is
    # read alone (the completion is a manager's here); and it refuses a task changed since its page showed it, as a
    # move changes it (its post carries the moved task's version, read in the move's own transaction).
    task = a_task()
    rep = task.assignee
    if via == "my day":
        task.assignee = member("boss", "Sales manager", is_staff=True)
        task.save()
    other = CustomerFactory(owner=rep, name="Bob")
    deleting, answers = [], []

    def move():
        client_of(rep).patch(f"/api/tasks/{task.pk}", {"customer_id": other.pk}, format="json")
        task.updated_at = Task.objects.get(pk=task.pk).updated_at

    def delete_other():
        with transaction.atomic():
            delete_customer(Customer.objects.select_for_update().get(pk=other.pk))

    def delete_the_new_customer_meanwhile(sender, instance, **kwargs):
        # The task saved as done, its interaction not yet logged: the delete begins, and waits for a lock.
        if instance.done_at is None or deleting:
            return
        deleting.append(Thread(delete_other))
        deleting[0].start()
        assert waits(deleting[0]), "the delete never waited for the completion"

    post_save.connect(delete_the_new_customer_meanwhile, sender=Task)
    try:
        errors = in_turn(move, lambda: answers.append(completing(task, via)()), atomic=False)
    finally:
        post_save.disconnect(delete_the_new_customer_meanwhile, sender=Task)

    assert not errors
    [answer] = answers
    if via == "api":
        assert answer.status_code == 200, answer.json()
        assert answer.json()["data"]["interaction"]["customer_id"] == other.pk
    else:
        assert answer.status_code == 200 and "“Call Ann” done, and the call logged." in answer.content.decode()
    deleting[0].answer()
    assert not Customer.objects.filter(pk=other.pk).exists()
    assert not Task.objects.exists() and not Interaction.objects.exists()
