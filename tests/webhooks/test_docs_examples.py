"""The receiver examples of docs/webhooks.md, run as they are printed against real signed deliveries.

The JavaScript example runs in the machine's Node (``node``, built-in modules
only), the Python one in this interpreter behind a real HTTP server; the CRM
sends them events through its delivery path (``webhooks.delivery``).
"""

import os
import re
import shutil
import socket
import subprocess
import time
from http.server import BaseHTTPRequestHandler

import pytest
from django.conf import settings
from django.utils import timezone

from tests.factories import CustomerFactory
from tests.http_server import LocalHTTPServer
from webhooks import delivery
from webhooks.models import Delivery, Endpoint

pytestmark = pytest.mark.django_db(transaction=True)

DOC = settings.BASE_DIR / "docs" / "webhooks.md"


def example(language):
    """The one fenced block of ``language`` under "Verifying the signature"."""
    section = DOC.read_text().split("## Verifying the signature", 1)[1].split("\n## ", 1)[0]
    blocks = re.findall(rf"```{language}\n(.*?)```", section, flags=re.S)
    assert len(blocks) == 1, blocks
    return blocks[0]


def free_port():
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


@pytest.fixture
def short_timeouts(settings):
    settings.WEBHOOKS_ALLOW_PRIVATE = True
    settings.WEBHOOKS_CONNECT_TIMEOUT = 2
    settings.WEBHOOKS_READ_TIMEOUT = 5


def deliveries_of(endpoint):
    return list(Delivery.objects.filter(endpoint=endpoint).order_by("id"))


@pytest.fixture
def node_receiver(tmp_path, short_timeouts):
    """The JavaScript example, listening on a free port, with the secret it is started with."""
    node = shutil.which("node") or "/usr/bin/node"
    if not os.path.exists(node):
        pytest.skip("Node is not installed (apt-get install -y nodejs)")
    script = tmp_path / "receiver.js"
    script.write_text(example("js"))
    started = []

    def start(secret):
        port = free_port()
        output = (tmp_path / "node.out").open("w")
        process = subprocess.Popen(
            [node, str(script)],
            env={"PATH": "/usr/bin:/bin", "CRM_WEBHOOK_SECRET": secret, "PORT": str(port)},
            stdout=output,
            stderr=subprocess.STDOUT,
        )
        started.append((process, output))
        deadline = time.monotonic() + 30
        while True:
            assert process.poll() is None, (tmp_path / "node.out").read_text()
            try:
                socket.create_connection(("127.0.0.1", port), timeout=1).close()
                break
            except OSError:
                assert time.monotonic() < deadline, "node did not listen"
                time.sleep(0.1)
        return f"http://127.0.0.1:{port}/hook", lambda: (tmp_path / "node.out").read_text()

    yield start
    for process, output in started:
        process.kill()
        process.wait(10)
        output.close()


def test_the_javascript_example_accepts_our_deliveries_and_refuses_a_wrong_signature(node_receiver):
    secret = Endpoint(url="https://example.com").secret
    url, printed = node_receiver(secret)
    endpoint = Endpoint.objects.create(url=url, secret=secret, event_types=["customer.created"])
    # Signed with another secret: the example must refuse it.
    stranger = Endpoint.objects.create(url=url, event_types=["customer.created"])
    customer = CustomerFactory(name="Node")

    [accepted] = deliveries_of(endpoint)
    assert (accepted.status, accepted.response_status) == (Delivery.Status.SUCCEEDED, 200)
    assert f"customer.created {customer.pk}" in printed()
    [refused] = deliveries_of(stranger)
    assert (refused.status, refused.response_status) == (Delivery.Status.FAILED, 400)
    assert "no matching signature" in refused.response_body


def test_the_javascript_example_accepts_a_delivery_during_a_secret_rotation(node_receiver):
    secret = Endpoint(url="https://example.com").secret
    url, printed = node_receiver(secret)
    endpoint = Endpoint.objects.create(url=url, secret=secret)
    # The receiver still has the old secret: the old signature beside the new one lets it in.
    delivery.rotate_secret(endpoint=endpoint)
    test = delivery.send_test_event(endpoint=endpoint, now=timezone.now())
    delivery.run_endpoint(endpoint.pk)
    test.refresh_from_db()
    assert (test.status, test.response_status) == (Delivery.Status.SUCCEEDED, 200)
    assert "webhook.test undefined" in printed()


class PythonExampleReceiver:
    """A real HTTP server answering with the status the documented ``handle()`` returns."""

    def __init__(self, secret):
        code = example("python").replace('"whsec_..."', repr(secret))
        self.seen, self.queued = set(), []
        self.namespace = {
            "already_seen": lambda message_id: message_id in self.seen or self.seen.add(message_id),
            "enqueue": self.queued.append,
        }
        exec(compile(code, str(DOC), "exec"), self.namespace)  # noqa: S102 - the documented example itself
        handle = self.namespace["handle"]

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self):
                body = self.rfile.read(int(self.headers.get("Content-Length", 0)))
                status = handle(body, {name.lower(): value for name, value in self.headers.items()})
                self.send_response(status)
                self.end_headers()

            def log_message(self, *args):
                pass

        self.http = LocalHTTPServer(Handler)
        self.url = self.http.url

    def close(self):
        self.http.close()


def test_the_python_example_accepts_our_deliveries_once_and_refuses_a_wrong_signature(short_timeouts):
    secret = Endpoint(url="https://example.com").secret
    receiver = PythonExampleReceiver(secret)
    try:
        endpoint = Endpoint.objects.create(url=receiver.url, secret=secret, event_types=["customer.created"])
        stranger = Endpoint.objects.create(url=receiver.url, event_types=["customer.created"])
        customer = CustomerFactory(name="Python")

        [accepted] = deliveries_of(endpoint)
        assert (accepted.status, accepted.response_status) == (Delivery.Status.SUCCEEDED, 200)
        assert [(event["type"], event["data"]["object_id"]) for event in receiver.queued] == [
            ("customer.created", customer.pk)
        ]
        [refused] = deliveries_of(stranger)
        assert (refused.status, refused.response_status) == (Delivery.Status.FAILED, 400)
        # A replay has the same webhook-id: the example answers 200 and does the work once.
        delivery.replay(deliveries=Delivery.objects.filter(pk=accepted.pk))
        accepted.refresh_from_db()
        assert (accepted.status, accepted.response_status) == (Delivery.Status.SUCCEEDED, 200)
        assert len(receiver.queued) == 1
    finally:
        receiver.close()
