"""Writes of a webhook endpoint (a secret's rotation) or of its deliveries (a test event, a replay) while another
request deletes the endpoint, or rotates its secret too.

A rotation locks the endpoint and reads its secret again before it writes (``delivery.rotate_secret``): a delete
under way is waited for, then the endpoint is read as gone (the API's 404 in the envelope; the admin's action
leaves it out), not saved into no row (a 500); a rotation under way is waited for, and the secret it handed out
keeps signing beside the new one. A write of its deliveries holds the endpoint first, as their foreign key's check
does: a delete under way is waited for, then the endpoint is read as gone. The worker's write of a delivery's
outcome locks the endpoint, then the delivery, as a delete does: a delete begun during its POST is waited for,
then the delivery is read as gone; the dispatch of new events holds the active endpoints before it reads them: one
being deleted is waited for, then left out. Two connections at once (a thread each): PostgreSQL (SQLite runs one
writer at a time, ``core/sqlite``).
"""

import pytest
from django.db import connection, transaction
from django.utils import timezone
from rest_framework.test import APIClient

from core.models import Event
from core.rowlocks import locking
from core.tasks import dispatch_events
from tests.concurrency import Held, Thread, in_turn, waits, while_deleting
from tests.conftest import browser
from tests.factories import CustomerFactory, member
from webhooks import tasks
from webhooks.models import Delivery, Endpoint

pytestmark = [
    pytest.mark.django_db(transaction=True),
    pytest.mark.skipif(
        connection.vendor != "postgresql", reason="two connections at once: PostgreSQL (SQLite serialises writers)"
    ),
]

CHANGELIST = "/admin/webhooks/endpoint/"


def another_client(token):
    client = APIClient()
    client.credentials(HTTP_AUTHORIZATION=f"Bearer {token}")
    return client


def deleted(endpoint):
    endpoint.delete()


def test_rotating_the_secret_of_an_endpoint_being_deleted_answers_404(api, receiver):
    endpoint, answers = Endpoint.objects.create(url=receiver.url), []

    errors = while_deleting(
        deleted, endpoint, lambda: answers.append(api.post(f"/api/webhooks/{endpoint.pk}/rotate-secret"))
    )

    assert not errors
    [answer] = answers
    assert answer.status_code == 404, answer.content
    assert answer.json()["success"] is False
    assert not Endpoint.objects.exists()


@pytest.mark.parametrize("action", ["rotate_secret", "send_test_event"])
def test_the_admins_actions_leave_out_an_endpoint_being_deleted(receiver, action):
    endpoint, answers = Endpoint.objects.create(url=receiver.url), []
    client = browser(member("boss", "Sales manager", is_staff=True))
    data = {"action": action, "_selected_action": [endpoint.pk]}

    errors = while_deleting(deleted, endpoint, lambda: answers.append(client.post(CHANGELIST, data, follow=True)))

    assert not errors
    [answer] = answers
    assert answer.status_code == 200
    assert "New secret of" not in answer.content.decode()
    assert not Endpoint.objects.exists() and not Delivery.objects.exists()


@pytest.mark.parametrize("second", ["api", "admin"])
def test_two_rotations_at_once_keep_the_first_ones_secret_signing(api, token, receiver, second):
    endpoint = Endpoint.objects.create(url=receiver.url)
    rotated = []

    def rotate_by_api(client):
        rotated.append(client.post(f"/api/webhooks/{endpoint.pk}/rotate-secret").json()["data"]["secret"])

    def rotate_in_the_admin():
        client = browser(member("boss", "Sales manager", is_staff=True))
        data = {"action": "rotate_secret", "_selected_action": [endpoint.pk]}
        client.post(CHANGELIST, data)
        rotated.append(Endpoint.objects.get(pk=endpoint.pk).secret)

    then = rotate_in_the_admin if second == "admin" else lambda: rotate_by_api(another_client(token))
    errors = in_turn(lambda: rotate_by_api(api), then, atomic=False)

    assert not errors
    first_secret, second_secret = rotated
    stored = Endpoint.objects.get()
    assert (stored.secret, stored.previous_secret) == (second_secret, first_secret)
    assert first_secret != second_secret


