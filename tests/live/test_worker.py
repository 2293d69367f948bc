"""The job queue with real processes: gunicorn enqueues, ``manage.py worker`` runs the jobs.

Each test gets its own queue: an SQLite file in a temporary directory, or a
uniquely named queue in Redis database 3 (removed at the end); the web server and
the worker share it, and the database, as in production.
"""

import os
import re
import signal
import socket
import sqlite3
import subprocess
import sys
import time
import uuid
from urllib.parse import urlsplit

import psycopg
import pytest
import requests
from huey import RedisHuey

from .conftest import REDIS_URL, ROOT, STARTUP_SECONDS, _is_postgres, base_env, create_tokens, kill_process_group

pytestmark = pytest.mark.live


def fetch(database_url, sql, params=()):
    if _is_postgres(database_url):
        with psycopg.connect(database_url) as connection:
            return connection.execute(sql.replace("?", "%s"), params).fetchall()
    with sqlite3.connect(urlsplit(database_url).path, timeout=20) as connection:
        return connection.execute(sql, params).fetchall()


def wait_for(condition, seconds=60, message="condition"):
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        value = condition()
        if value:
            return value
        time.sleep(0.2)
    raise AssertionError(f"timed out waiting for {message}")


@pytest.fixture(params=["sqlite", "redis"])
def queue_env(request, tmp_path):
    """The settings that point the web server and the worker at one queue of the given kind."""
    if request.param == "sqlite":
        yield {"CRM_QUEUE_FILE": tmp_path / "queue.sqlite3", "CRM_QUEUE_NAME": "crm"}
        return
    name = f"crm-test-{uuid.uuid4().hex}"
    yield {"REDIS_URL": REDIS_URL, "CRM_QUEUE_NAME": name, "DJANGO_CACHE_KEY_PREFIX": name}
    RedisHuey(name, url=REDIS_URL).storage.flush_all()


@pytest.fixture
def start_worker(live_database_url, tmp_path):
    """``manage.py worker`` processes, each in its own process group, all stopped at the end."""
    workers = []

    def start(settings_module="crm_site.settings.production", **env):
        log_path = tmp_path / f"worker-{len(workers)}.log"
        with log_path.open("w") as log:
            process = subprocess.Popen(
                [sys.executable, "manage.py", "worker"],
                cwd=ROOT,
                env={**base_env(live_database_url, **env), "DJANGO_SETTINGS_MODULE": settings_module},
                stdout=log,
                stderr=subprocess.STDOUT,
                start_new_session=True,
            )
        workers.append(process)
        wait_for(
            lambda: "consumer started" in log_path.read_text() or process.poll() is not None,
            STARTUP_SECONDS,
            "the worker to start",
        )
        assert process.poll() is None, log_path.read_text()
        return process, log_path

    yield start
    for process in workers:
        kill_process_group(process)


def dispatched(database_url, object_id):
    rows = fetch(
        database_url,
        "SELECT type, dispatched_at FROM core_event WHERE model = ? AND object_id = ?",
        ("customers.customer", object_id),
    )
    return rows if rows and all(row[1] is not None for row in rows) else None


def test_event_of_a_request_is_dispatched_by_a_worker_process(
    server_factory, start_worker, live_database_url, queue_env
):
    server = server_factory(workers=1, **queue_env)
    worker, worker_log = start_worker(**queue_env)
    token = create_tokens(live_database_url, ["queue-user"])["queue-user"]
    response = server.client(token).post(f"{server.url}/api/customers", json={"name": "Queued"}, timeout=30)
    assert response.status_code == 201
    customer_id = response.json()["data"]["id"]
    rows = wait_for(lambda: dispatched(live_database_url, customer_id), 30, "the event to be dispatched")
    assert [row[0] for row in rows] == ["customer.created"]
    log = worker_log.read_text()
    assert re.search(r"Executing core\.tasks\.dispatch_events", log), log
    # The worker schedules the periodic jobs.
    assert "core.tasks.purge_expired" in log and "core.tasks.sweep_events" in log
    # Each line once (huey's own handler beside the project's would print every line twice).
    assert len(re.findall(r"consumer started", log)) == 1, log


def test_failing_dispatch_is_retried_with_growing_delays(
    server_factory, start_worker, live_database_url, tmp_path, queue_env
):
    attempts = tmp_path / "attempts.log"
    server = server_factory(workers=1, **queue_env)
    # This worker's settings add a dispatcher that fails twice, then succeeds.
    start_worker("tests.live.worker_settings", TEST_DISPATCH_ATTEMPTS=attempts, **queue_env)
    token = create_tokens(live_database_url, ["retry-user"])["retry-user"]
    response = server.client(token).post(f"{server.url}/api/customers", json={"name": "Retried"}, timeout=30)
    customer_id = response.json()["data"]["id"]
    wait_for(lambda: dispatched(live_database_url, customer_id), 60, "the retried dispatch")
    times = [float(line) for line in attempts.read_text().split()]
    assert len(times) == 3
    first_gap, second_gap = times[1] - times[0], times[2] - times[1]
    # retry_delay 2 s, doubled after each retry (the scheduler looks once a second). The upper
    # bounds leave a loaded machine its slack and still tell 2 s from 4 s, and 4 s from 8 s.
    assert 1.9 <= first_gap < 3.9, times
    assert 3.9 <= second_gap < 7.9, times


