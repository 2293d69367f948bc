"""Several app servers: two gunicorn servers behind Debian's nginx, two workers, one PostgreSQL, one Redis.

What holds on one server holds on two: a rate limit is one count whichever
server answers, an ``Idempotency-Key`` claimed on one server replays on the
other, the event feed followed while both servers write misses no event, and a
webhook receiver gets every event once. Killing one app server and one worker
with SIGKILL in the middle of a load loses no acknowledged write and no event:
every 201 the clients got is in the database, every committed write has its
event, and every event reaches the receiver.

Runs only when the suite runs on PostgreSQL (``DATABASE_URL``, as the second pass
of ``.ci/run`` does): several app servers on one SQLite file is not a layout the
project offers (docs/deployment.md). Redis must answer at ``TEST_REDIS_URL``; the
cluster's queue and cache keys carry a name of their own, removed at the end.
"""

import os
import re
import signal
import subprocess
import sys
import threading
import time
import uuid
from contextlib import ExitStack
from http.server import BaseHTTPRequestHandler

import pytest
import redis
import requests
from huey import RedisHuey
from standardwebhooks import Webhook
from standardwebhooks.webhooks import WebhookVerificationError

from tests.http_server import LocalHTTPServer

from .conftest import REDIS_URL, ROOT, STARTUP_SECONDS, _is_postgres, base_env, create_tokens, kill_process_group
from .conftest import start_server as start_gunicorn
from .test_nginx import running_nginx
from .test_worker import wait_for

pytestmark = pytest.mark.live

# Requests per user and minute: the load's users stay well below it; the rate-limit user reaches it.
LIMIT = 200
# Load: client threads (one user each) and creates per thread.
CLIENTS = 4
CREATES = 30
# Batches of creates sent beside them by one more client.
BATCHES = 4
BATCH_SIZE = 50
# After how many acknowledged creates (of all threads) one app server and one worker are killed.
KILL_AFTER = CLIENTS * CREATES // 3
# How long the cluster gets to hand every event on once the load is over: a killed worker's job
# comes back with the every-minute sweeps (core.tasks.sweep_events, webhooks.tasks.deliver_due)
# once its claim on a delivery has lapsed (connect + read timeout + 30 s).
SETTLE_SECONDS = 300
# Threads of each worker (CRM_WORKER_THREADS, set for the workers below).
WORKER_THREADS = 2


def sql(database_url, query, params=()):
    import psycopg

    with psycopg.connect(database_url) as connection:
        cursor = connection.execute(query, params)
        return cursor.fetchall() if cursor.description else None


class SigningReceiver:
    """A real HTTP server that checks every delivery's signature with ``standardwebhooks`` and counts them."""

    def __init__(self):
        self.secret = None
        self.received = {}  # webhook-id -> times received with a valid signature
        self.payloads = {}
        self.refused = []
        self.lock = threading.Lock()
        receiver = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self):
                body = self.rfile.read(int(self.headers.get("Content-Length", 0)))
                headers = {name.lower(): value for name, value in self.headers.items()}
                try:
                    payload = Webhook(receiver.secret).verify(body, headers)
                except (WebhookVerificationError, TypeError, ValueError) as error:
                    with receiver.lock:
                        receiver.refused.append((headers.get("webhook-id"), str(error)))
                    self.send_response(401)
                    self.end_headers()
                    return
                with receiver.lock:
                    message_id = headers["webhook-id"]
                    receiver.received[message_id] = receiver.received.get(message_id, 0) + 1
                    receiver.payloads[message_id] = payload
                self.send_response(204)
                self.end_headers()

            def log_message(self, *args):
                pass

        self.http = LocalHTTPServer(Handler)
        self.url = self.http.url

    def close(self):
        self.http.close()

    def counts(self):
        with self.lock:
            return dict(self.received)


class Cluster:
    def __init__(self, database_url, servers, workers, proxy_url, receiver):
        self.database_url = database_url
        self.servers = servers
        self.workers = workers
        self.proxy_url = proxy_url
        self.receiver = receiver

    def session(self, token):
        session = requests.Session()
        session.headers["Authorization"] = f"Bearer {token}"
        return session


