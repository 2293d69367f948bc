"""Reminders and digests claimed while their task or recipient is being deleted, or the task completed (two
connections at once: PostgreSQL; SQLite runs one writer at a time, ``core/sqlite``).

A claim is the insert of its delivery row, in the transaction that writes the notification: its foreign keys'
check, at the COMMIT, waits for the delete under way, then fails, and the claim is dropped as one another run took
(``IntegrityError``): nothing sent, written or raised. A reminder's claim locks its task first, so a completion
under way is waited for, and the task it leaves is not reminded of.
"""

import pytest
from django.db import connection

from notifications.models import Notification
from reminders import services
from reminders.models import DigestDelivery, ReminderDelivery
from tasks.services import complete_task
from tests.concurrency import in_turn, while_deleting

from .test_reminders import NOW, minutes, rep, task

pytestmark = [
    pytest.mark.django_db(transaction=True),
    pytest.mark.skipif(
        connection.vendor != "postgresql", reason="two connections at once: PostgreSQL (SQLite serialises writers)"
    ),
]


def deleted(record):
    record.delete()


def test_a_reminder_of_a_task_being_deleted_is_not_sent(smtp_server):
    item, sent = task(rep(), NOW + minutes(30), reminder_lead_minutes=30), []

    errors = while_deleting(deleted, item, lambda: sent.append(services.send_due_reminders(NOW)))

    assert not errors
    assert sent == [0]
    assert not ReminderDelivery.objects.exists() and not Notification.objects.exists()
    assert smtp_server.inbox.messages == []


def test_the_digest_day_of_a_user_being_deleted_is_not_recorded(smtp_server, settings):
    # A user with tasks cannot be deleted (``Task.assignee`` protects them): one with none, whose day is recorded.
    settings.CRM_DIGEST_HOUR = 7
    user, sent = rep(daily_digest=True), []

    errors = while_deleting(deleted, user, lambda: sent.append(services.send_digests(NOW)))

    assert not errors
    assert sent == [0]
    assert not DigestDelivery.objects.exists() and not Notification.objects.exists()
    assert smtp_server.inbox.messages == []


def test_a_reminder_of_a_task_being_completed_waits_for_it_and_is_not_sent(smtp_server):
    user = rep()
    item, sent = task(user, NOW + minutes(30), reminder_lead_minutes=30), []

    errors = in_turn(
        lambda: complete_task(type(item).objects.get(pk=item.pk), user=user),
        lambda: sent.append(services.send_due_reminders(NOW)),
        atomic=False,
    )

    assert not errors
    assert sent == [0]
    assert not ReminderDelivery.objects.exists() and not Notification.objects.exists()
    assert smtp_server.inbox.messages == []
