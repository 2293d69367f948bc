"""The admin: the unread count in the header, each user's own notifications, marking them read."""

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext
from django.urls import reverse

from notifications.models import Notification
from notifications.services import notify
from tests.core.admin.helpers import staff

pytestmark = pytest.mark.django_db

CHANGELIST = "admin:notifications_notification_changelist"


def test_the_header_shows_the_users_unread_count():
    rep, client = staff("rep", "Sales rep")
    other, _ = staff("other", "Sales rep")
    notify([rep, other], "k", "One")
    notify(rep, "k", "Two")
    Notification.objects.filter(recipient=rep, title="One").update(read_at="2026-01-01T00:00Z")
    notify(rep, "k", "Three")

    page = client.get(reverse("admin:index")).content.decode()
    assert 'id="unread-notifications"' in page
    assert "2 unread notifications" in page


def test_the_header_count_is_one_query():
    rep, client = staff("rep", "Sales rep")
    notify(rep, "k", "One")
    with CaptureQueriesContext(connection) as counted:
        client.get(reverse("admin:index"))
    count_queries = [q["sql"] for q in counted.captured_queries if "notifications_notification" in q["sql"]]
    assert len(count_queries) == 1


def test_the_changelist_lists_only_ones_own_and_marks_them_read():
    rep, client = staff("rep", "Sales rep")
    manager, manager_client = staff("boss", "Sales manager")
    [mine] = notify(rep, "k", "Mine")
    [theirs] = notify(manager, "k", "The manager's")

    page = client.get(reverse(CHANGELIST)).content.decode()
    assert "Mine" in page and "The manager&#x27;s" not in page and "The manager's" not in page

    # Selecting another user's notification marks nothing of theirs.
    client.post(reverse(CHANGELIST), {"action": "mark_read", "_selected_action": [mine.pk, theirs.pk], "index": "0"})
    mine.refresh_from_db()
    theirs.refresh_from_db()
    assert mine.read_at is not None and theirs.read_at is None
    assert client.get(reverse("admin:notifications_notification_change", args=[theirs.pk])).status_code == 302
