"""Completing, reopening and snoozing a task, and keeping date-only tasks on their dates: each write with its
history and event, in the caller's transaction."""

import datetime

from django.db import transaction
from django.utils import timezone

from core.rowlocks import holds_keys, lock_keys
from customers.models import Customer
from interactions.models import Interaction
from interactions.serializers import InteractionSerializer
from opportunities.models import Opportunity

from .models import Task, date_only_due_at

# The interaction a completed task logs by default, by the task's kind.
INTERACTION_TYPE_OF_KIND = {
    Task.Kind.CALL: Interaction.Type.CALL,
    Task.Kind.EMAIL: Interaction.Type.EMAIL,
    Task.Kind.MEETING: Interaction.Type.MEETING,
    Task.Kind.TODO: Interaction.Type.OTHER,
}


class TaskStateError(Exception):
    """The task is not in the state the change needs (completing a done task, reopening an open one)."""


def hold_parents(tasks):
    """Hold the customers, then the deals, that ``tasks`` point at (``FOR KEY SHARE``, ``rowlocks.lock_keys``),
    before the tasks are locked for a change; the (customer id, deal id) pairs held, for ``hold_moved_parents``
    (None on SQLite, whose writers queue: nothing is held there).

    A customer's delete locks the customer, then its deals, then its tasks. Completing a task locks the task,
    and the interaction it logs has its foreign key to the customer checked at COMMIT, which locks the customer
    then: in that order, the two deadlocked. Held first, with the lock that check takes, a delete under way is
    waited for and its task then found gone; a delete that comes after waits for the change.
    """
    if not holds_keys(tasks.db):
        return None
    held = set(tasks.values_list("customer_id", "opportunity_id"))
    _hold(held)
    return held


def hold_moved_parents(task, held):
    """Hold ``task``'s customer and deal too, now that it is locked, if an update committed since ``hold_parents``
    read it (``held``, what it returned) moved it to others.

    Its new customer would otherwise be locked only by the foreign key's check at COMMIT, after the task: a delete
    of that customer begun meanwhile, waiting for the task, would deadlock with that check. Held now, such a
    delete waits for the change; one begun before (the customer locked, waiting for the task) still meets this
    hold in a deadlock, answered as a conflict (``rowlocks.is_deadlock``), nothing of it written.
    """
    if held is not None and (task.customer_id, task.opportunity_id) not in held:
        _hold({(task.customer_id, task.opportunity_id)})


def _hold(parents):
    """Hold the customers, then the deals, of ``parents`` ((customer id, deal id) pairs), in one query."""
    lock_keys(
        Customer.objects.filter(pk__in={customer for customer, _deal in parents}),
        Opportunity.objects.filter(pk__in={deal for _customer, deal in parents if deal is not None}),
    )


def complete_task(
    task, *, user, outcome=None, log_interaction=False, interaction_type=None, occurred_at=None, request=None
):
    """Mark ``task`` done (now), keep ``outcome``, and optionally log an interaction with its customer.

    The interaction goes through the interactions API's own serializer (its
    validation, its history and event), in the same transaction as the task's
    change. Returns the logged interaction, or None.
    """
    if task.done_at is not None:
        raise TaskStateError("The task is already done; reopen it first.")
    with transaction.atomic():
        task.done_at = timezone.now()
        fields = ["done_at", "updated_at"]
        if outcome is not None:
            task.outcome = outcome
            fields.append("outcome")
        task.save(update_fields=fields)
        if not log_interaction:
            return None
        data = {
            "customer_id": task.customer_id,
            "interaction_type": interaction_type or INTERACTION_TYPE_OF_KIND.get(task.kind, Interaction.Type.OTHER),
            "notes": outcome or task.title,
        }
        if occurred_at is not None:
            data["occurred_at"] = occurred_at
        serializer = InteractionSerializer(data=data, context={"request": request})
        serializer.is_valid(raise_exception=True)
        return serializer.save(created_by=user)


def reopen_task(task):
    if task.done_at is None:
        raise TaskStateError("The task is not done.")
    task.done_at = None
    task.save(update_fields=["done_at", "updated_at"])


def keep_due_dates_of(*, user, old_zone, new_zone):
    """Keep ``user``'s open date-only tasks on their dates when their time zone changes from ``old_zone`` to
    ``new_zone``: each re-stored as 00:00 of its date in the new zone, with its history and event.

    Connected to ``core.models.time_zone_changed`` (every save of a user's preferences that changes their
    zone, in its transaction). Returns the number of tasks changed.
    """
    tasks = Task.objects.filter(assignee=user, done_at__isnull=True)
    return tasks.keep_due_dates(old_zone=old_zone, new_zone=new_zone)


def _time_zone_changed(sender, *, user, old_zone, new_zone, **kwargs):
    keep_due_dates_of(user=user, old_zone=old_zone, new_zone=new_zone)


def snooze_task(task, *, days=1):
    """Move ``task`` ``days`` later: from when it is due, or from now when it has no due date or is past due.

    Days are whole days in its assignee's time zone: a date-only task's 00:00 stays 00:00, and a task due at
    09:00 is due at 09:00 a day later across a DST change (a time the clocks skip that day becomes the time
    they jumped to).
    """
    now = timezone.now()
    zone = task.zone
    if task.due_is_date_only and task.due_at is not None:
        day = max(task.due_at.astimezone(zone).date(), now.astimezone(zone).date())
        task.due_at = date_only_due_at(day + datetime.timedelta(days=days), zone)
    else:
        base = (task.due_at if task.due_at is not None and task.due_at > now else now).astimezone(zone)
        # The same time of day on the later date; fold=0 reads a skipped time with the offset before the jump.
        later = datetime.datetime.combine(base.date() + datetime.timedelta(days=days), base.timetz().replace(fold=0))
        task.due_at = later.astimezone(datetime.UTC)
    task.save(update_fields=["due_at", "updated_at"])
