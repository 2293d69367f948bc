"""Deliveries to a real receiver: signed per Standard Webhooks, in order, retried on a controlled clock."""

import json
import logging
import shutil
import ssl
import subprocess
import threading
import time
from datetime import timedelta
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest
from django.utils import timezone
from standardwebhooks import Webhook

from core.models import Event
from tests.factories import CustomerFactory
from tests.http_server import LocalHTTPServer
from webhooks import delivery, tasks
from webhooks.models import Delivery, Endpoint

pytestmark = pytest.mark.django_db(transaction=True)


def verified(receiver, secret, index=-1):
    headers, body = receiver.requests[index]
    return Webhook(secret).verify(body, headers)


def test_committed_change_reaches_the_receiver_signed(receiver):
    endpoint = Endpoint.objects.create(url=receiver.url)
    customer = CustomerFactory(name="Signed")
    payload = verified(receiver, endpoint.secret)
    event = Event.objects.get(object_id=customer.pk, type="customer.created")
    assert payload["type"] == "customer.created"
    assert payload["data"]["id"] == event.pk and payload["data"]["data"]["name"] == "Signed"
    headers = receiver.requests[-1][0]
    assert headers["webhook-id"] == f"evt_{event.pk}"
    row = Delivery.objects.get(endpoint=endpoint)
    assert (row.status, row.attempts, row.response_status) == (Delivery.Status.SUCCEEDED, 1, 200)


def test_endpoint_gets_only_the_types_it_wants(receiver):
    Endpoint.objects.create(url=receiver.url, event_types=["customer.deleted"])
    customer = CustomerFactory()
    assert receiver.requests == []
    customer.delete()
    assert [json.loads(body)["type"] for _, body in receiver.requests] == ["customer.deleted"]


def test_fan_out_twice_writes_each_delivery_once(receiver):
    endpoint = Endpoint.objects.create(url=receiver.url)
    CustomerFactory()
    events = list(Event.objects.all())
    delivery.fan_out(events)
    delivery.run_endpoint(endpoint.pk)
    assert Delivery.objects.filter(endpoint=endpoint).count() == len(events)
    assert len(receiver.requests) == len(events)


def _pending(endpoint, now):
    return delivery.send_test_event(endpoint=endpoint, now=now)


def test_500_is_retried_with_backoff_and_later_events_wait(receiver):
    now = timezone.now()
    endpoint = Endpoint.objects.create(url=receiver.url, is_active=True)
    receiver.answer(500)
    first = Delivery.objects.create(
        endpoint=endpoint, message_id="m1", event_type="t", payload={"n": 1}, next_attempt_at=now
    )
    Delivery.objects.create(endpoint=endpoint, message_id="m2", event_type="t", payload={"n": 2}, next_attempt_at=now)
    assert delivery.run_endpoint(endpoint.pk, now=now) == 1
    first.refresh_from_db()
    assert first.status == Delivery.Status.PENDING and first.attempts == 1 and first.response_status == 500
    assert len(first.response_body) == 2000
    wait = first.next_attempt_at - now
    assert timedelta(seconds=4.5) <= wait <= timedelta(seconds=5.5)
    # Not due yet: the second event waits behind the first.
    assert delivery.run_endpoint(endpoint.pk, now=now + timedelta(seconds=1)) == 0
    receiver.answer(200)
    assert delivery.run_endpoint(endpoint.pk, now=now + timedelta(seconds=6)) == 2
    assert [json.loads(body)["n"] for _, body in receiver.requests] == [1, 1, 2]


def test_retries_give_up_after_about_a_day(receiver):
    now = timezone.now()
    endpoint = Endpoint.objects.create(url=receiver.url)
    receiver.answer(503)
    row = Delivery.objects.create(endpoint=endpoint, message_id="m", event_type="t", payload={}, next_attempt_at=now)
    waits = []
    for _ in range(7):
        delivery.run_endpoint(endpoint.pk, now=now)
        row.refresh_from_db()
        if row.next_attempt_at:
            waits.append(row.next_attempt_at - now)
            now = row.next_attempt_at
    assert row.status == Delivery.Status.FAILED and row.attempts == 7
    for wait, base in zip(waits, delivery.RETRY_DELAYS, strict=True):
        assert base * 0.9 <= wait <= base * 1.1
    assert timedelta(hours=15) < sum(waits, timedelta()) < timedelta(hours=20)