def free_port():
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def processes_in_session(session_id):
    """Pids of the live (not zombie) processes whose session is ``session_id``."""
    found = []
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        try:
            with open(f"/proc/{entry}/stat") as stat:
                fields = stat.read().rsplit(")", 1)[1].split()
        except OSError:
            continue
        if fields[0] != "Z" and int(fields[3]) == session_id:
            found.append(int(entry))
    return found


@pytest.fixture
def run_all(live_database_url, tmp_path):
    """``manage.py run_all`` on a free port; returns (process, url, log path, child pids)."""
    started = []

    def start():
        port = free_port()
        log_path = tmp_path / "run_all.log"
        with log_path.open("w") as log:
            process = subprocess.Popen(
                [sys.executable, "manage.py", "run_all", f"127.0.0.1:{port}"],
                cwd=ROOT,
                env=base_env(live_database_url, CRM_QUEUE_FILE=tmp_path / "queue.sqlite3"),
                stdout=log,
                stderr=subprocess.STDOUT,
                start_new_session=True,
            )
        started.append(process)
        url = f"http://127.0.0.1:{port}"

        def up():
            try:
                return requests.get(f"{url}/api/health", timeout=5).status_code == 200
            except requests.RequestException:
                return process.poll() is not None

        wait_for(up, STARTUP_SECONDS, "run_all to serve")
        assert process.poll() is None, log_path.read_text()
        pids = wait_for(lambda: [int(pid) for pid in re.findall(r"\(pid (\d+)\)", log_path.read_text())][:2] or None)
        wait_for(lambda: "Job worker started" in log_path.read_text(), STARTUP_SECONDS, "the worker")
        return process, url, log_path, pids

    yield start
    for process in started:
        kill_process_group(process)


def test_run_all_serves_and_ctrl_c_stops_both_leaving_nothing_behind(run_all):
    process, url, log_path, pids = run_all()
    # The periodic jobs run at once on start-up; the worker logs no line for each (--quiet-jobs), so
    # what `make run` printed before it (the demo accounts' passwords) stays in view.
    time.sleep(3)
    assert "Executing" not in log_path.read_text() and "Enqueueing" not in log_path.read_text()
    assert len(pids) == 2 and all(processes_in_session(pid) for pid in pids)
    process.send_signal(signal.SIGINT)
    assert process.wait(timeout=30) == 0, log_path.read_text()
    for pid in pids:
        # The web server's autoreloader child and the worker's threads included.
        assert wait_for(lambda pid=pid: not processes_in_session(pid), 10, f"session {pid} to end") is True
    with pytest.raises(requests.ConnectionError):
        requests.get(f"{url}/api/health", timeout=5)


def test_run_all_stops_the_web_server_when_the_worker_dies(run_all):
    process, url, log_path, pids = run_all()
    web, worker = pids
    os.killpg(worker, signal.SIGKILL)
    assert process.wait(timeout=30) != 0
    assert "The worker stopped" in log_path.read_text()
    assert wait_for(lambda: not processes_in_session(web), 10, "the web server to stop") is True


def connections_held(database_url, web_pids):
    """Connections to the database open now: on PostgreSQL every session but this one's (the web server's and
    the worker's); on SQLite the web server's open handles of the database file."""
    if _is_postgres(database_url):
        return fetch(
            database_url,
            "SELECT count(*) FROM pg_stat_activity WHERE datname = current_database() AND pid <> pg_backend_pid()",
        )[0][0]
    path, held = os.path.realpath(urlsplit(database_url).path), 0
    for pid in web_pids:
        for fd in os.listdir(f"/proc/{pid}/fd"):
            try:
                held += os.readlink(f"/proc/{pid}/fd/{fd}") == path
            except OSError:  # closed meanwhile
                pass
    return held


def test_run_all_web_server_keeps_no_connection_per_request(run_all, live_database_url):
    # runserver answers each request in a new thread: a connection kept for reuse would stay open after its
    # thread ended, one more per request, until PostgreSQL refused more clients.
    token = create_tokens(live_database_url, ["burst-user"])["burst-user"]
    process, url, log_path, (web, _worker) = run_all()

    def answered():
        response = requests.get(f"{url}/api/customers", headers={"Authorization": f"Bearer {token}"}, timeout=30)
        assert response.status_code == 200, response.text

    answered()
    before = connections_held(live_database_url, processes_in_session(web))
    for _ in range(20):
        answered()
    after = connections_held(live_database_url, processes_in_session(web))

    assert after <= before + 2, log_path.read_text()