def _redis_or_fail():
    try:
        redis.Redis.from_url(REDIS_URL, socket_connect_timeout=2).ping()
    except redis.RedisError as error:
        if os.environ.get("CI"):
            pytest.fail(f"Redis is not reachable at {REDIS_URL}: {error}")
        pytest.skip(f"Redis is not reachable at {REDIS_URL}: {error}")


def start_worker(database_url, log_path, env):
    with log_path.open("w") as log:
        process = subprocess.Popen(
            [sys.executable, "manage.py", "worker"],
            cwd=ROOT,
            env=base_env(database_url, **env),
            stdout=log,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
    return process


@pytest.fixture
def cluster(live_database_url, static_root, tmp_path):
    if not _is_postgres(os.environ.get("DATABASE_URL", "")):
        pytest.skip("several app servers share one PostgreSQL: run the suite with DATABASE_URL=postgres://...")
    _redis_or_fail()
    name = f"crm-cluster-{uuid.uuid4().hex}"
    env = {
        "REDIS_URL": REDIS_URL,
        "CRM_QUEUE_NAME": name,
        "DJANGO_CACHE_KEY_PREFIX": name,
        "DJANGO_STATIC_ROOT": static_root,
        "DJANGO_THROTTLE_USER": f"{LIMIT}/minute",
        "DJANGO_NUM_PROXIES": "1",
        "DJANGO_WEBHOOKS_ALLOW_PRIVATE": "true",
        "DJANGO_WEBHOOKS_CONNECT_TIMEOUT": "2",
        "DJANGO_WEBHOOKS_READ_TIMEOUT": "5",
        "CRM_WORKER_THREADS": WORKER_THREADS,
    }
    with ExitStack() as stack:
        stack.callback(lambda: RedisHuey(name, url=REDIS_URL).storage.flush_all())
        stack.callback(_delete_keys, name)
        receiver = SigningReceiver()
        stack.callback(receiver.close)
        # Endpoints of this test stop with it (the receiver goes away).
        stack.callback(sql, live_database_url, "UPDATE webhooks_endpoint SET is_active = false")
        servers = []
        for number in range(2):
            server = start_gunicorn(live_database_url, tmp_path / f"gunicorn-{number}.log", workers=2, **env)
            stack.callback(server.stop)
            servers.append(server)
        workers = []
        for number in range(2):
            log_path = tmp_path / f"worker-{number}.log"
            process = start_worker(live_database_url, log_path, env)
            stack.callback(kill_process_group, process)
            workers.append((process, log_path))
        for process, log_path in workers:
            wait_for(
                lambda p=process, log=log_path: "consumer started" in log.read_text() or p.poll() is not None,
                STARTUP_SECONDS,
                "a worker to start",
            )
            assert process.poll() is None, log_path.read_text()
        proxy_url = stack.enter_context(
            running_nginx(_made(tmp_path / "nginx"), servers[0].url, static_root, servers[1].url)
        )
        yield Cluster(live_database_url, servers, workers, proxy_url, receiver)


def _delete_keys(prefix):
    client = redis.Redis.from_url(REDIS_URL)
    keys = list(client.scan_iter(match=f"*{prefix}*", count=1000))
    if keys:
        client.delete(*keys)


def register_endpoint(cluster, token):
    response = cluster.session(token).post(
        f"{cluster.proxy_url}/api/webhooks",
        json={"url": cluster.receiver.url, "event_types": ["customer.created"]},
        timeout=30,
    )
    assert response.status_code == 201, response.text
    data = response.json()["data"]
    cluster.receiver.secret = data["secret"]
    return data["id"]


def _remaining(response):
    match = re.search(r"\br=(\d+)", response.headers.get("RateLimit", ""))
    return int(match.group(1)) if match else None


def create_load(cluster, tokens, batch_token, prefix, on_progress=None):
    """Each token's thread creates ``CREATES`` customers through nginx, each with its own Idempotency-Key,
    retrying (same key) on a dropped connection or a gateway error as a careful client does. Beside
    them, ``batch_token``'s thread sends ``BATCHES`` batches of ``BATCH_SIZE`` creates (long
    transactions, whose first events get ids lower than those of creates committed meanwhile).

    Returns {name: customer id} of the creates acknowledged (a 201, or a 201 item of a batch answered 200).
    """
    acknowledged = {}
    failures = []
    lock = threading.Lock()

    def run(token, thread_number):
        session = cluster.session(token)
        for index in range(CREATES):
            key = f"{prefix}-{thread_number}-{index}"
            body = {"name": key, "email": f"{key}@example.com"}
            response = send(session, f"{cluster.proxy_url}/api/customers", body, key)
            if response is None:
                with lock:
                    failures.append((key, "no answer"))
                continue
            if response.status_code != 201:
                with lock:
                    failures.append((key, response.status_code, response.text[:300]))
                continue
            with lock:
                acknowledged[key] = response.json()["data"]["id"]
                done = len(acknowledged)
            if on_progress:
                on_progress(done)

    def send(session, url, body, key):
        for _attempt in range(20):
            try:
                response = session.post(url, json=body, headers={"Idempotency-Key": key}, timeout=60)
            except requests.RequestException:
                time.sleep(0.5)
                continue
            if response.status_code in (409, 502, 503, 504):
                time.sleep(0.5)
                continue
            return response
        return None

    def run_batches():
        session = cluster.session(batch_token)
        for number in range(BATCHES):
            names = [f"{prefix}-batch-{number}-{index}" for index in range(BATCH_SIZE)]
            body = {"create": [{"name": name} for name in names]}
            response = send(session, f"{cluster.proxy_url}/api/customers/batch", body, f"{prefix}-batch-{number}")
            if response is None or response.status_code != 200:
                with lock:
                    failures.append((names[0], response and response.status_code, response and response.text[:300]))
                continue
            results = response.json()["data"]["results"]
            with lock:
                for name, result in zip(names, results, strict=True):
                    assert result["status"] == 201, result
                    acknowledged[name] = result["data"]["id"]

    threads = [threading.Thread(target=run, args=(token, n), daemon=True) for n, token in enumerate(tokens)]
    threads.append(threading.Thread(target=run_batches, daemon=True))
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(600)
    assert not any(thread.is_alive() for thread in threads), "the load did not finish"
    assert not failures, failures[:10]
    return acknowledged


class FeedFollower(threading.Thread):
    """A sync client following ``/api/events`` while the load runs: every event it is served, once."""

    def __init__(self, cluster, token):
        super().__init__(daemon=True)
        self.session = cluster.session(token)
        self.url = f"{cluster.proxy_url}/api/events"
        self.cursor = None
        self.seen = []
        self.stopping = threading.Event()
        self.errors = []

    def poll_once(self):
        params = {"type": "customer.created", "page_size": 100}
        if self.cursor is not None:
            # Straight on from the cursor: the feed is in commit order, nothing to re-read.
            params["after"] = self.cursor
        while True:
            try:
                response = self.session.get(self.url, params=params, timeout=30)
            except requests.RequestException:
                return False  # an app server went away: poll again later
            if response.status_code in (502, 503, 504):
                return False
            if response.status_code == 429:
                # Polling faster than the rate limit: wait as told (a little), as a client does.
                self.stopping.wait(min(int(response.headers.get("Retry-After", "1")), 2))
                return False
            if response.status_code != 200:
                self.errors.append((response.status_code, response.text[:300]))
                return False
            body = response.json()
            self.seen += [(event["id"], event["object_id"]) for event in body["data"]]
            self.cursor = body["meta"]["next_cursor"]
            params["after"] = self.cursor
            if not body["meta"]["next"]:
                return True

    def run(self):
        while not self.stopping.is_set():
            self.poll_once()
            self.stopping.wait(0.05)


def committed_customers(cluster, prefix):
    return dict(
        sql(cluster.database_url, "SELECT name, id FROM customers_customer WHERE name LIKE %s", (f"{prefix}-%",))
    )


def created_events(cluster, customer_ids):
    """customer id -> [(event id, dispatched)] of its ``customer.created`` events."""
    rows = sql(
        cluster.database_url,
        "SELECT object_id, id, dispatched_at IS NOT NULL FROM core_event "
        "WHERE model = 'customers.customer' AND type = 'customer.created' AND object_id = ANY(%s)",
        (list(customer_ids),),
    )
    found = {}
    for object_id, event_id, dispatched in rows:
        found.setdefault(object_id, []).append((event_id, dispatched))
    return found


def deliveries(cluster, endpoint_id):
    """message id -> status of the endpoint's deliveries."""
    return dict(
        sql(
            cluster.database_url,
            "SELECT message_id, status FROM webhooks_delivery WHERE endpoint_id = %s",
            (endpoint_id,),
        )
    )


def everything_handed_on(cluster, endpoint_id, event_ids):
    expected = {f"evt_{event_id}" for event_id in event_ids}
    stored = deliveries(cluster, endpoint_id)
    if not expected <= set(stored) or any(stored[message] != "succeeded" for message in expected):
        return False
    return expected <= set(cluster.receiver.counts())


def check_no_loss(cluster, prefix, acknowledged, endpoint_id, follower):
    """The guarantees after a load: writes, their events, the feed and the deliveries, all complete."""
    committed = committed_customers(cluster, prefix)
    # Every acknowledged create is there, as acknowledged; a retried create was written once.
    assert {key: committed.get(key) for key in acknowledged} == acknowledged
    # Every committed create has exactly one event.
    events = created_events(cluster, committed.values())
    assert sorted(events) == sorted(committed.values())
    assert all(len(found) == 1 for found in events.values()), {k: v for k, v in events.items() if len(v) != 1}
    event_ids = {found[0][0] for found in events.values()}
    # Every event reaches the endpoint, signed; the sweeps bring back what a killed worker held.
    wait_for(lambda: everything_handed_on(cluster, endpoint_id, event_ids), SETTLE_SECONDS, "every delivery")
    assert cluster.receiver.refused == []
    payloads = cluster.receiver.payloads
    assert {payloads[f"evt_{event_id}"]["data"]["id"] for event_id in event_ids} == event_ids
    assert {payloads[f"evt_{e}"]["data"]["object_id"] for e in event_ids} == set(committed.values())
    # The feed, followed during the load and caught up now, served every event once.
    follower.stopping.set()
    follower.join(60)
    assert not follower.is_alive(), "the follower is still polling"  # it would read the feed beside the checks below
    # Caught up (a poll may meet the rate limit the follower ran into: it waits and polls again).
    wait_for(follower.poll_once, 120, "the feed to be read to its end")
    assert follower.errors == []
    ours = [event_id for event_id, _ in follower.seen if event_id in event_ids]
    assert sorted(ours) == sorted(event_ids)  # each once
    return event_ids


def test_two_app_servers_share_rate_limits_idempotency_keys_the_feed_and_deliveries(cluster):
    tokens = create_tokens(
        cluster.database_url,
        ["cluster-manager", "cluster-limited", "cluster-batch", *[f"cluster-load-{n}" for n in range(CLIENTS)]],
    )
    first, second = cluster.servers

    # A rate limit is one count: requests alternate between the two servers, each answer one lower.
    # The counters are per minute (a sliding window over two of them): the run of a few seconds starts
    # early enough in a minute to stay within it, so that the count is exact (a run that crosses into
    # the next minute anyway is checked as such below).
    if time.time() % 60 > 45:
        time.sleep(60 - time.time() % 60 + 0.2)
    window = time.time() // 60
    limited = cluster.session(tokens["cluster-limited"])
    remaining = []
    for number in range(LIMIT):
        server = cluster.servers[number % 2]
        response = limited.get(f"{server.url}/api/auth/me", timeout=30)
        assert response.status_code == 200, response.text
        remaining.append(_remaining(response))
    refused = [limited.get(f"{url}/api/auth/me", timeout=30) for url in (first.url, second.url, cluster.proxy_url)]
    # Checked once the refusals are in: the first moments of the next minute already let requests through.
    if time.time() // 60 == window:
        assert remaining == list(range(LIMIT - 1, -1, -1))
        assert [answer.status_code for answer in refused] == [429, 429, 429]
        assert all(int(answer.headers["Retry-After"]) > 0 for answer in refused[:2])
    else:  # a loaded machine took more than the minute: the previous minute now weighs less
        steps = [before - after for before, after in zip([LIMIT, *remaining], remaining, strict=False)]
        assert set(steps) <= {0, 1} and remaining[-1] <= 1, remaining

    # An Idempotency-Key claimed on one server replays on the other; another body under it is refused.
    manager = cluster.session(tokens["cluster-manager"])
    key = f"cluster-{uuid.uuid4().hex}"
    body = {"name": key, "email": f"{key}@example.com"}
    created = manager.post(f"{first.url}/api/customers", json=body, headers={"Idempotency-Key": key}, timeout=30)
    assert created.status_code == 201, created.text
    replayed = manager.post(f"{second.url}/api/customers", json=body, headers={"Idempotency-Key": key}, timeout=30)
    assert replayed.status_code == 201
    assert replayed.headers.get("Idempotent-Replayed") == "true"
    assert replayed.json() == created.json()
    other = manager.post(
        f"{second.url}/api/customers", json={**body, "name": "Other"}, headers={"Idempotency-Key": key}, timeout=30
    )
    assert other.status_code == 422
    assert len(sql(cluster.database_url, "SELECT id FROM customers_customer WHERE name = %s", (key,))) == 1

    # Both servers write at once through nginx; a follower of the feed and the receiver miss nothing,
    # and the receiver gets each event once.
    endpoint_id = register_endpoint(cluster, tokens["cluster-manager"])
    follower = FeedFollower(cluster, tokens["cluster-manager"])
    follower.poll_once()
    follower.seen.clear()
    follower.start()
    prefix = f"both-{uuid.uuid4().hex[:12]}"
    acknowledged = create_load(
        cluster, [tokens[f"cluster-load-{n}"] for n in range(CLIENTS)], tokens["cluster-batch"], prefix
    )
    assert len(acknowledged) == CLIENTS * CREATES + BATCHES * BATCH_SIZE
    # Both servers took part.
    pids = [
        {entry["pid"] for entry in server.access_log() if entry.get("method") == "POST"} for server in cluster.servers
    ]
    assert all(pids), pids
    event_ids = check_no_loss(cluster, prefix, acknowledged, endpoint_id, follower)
    counts = cluster.receiver.counts()
    assert {counts[f"evt_{event_id}"] for event_id in event_ids} == {1}


def test_killing_an_app_server_and_a_worker_mid_load_loses_no_acknowledged_write_and_no_event(cluster):
    tokens = create_tokens(
        cluster.database_url, ["cluster-manager", "cluster-batch", *[f"cluster-kill-{n}" for n in range(CLIENTS)]]
    )
    endpoint_id = register_endpoint(cluster, tokens["cluster-manager"])
    follower = FeedFollower(cluster, tokens["cluster-manager"])
    follower.poll_once()
    follower.seen.clear()
    follower.start()
    killed = threading.Event()
    victim_server = cluster.servers[0]
    victim_worker, _ = cluster.workers[0]

    def kill_when_due(done):
        if done >= KILL_AFTER and not killed.is_set():
            killed.set()
            os.killpg(victim_server.process.pid, signal.SIGKILL)
            os.killpg(victim_worker.pid, signal.SIGKILL)

    prefix = f"kill-{uuid.uuid4().hex[:12]}"
    acknowledged = create_load(
        cluster, [tokens[f"cluster-kill-{n}"] for n in range(CLIENTS)], tokens["cluster-batch"], prefix, kill_when_due
    )
    assert killed.is_set()
    assert victim_server.process.wait(10) == -signal.SIGKILL
    assert victim_worker.wait(10) == -signal.SIGKILL
    # Every create was acknowledged in the end (the clients retried with their keys).
    assert len(acknowledged) == CLIENTS * CREATES + BATCHES * BATCH_SIZE
    event_ids = check_no_loss(cluster, prefix, acknowledged, endpoint_id, follower)
    # A delivery the killed worker was sending may arrive twice (same webhook-id, for the receiver to
    # drop); at most one per thread of that worker. Every other event arrives once.
    counts = cluster.receiver.counts()
    twice = [message for message in (f"evt_{event_id}" for event_id in event_ids) if counts[message] > 1]
    assert len(twice) <= WORKER_THREADS, twice


def _made(path):
    path.mkdir()
    return path
