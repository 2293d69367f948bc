"""``/api/notifications``: each user's own notifications, paged in the envelope, and marking them read."""

import pytest
from django.contrib.auth.models import Group
from django.core import mail
from django.db import transaction
from knox.models import get_token_model
from rest_framework.test import APIClient

from notifications.models import Notification
from notifications.services import notify
from tests.factories import ManagerFactory, UserFactory

pytestmark = pytest.mark.django_db


def rep(username):
    user = UserFactory(username=username)
    user.groups.add(Group.objects.get(name="Sales rep"))
    return user


def client_for(user):
    client = APIClient()
    _, token = get_token_model().objects.create(user)
    client.credentials(HTTP_AUTHORIZATION=f"Bearer {token}")
    return client


def test_notify_creates_one_per_user_and_each_sees_only_their_own():
    a, b, manager = rep("a"), rep("b"), ManagerFactory(username="boss")
    notify([a, b], "test.kind", "Hello", "Body", url="/admin/")
    notify(manager, "webhook.disabled", "Endpoint off")

    for user, titles in [(a, ["Hello"]), (b, ["Hello"]), (manager, ["Endpoint off"])]:
        body = client_for(user).get("/api/notifications").json()
        assert body["success"] is True
        assert [row["title"] for row in body["data"]] == titles
        assert body["meta"]["count"] == len(titles)
    row = client_for(a).get("/api/notifications").json()["data"][0]
    assert row == {
        "id": row["id"],
        "kind": "test.kind",
        "title": "Hello",
        "body": "Body",
        "url": "/admin/",
        "created_at": row["created_at"],
        "read_at": None,
        "is_read": False,
    }


def test_a_manager_cannot_read_or_mark_a_reps_notification():
    a, manager = rep("a"), ManagerFactory(username="boss")
    [theirs] = notify(a, "k", "Private")
    client = client_for(manager)

    assert client.get(f"/api/notifications/{theirs.pk}").status_code == 404
    assert client.post(f"/api/notifications/{theirs.pk}/read").status_code == 404
    assert client.post("/api/notifications/read-all").json()["data"] == {"marked": 0}
    theirs.refresh_from_db()
    assert theirs.read_at is None


def test_mark_one_read_then_unread_filter():
    a = rep("a")
    first, second = notify([a], "k", "One") + notify([a], "k", "Two")
    client = client_for(a)

    answer = client.post(f"/api/notifications/{first.pk}/read")
    assert answer.status_code == 200
    assert answer.json()["data"]["is_read"] is True
    read_at = answer.json()["data"]["read_at"]
    # Reading it again keeps the first time.
    assert client.post(f"/api/notifications/{first.pk}/read").json()["data"]["read_at"] == read_at

    unread = client.get("/api/notifications", {"unread": "true"}).json()["data"]
    assert [row["id"] for row in unread] == [second.pk]
    read = client.get("/api/notifications", {"unread": "false"}).json()["data"]
    assert [row["id"] for row in read] == [first.pk]


def test_read_all_marks_only_the_users_unread_ones():
    a, b = rep("a"), rep("b")
    notify([a, b], "k", "One")
    notify([a], "k", "Two")

    assert client_for(a).post("/api/notifications/read-all").json()["data"] == {"marked": 2}
    assert client_for(a).post("/api/notifications/read-all").json()["data"] == {"marked": 0}
    assert Notification.objects.for_user(b).unread().count() == 1


def test_read_only_users_may_mark_their_own_read():
    reader = UserFactory(username="reader")
    reader.groups.add(Group.objects.get(name="Read-only"))
    [mine] = notify(reader, "k", "Mine")

    assert client_for(reader).post(f"/api/notifications/{mine.pk}/read").status_code == 200


@pytest.mark.parametrize(
    ("query", "status"),
    [({"unread": "maybe"}, 400), ({"page": "0"}, 400), ({"page_size": "x"}, 400), ({"unread": ""}, 200)],
)
def test_bad_query_parameters_are_400_in_the_envelope(query, status):
    response = client_for(rep("a")).get("/api/notifications", query)
    assert response.status_code == status
    assert response.json()["success"] is (status == 200)


def test_unknown_and_malformed_ids_are_404():
    client = client_for(rep("a"))
    for path in ["/api/notifications/999999/read", "/api/notifications/abc/read", "/api/notifications/1%00/read"]:
        response = client.post(path)
        assert response.status_code == 404, path
        assert response.json()["success"] is False


def test_paging_and_cursor():
    a = rep("a")
    for number in range(5):
        notify(a, "k", f"N{number}")
    client = client_for(a)
    first = client.get("/api/notifications", {"page_size": 2}).json()
    assert [row["title"] for row in first["data"]] == ["N4", "N3"]
    following = client.get("/api/notifications", {"page_size": 2, "cursor": first["meta"]["next_cursor"]}).json()
    assert [row["title"] for row in following["data"]] == ["N2", "N1"]


@pytest.mark.parametrize("rows", [1, 30])
def test_the_list_costs_the_same_queries_however_many_rows(django_assert_num_queries, rows):
    a = rep("a")
    for number in range(rows):
        notify(a, "k", f"N{number}")
    client = client_for(a)
    # The token with the user and their role, then the page (counted only when it is full).
    with django_assert_num_queries(2):
        assert len(client.get("/api/notifications").json()["data"]) == rows


def test_notify_by_email_sends_after_commit_only(mailoutbox, django_capture_on_commit_callbacks):
    a = rep("a")
    with django_capture_on_commit_callbacks(execute=True), transaction.atomic():
        notify(a, "k", "Kept", "text", email=True)
    assert [message.subject for message in mailoutbox] == ["Kept"]
    assert mailoutbox[0].to == [a.email]

    with django_capture_on_commit_callbacks(execute=True) as callbacks:
        with pytest.raises(RuntimeError), transaction.atomic():
            notify(a, "k", "Rolled back", email=True)
            raise RuntimeError
    assert callbacks == []
    assert len(mail.outbox) == 1
    assert not Notification.objects.filter(title="Rolled back").exists()


@pytest.mark.parametrize("value", ["\x00", "a" * 65, "task.reminder"])
def test_the_kind_filter_takes_any_text_without_a_server_error(value):
    a = rep("a")
    notify(a, "task.reminder", "One")
    response = client_for(a).get("/api/notifications", {"kind": value})
    assert response.status_code in (200, 400)
    assert response.json()["success"] is (response.status_code == 200)
    if value == "task.reminder":
        assert len(response.json()["data"]) == 1