def failed_delivery(endpoint):
    return Delivery.objects.create(
        endpoint=endpoint, message_id="evt_1", event_type="customer.created", payload={}, status=Delivery.Status.FAILED
    )


@pytest.mark.parametrize("action", ["test", "replay one", "replay failed"])
def test_a_write_of_the_deliveries_of_an_endpoint_being_deleted_answers_404(api, receiver, action):
    endpoint, answers = Endpoint.objects.create(url=receiver.url), []
    delivery = failed_delivery(endpoint)
    url, body = {
        "test": (f"/api/webhooks/{endpoint.pk}/test", {}),
        "replay one": (f"/api/webhooks/{endpoint.pk}/deliveries/{delivery.pk}/replay", {}),
        "replay failed": (f"/api/webhooks/{endpoint.pk}/replay", {"since": "2000-01-01T00:00:00Z"}),
    }[action]

    errors = while_deleting(deleted, endpoint, lambda: answers.append(api.post(url, body, format="json")))

    assert not errors
    [answer] = answers
    assert answer.status_code == 404, answer.content
    assert answer.json()["success"] is False
    assert not Endpoint.objects.exists() and not Delivery.objects.exists()


def test_a_delivery_sent_while_its_endpoint_is_being_deleted_waits_then_ends_quietly(receiver):
    now = timezone.now()
    endpoint = Endpoint.objects.create(url=receiver.url)
    Delivery.objects.create(endpoint=endpoint, message_id="m", event_type="t", payload={}, next_attempt_at=now)
    # A manager's delete begun while the receiver answers, held open: under way when the outcome is written.
    delete = Held(lambda: deleted(Endpoint.objects.select_for_update().get(pk=endpoint.pk)))
    receiver.meanwhile = delete.__enter__
    receiver.answer(500)
    worker = Thread(lambda: tasks.deliver_endpoint.call_local(endpoint.pk))
    worker.start()

    # The outcome's write waits for the delete; then it finds no delivery, and ends.
    assert waits(worker)
    delete.commit()

    assert worker.answer() == 1
    assert not Endpoint.objects.exists() and not Delivery.objects.exists()


def test_events_dispatched_while_an_endpoint_is_being_deleted_are_handed_over_without_it(receiver):
    customer = CustomerFactory()  # its event dispatched before there is an endpoint: handed over again below
    Event.objects.update(dispatched_at=None)
    endpoint = Endpoint.objects.create(url=receiver.url)

    errors = while_deleting(deleted, endpoint, lambda: dispatch_events.call_local())

    assert not errors
    assert Event.objects.get(object_id=customer.pk, type="customer.created").dispatched_at is not None
    assert not Endpoint.objects.exists() and not Delivery.objects.exists()
    assert receiver.requests == []


def test_a_delivery_whose_endpoint_is_deleted_as_its_outcome_is_written_ends_quietly_without_a_deadlock(receiver):
    # The endpoint is held by a save (``first``) while a manager's delete queues for it, then the worker comes to
    # write a failed attempt's outcome (the endpoint's failing_since with it). The worker locks the endpoint before
    # the delivery, as the delete does: it waits behind the delete, then finds them gone. (It locked the delivery
    # first, then waited for the endpoint the delete held while the delete waited for that delivery: a deadlock.)
    now = timezone.now()
    endpoint = Endpoint.objects.create(url=receiver.url)
    Delivery.objects.create(endpoint=endpoint, message_id="m", event_type="t", payload={}, next_attempt_at=now)
    receiver.answer(500)
    endpoints = Endpoint.objects.filter(pk=endpoint.pk)

    def delete():
        with transaction.atomic():
            deleted(endpoints.select_for_update().get())

    attempted = []
    errors = in_turn(
        lambda: locking(endpoints).get(),
        delete,
        lambda: attempted.append(tasks.deliver_endpoint.call_local(endpoint.pk)),
        atomic=False,
    )

    assert not errors
    assert attempted == [1]
    assert not Endpoint.objects.exists() and not Delivery.objects.exists()
