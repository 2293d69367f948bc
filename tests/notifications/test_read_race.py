"""Marking a notification read while another request deletes it, or marks it read too.

The mark locks the notification before it reads it: a delete under way is waited for, then the notification is
read as gone (a 404 in the envelope), not saved into no row (a 500); a mark under way is waited for, and the
first time it was read is kept. Two connections at once (a thread each): PostgreSQL (SQLite runs one writer at a
time, ``core/sqlite``).
"""

import pytest
from django.db import connection

from notifications.models import Notification
from notifications.services import notify
from tests.concurrency import in_turn, while_deleting

from .test_api import client_for, rep

pytestmark = [
    pytest.mark.django_db(transaction=True),
    pytest.mark.skipif(
        connection.vendor != "postgresql", reason="two connections at once: PostgreSQL (SQLite serialises writers)"
    ),
]


def a_rep_with_a_notification():
    user = rep("ann")
    [notification] = notify(user, "task.reminder", "Call Bob")
    return user, notification


def test_marking_a_notification_read_while_it_is_deleted_answers_404():
    user, notification = a_rep_with_a_notification()
    api, answers = client_for(user), []

    errors = while_deleting(
        lambda row: row.delete(),
        notification,
        lambda: answers.append(api.post(f"/api/notifications/{notification.pk}/read")),
    )

    assert not errors
    [answer] = answers
    assert answer.status_code == 404, answer.content
    assert answer.json()["success"] is False
    assert not Notification.objects.exists()


def test_two_marks_at_once_keep_the_first_time_it_was_read():
    user, notification = a_rep_with_a_notification()
    first, second, answers = client_for(user), client_for(user), []
    url = f"/api/notifications/{notification.pk}/read"

    errors = in_turn(lambda: answers.append(first.post(url)), lambda: answers.append(second.post(url)), atomic=False)

    assert not errors
    assert [answer.status_code for answer in answers] == [200, 200]
    read_first, read_again = (answer.json()["data"]["read_at"] for answer in answers)
    assert read_again == read_first
    assert Notification.objects.get().read_at.isoformat().replace("+00:00", "Z") == read_first