def test_4xx_is_not_retried_but_408_409_are(receiver):
    now = timezone.now()
    endpoint = Endpoint.objects.create(url=receiver.url)
    receiver.answer(400)
    row = Delivery.objects.create(endpoint=endpoint, message_id="a", event_type="t", payload={}, next_attempt_at=now)
    delivery.run_endpoint(endpoint.pk, now=now)
    row.refresh_from_db()
    assert row.status == Delivery.Status.FAILED and row.attempts == 1
    for code in (408, 409):
        receiver.answer(code)
        row = Delivery.objects.create(
            endpoint=endpoint, message_id=f"c{code}", event_type="t", payload={}, next_attempt_at=now
        )
        delivery.run_endpoint(endpoint.pk, now=now)
        row.refresh_from_db()
        assert row.status == Delivery.Status.PENDING and row.next_attempt_at > now
        row.status = Delivery.Status.FAILED
        row.save()


def test_a_redirect_is_not_followed_retried_and_its_target_named(receiver):
    now = timezone.now()
    endpoint = Endpoint.objects.create(url=receiver.url)
    receiver.answer((308, {"Location": "https://hooks.example.com/new"}, 0), (302, {}, 0))
    first = Delivery.objects.create(endpoint=endpoint, message_id="a", event_type="t", payload={}, next_attempt_at=now)

    delivery.run_endpoint(endpoint.pk, now=now)

    first.refresh_from_db()
    assert first.status == Delivery.Status.PENDING and first.next_attempt_at > now
    assert first.response_status == 308
    assert first.error == (
        "The receiver redirected to https://hooks.example.com/new; redirects are not followed: "
        "change the endpoint's URL."
    )
    assert len(receiver.requests) == 1  # not followed
    first.status = Delivery.Status.FAILED
    first.save()
    second = Delivery.objects.create(endpoint=endpoint, message_id="b", event_type="t", payload={}, next_attempt_at=now)
    delivery.run_endpoint(endpoint.pk, now=now)
    second.refresh_from_db()
    assert second.status == Delivery.Status.PENDING
    assert second.error == "The receiver answered a redirect; redirects are not followed: change the endpoint's URL."


def test_429_honours_retry_after(receiver):
    now = timezone.now()
    endpoint = Endpoint.objects.create(url=receiver.url)
    receiver.answer((429, {"Retry-After": "120"}, 0))
    row = Delivery.objects.create(endpoint=endpoint, message_id="m", event_type="t", payload={}, next_attempt_at=now)
    delivery.run_endpoint(endpoint.pk, now=now)
    row.refresh_from_db()
    assert row.next_attempt_at == now + timedelta(seconds=120)


def test_410_disables_the_endpoint(receiver):
    now = timezone.now()
    endpoint = Endpoint.objects.create(url=receiver.url)
    receiver.answer(410)
    Delivery.objects.create(endpoint=endpoint, message_id="m", event_type="t", payload={}, next_attempt_at=now)
    delivery.run_endpoint(endpoint.pk, now=now)
    endpoint.refresh_from_db()
    assert endpoint.is_active is False and "410" in endpoint.disabled_reason
    CustomerFactory()
    assert len(receiver.requests) == 1


def test_timeout_is_logged_and_retried(receiver):
    now = timezone.now()
    endpoint = Endpoint.objects.create(url=receiver.url)
    receiver.answer((200, {}, 1.5))
    row = Delivery.objects.create(endpoint=endpoint, message_id="m", event_type="t", payload={}, next_attempt_at=now)
    delivery.run_endpoint(endpoint.pk, now=now)
    row.refresh_from_db()
    assert row.status == Delivery.Status.PENDING and row.response_status is None and "Timed out" in row.error


def test_endpoint_failing_for_days_is_disabled(receiver):
    now = timezone.now()
    endpoint = Endpoint.objects.create(url=receiver.url)
    receiver.answer(500)
    Delivery.objects.create(endpoint=endpoint, message_id="m", event_type="t", payload={}, next_attempt_at=now)
    delivery.run_endpoint(endpoint.pk, now=now)
    endpoint.refresh_from_db()
    assert endpoint.failing_since == now and endpoint.is_active
    later = now + timedelta(days=3, seconds=1)
    Delivery.objects.filter(endpoint=endpoint).update(next_attempt_at=later)
    delivery.run_endpoint(endpoint.pk, now=later)
    endpoint.refresh_from_db()
    assert endpoint.is_active is False and "3 days" in endpoint.disabled_reason


def test_rotation_sends_both_signatures_until_the_old_secret_expires(receiver):
    now = timezone.now()
    endpoint = Endpoint.objects.create(url=receiver.url)
    old = endpoint.secret
    new = delivery.rotate_secret(endpoint=endpoint, now=now)
    delivery.send_test_event(endpoint=endpoint, now=now)
    assert verified(receiver, old)["type"] == "webhook.test"
    assert verified(receiver, new)["type"] == "webhook.test"
    assert len(receiver.requests[-1][0]["webhook-signature"].split(" ")) == 2
    endpoint.refresh_from_db()
    assert endpoint.signing_secrets(now + timedelta(hours=25)) == [new]


