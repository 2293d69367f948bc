"""Rate limits hold across gunicorn workers: the counters are in the shared cache."""

import http.client
import json
import socket
import threading
import uuid
from concurrent.futures import ThreadPoolExecutor
from urllib.parse import urlsplit

import pytest

from tests.live.conftest import create_tokens, redis_env_or_skip

pytestmark = pytest.mark.live

REQUESTS = 15
LIMIT = 5


@pytest.fixture(scope="module", params=["database", "redis"])
def limited_server(request, server_factory):
    cache_env = redis_env_or_skip() if request.param == "redis" else {}
    return server_factory(
        workers=3,
        # _send_in_rounds spreads requests over the workers by keeping each sync worker busy
        # with one unfinished request; a threaded worker would accept the next ones too.
        GUNICORN_WORKER_CLASS="sync",
        DJANGO_THROTTLE_USER=f"{LIMIT}/minute",
        DJANGO_THROTTLE_ANON=f"{LIMIT}/minute",
        DJANGO_THROTTLE_LOGIN=f"{LIMIT}/minute",
        **cache_env,
    )


def _pids_serving(server, request_ids):
    return {entry["pid"] for entry in server.access_log() if entry["request_id"] in request_ids}


class Answer:
    def __init__(self, response, request_id):
        self.status_code = response.status
        self.headers = response.headers
        self.body = response.read()
        self.request_id = request_id

    def json(self):
        return json.loads(self.body)


def _send_in_rounds(server, method, path, bodies, headers=None, sources=None, workers=3):
    """Send one request per body, spread over the workers, answered strictly one after another.

    Each round opens ``workers`` connections and sends every request but its last
    header line: a sync worker that accepted one is stuck on it, so the round's
    requests sit in different workers. They are then finished and answered one by
    one, so the order of the answers is the order of the bodies.
    """
    parts = urlsplit(server.url)
    sources = sources or ["127.0.0.1"] * len(bodies)
    answers = []
    for start in range(0, len(bodies), workers):
        pending = []
        for body, source in zip(bodies[start : start + workers], sources[start : start + workers], strict=True):
            request_id = uuid.uuid4().hex
            payload = json.dumps(body).encode() if body is not None else b""
            head = [
                f"{method} {path} HTTP/1.1",
                f"Host: {parts.netloc}",
                "Connection: close",
                "Content-Type: application/json",
                f"Content-Length: {len(payload)}",
                f"X-Request-ID: {request_id}",
                *(f"{name}: {value}" for name, value in (headers or {}).items()),
            ]
            sock = socket.create_connection((parts.hostname, parts.port), timeout=30, source_address=(source, 0))
            sock.sendall(("\r\n".join(head) + "\r\n").encode())
            pending.append((sock, payload, request_id))
        for sock, payload, request_id in pending:
            with sock:
                sock.sendall(b"\r\n" + payload)
                response = http.client.HTTPResponse(sock)
                response.begin()
                answers.append(Answer(response, request_id))
    return answers


def _pids(server, answers):
    ids = {answer.request_id for answer in answers}
    return {entry["pid"] for entry in server.access_log() if entry["request_id"] in ids}


def test_user_limit_holds_across_workers(limited_server):
    token = create_tokens(limited_server.database_url, [f"limited-{uuid.uuid4().hex[:12]}"]).popitem()[1]

    answers = _send_in_rounds(
        limited_server, "GET", "/api/customers", [None] * REQUESTS, headers={"Authorization": f"Bearer {token}"}
    )

    assert [a.status_code for a in answers] == [200] * LIMIT + [429] * (REQUESTS - LIMIT)
    assert answers[-1].json()["error"]["code"] == "throttled"
    assert int(answers[-1].headers["Retry-After"]) > 0
    # Every worker answered some of them: a per-process counter would have let more through.
    assert len(_pids(limited_server, answers)) == 3


def test_login_limit_per_username_holds_across_workers_and_addresses(limited_server):
    username = f"target-{uuid.uuid4().hex[:12]}"
    bodies = [{"username": username, "password": f"guess{n}"} for n in range(REQUESTS)]

    answers = _send_in_rounds(
        limited_server, "POST", "/api/auth/token", bodies, sources=[f"127.0.1.{n + 1}" for n in range(REQUESTS)]
    )

    assert [a.status_code for a in answers] == [400] * LIMIT + [429] * (REQUESTS - LIMIT)
    assert len(_pids(limited_server, answers)) == 3
    logged_addresses = {
        e["remote_addr"] for e in limited_server.access_log() if e["request_id"] == answers[1].request_id
    }
    assert logged_addresses == {"127.0.1.2"}


def test_login_limit_per_address_holds_across_workers_and_usernames(limited_server):
    bodies = [{"username": f"guess-{uuid.uuid4().hex}", "password": "x"} for _ in range(REQUESTS)]

    answers = _send_in_rounds(limited_server, "POST", "/api/auth/token", bodies, sources=["127.0.2.1"] * REQUESTS)

    assert [a.status_code for a in answers] == [400] * LIMIT + [429] * (REQUESTS - LIMIT)
    assert len(_pids(limited_server, answers)) == 3


CONCURRENT_LIMIT = 60
CONCURRENT_REQUESTS = 240
CLIENTS = 24


@pytest.fixture(scope="module", params=["database", "redis"])
def busy_server(request, server_factory):
    cache_env = redis_env_or_skip() if request.param == "redis" else {}
    return server_factory(
        workers=3,
        GUNICORN_THREADS=CLIENTS // 3,
        # Per hour: within one burst the previous window's weight stays the same, and a
        # new user has no earlier window, so the limit is the exact number that passes.
        DJANGO_THROTTLE_USER=f"{CONCURRENT_LIMIT}/hour",
        **cache_env,
    )


def test_concurrent_requests_let_exactly_the_limit_through(busy_server):
    token = create_tokens(busy_server.database_url, [f"burst-{uuid.uuid4().hex[:12]}"]).popitem()[1]
    start = threading.Barrier(CLIENTS)

    def client(_):
        session = busy_server.client(token)
        start.wait()
        return [
            session.get(f"{busy_server.url}/api/customers", timeout=60).status_code
            for _ in range(CONCURRENT_REQUESTS // CLIENTS)
        ]

    with ThreadPoolExecutor(max_workers=CLIENTS) as pool:
        statuses = [status for statuses in pool.map(client, range(CLIENTS)) for status in statuses]

    assert statuses.count(200) == CONCURRENT_LIMIT
    assert statuses.count(429) == CONCURRENT_REQUESTS - CONCURRENT_LIMIT