def test_replay_sends_the_same_message_again(receiver):
    endpoint = Endpoint.objects.create(url=receiver.url)
    sent = delivery.send_test_event(endpoint=endpoint)
    assert delivery.replay(deliveries=Delivery.objects.filter(pk=sent.pk)) == 1
    assert len(receiver.requests) == 2
    assert receiver.requests[0][0]["webhook-id"] == receiver.requests[1][0]["webhook-id"] == sent.message_id


def test_a_replay_for_a_disabled_endpoint_waits_until_it_is_active_again(receiver):
    endpoint = Endpoint.objects.create(url=receiver.url)
    sent = delivery.send_test_event(endpoint=endpoint)
    Endpoint.objects.filter(pk=endpoint.pk).update(is_active=False)
    assert delivery.replay(deliveries=Delivery.objects.filter(pk=sent.pk)) == 1
    assert len(receiver.requests) == 1
    assert Delivery.objects.get(pk=sent.pk).status == Delivery.Status.PENDING
    Endpoint.objects.filter(pk=endpoint.pk).update(is_active=True)
    delivery.run_endpoint(endpoint.pk)
    assert len(receiver.requests) == 2


def test_run_twice_sends_once(receiver):
    endpoint = Endpoint.objects.create(url=receiver.url)
    now = timezone.now()
    Delivery.objects.create(endpoint=endpoint, message_id="m", event_type="t", payload={}, next_attempt_at=now)
    delivery.run_endpoint(endpoint.pk, now=now)
    delivery.run_endpoint(endpoint.pk, now=now)
    assert len(receiver.requests) == 1


def test_disabling_an_endpoint_tells_once_through_endpoint_disabled(receiver, caplog):
    now = timezone.now()
    endpoint = Endpoint.objects.create(url=receiver.url)
    receiver.answer(410)
    Delivery.objects.create(endpoint=endpoint, message_id="m", event_type="t", payload={}, next_attempt_at=now)
    with caplog.at_level("WARNING", logger="crm.webhooks"):
        delivery.run_endpoint(endpoint.pk, now=now)
        # Already off: disabling it again tells nobody again.
        delivery.disable_endpoint(endpoint=Endpoint.objects.get(pk=endpoint.pk), reason="Again.")
    notices = [record for record in caplog.records if record.funcName == "endpoint_disabled"]
    assert len(notices) == 1 and "410" in notices[0].getMessage()
    assert Endpoint.objects.get(pk=endpoint.pk).disabled_reason == "The receiver answered 410 Gone."


def test_managers_are_notified_once_when_an_endpoint_is_disabled(
    receiver, django_capture_on_commit_callbacks, mailoutbox
):
    from django.contrib.auth.models import Group

    from notifications.models import Notification
    from tests.factories import ManagerFactory, StaffFactory, UserFactory

    manager, root = ManagerFactory(username="boss"), StaffFactory(username="root")
    ManagerFactory(username="gone", is_active=False)
    UserFactory(username="rep").groups.add(Group.objects.get(name="Sales rep"))
    now = timezone.now()
    endpoint = Endpoint.objects.create(url=receiver.url)
    receiver.answer(410)
    Delivery.objects.create(endpoint=endpoint, message_id="m", event_type="t", payload={}, next_attempt_at=now)

    with django_capture_on_commit_callbacks(execute=True):
        delivery.run_endpoint(endpoint.pk, now=now)
        delivery.disable_endpoint(endpoint=Endpoint.objects.get(pk=endpoint.pk), reason="Again.")

    notices = Notification.objects.filter(kind="webhook_disabled")
    assert sorted(notice.recipient.username for notice in notices) == ["boss", "root"]
    assert all(receiver.url in notice.title and "410" in notice.body for notice in notices)
    assert notices[0].url == f"/admin/webhooks/endpoint/{endpoint.pk}/change/"
    assert sorted(address for message in mailoutbox for address in message.to) == [manager.email, root.email]


class _Trickle(BaseHTTPRequestHandler):
    """A receiver that answers a byte at a time, each well within the read timeout, for about 8 seconds."""

    def do_POST(self):
        self.rfile.read(int(self.headers.get("Content-Length", 0)))
        try:
            for byte in b"HTTP/1.1 200 OK\r\n" + b"X-Slow: yes\r\n" * 3:
                self.wfile.write(bytes([byte]))
                self.wfile.flush()
                time.sleep(0.15)
        except OSError:  # the CRM hung up
            pass

    def log_message(self, *args):
        pass


def _tls_server(handler, tmp_path, monkeypatch):
    """``handler`` served over TLS, with a certificate for 127.0.0.1 that the CRM's default context trusts."""
    if shutil.which("openssl") is None:
        pytest.skip("needs the openssl command")
    cert, key = tmp_path / "cert.pem", tmp_path / "key.pem"
    subprocess.run(
        ["openssl", "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "1", "-subj", "/CN=127.0.0.1"]
        + ["-addext", "subjectAltName=IP:127.0.0.1", "-keyout", str(key), "-out", str(cert)],
        check=True,
        capture_output=True,
    )
    monkeypatch.setenv("SSL_CERT_FILE", str(cert))
    server = ThreadingHTTPServer(("127.0.0.1", 0), handler)
    server.daemon_threads = True
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    context.load_cert_chain(cert, key)
    server.socket = context.wrap_socket(server.socket, server_side=True)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    return server, f"https://127.0.0.1:{server.server_address[1]}/hook"


@pytest.mark.parametrize("scheme", ["http", "https"])
def test_a_receiver_trickling_its_answer_is_cut_off_at_the_timeouts(settings, tmp_path, monkeypatch, scheme):
    # Each byte arrives within the read timeout, so a per-read timeout never fires: without a bound on
    # the whole attempt, a receiver could hold a worker thread for as long as it likes, past the claim
    # on the delivery, when another run would send the same delivery again beside it.
    settings.WEBHOOKS_ALLOW_PRIVATE = True
    settings.WEBHOOKS_CONNECT_TIMEOUT, settings.WEBHOOKS_READ_TIMEOUT = 0.5, 0.5
    if scheme == "https":
        server, url = _tls_server(_Trickle, tmp_path, monkeypatch)

        def close():
            server.shutdown()
            server.server_close()

    else:
        local = LocalHTTPServer(_Trickle)
        url, close = local.url, local.close
    try:
        now = timezone.now()
        endpoint = Endpoint.objects.create(url=url)
        row = Delivery.objects.create(
            endpoint=endpoint, message_id="m", event_type="t", payload={}, next_attempt_at=now
        )
        started = time.monotonic()
        delivery.run_endpoint(endpoint.pk, now=now)
        # Cut at 1 s (the two timeouts); a loaded machine may take some seconds more, the trickle at least 8.
        assert time.monotonic() - started < 5
    finally:
        close()
    row.refresh_from_db()
    assert row.status == Delivery.Status.PENDING and row.response_status is None and row.error == "Timed out."
    assert row.attempts == 1 and row.next_attempt_at > now


class _NulAnswer(BaseHTTPRequestHandler):
    """A receiver whose answer carries NUL characters (a binary or UTF-16 body), which PostgreSQL text cannot hold."""

    def do_POST(self):
        self.rfile.read(int(self.headers.get("Content-Length", 0)))
        self.send_response(200)
        self.send_header("Content-Type", "text/plain; charset=utf-16")
        self.end_headers()
        self.wfile.write("ok, 收到".encode("utf-16"))

    def log_message(self, *args):
        pass


def test_an_answer_with_nul_characters_is_logged_and_the_delivery_succeeds(settings):
    settings.WEBHOOKS_ALLOW_PRIVATE = True
    server = LocalHTTPServer(_NulAnswer)
    try:
        endpoint = Endpoint.objects.create(url=server.url)
        sent = delivery.send_test_event(endpoint=endpoint)
    finally:
        server.close()
    sent.refresh_from_db()
    assert (sent.status, sent.attempts, sent.response_status) == (Delivery.Status.SUCCEEDED, 1, 200)
    assert "\x00" not in sent.response_body and "o" in sent.response_body


@pytest.mark.parametrize("status", [200, 500, 410])
def test_a_delivery_whose_endpoint_is_deleted_while_it_is_sent_ends_quietly(
    receiver, status, caplog, django_capture_on_commit_callbacks
):
    now = timezone.now()
    endpoint = Endpoint.objects.create(url=receiver.url)
    Delivery.objects.create(endpoint=endpoint, message_id="m", event_type="t", payload={}, next_attempt_at=now)
    # A manager deletes the endpoint (and so, by cascade, its deliveries) while the receiver answers.
    receiver.meanwhile = lambda: Endpoint.objects.get(pk=endpoint.pk).delete()
    receiver.answer(status)
    with caplog.at_level("DEBUG", logger="crm.webhooks"), django_capture_on_commit_callbacks() as enqueued:
        # The job itself, run here: its error would be raised, not logged by the worker.
        attempted = tasks.deliver_endpoint.call_local(endpoint.pk)
    assert attempted == 1
    # Nothing written back into no row, nothing made again, no retry of it (nor of its endpoint) scheduled.
    assert not Endpoint.objects.exists() and not Delivery.objects.exists()
    assert enqueued == []
    assert not [record for record in caplog.records if record.levelno >= logging.WARNING]
    assert any("deleted meanwhile" in record.getMessage() for record in caplog.records)
