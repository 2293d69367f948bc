"""Workers recycled after ``GUNICORN_MAX_REQUESTS`` are forks of the master, which loaded the application.

``gunicorn.conf.py`` preloads the application (``GUNICORN_PRELOAD``): a worker that has served its
requests is replaced by a fork of the master instead of a process that imports Django again. Each new
worker must then open its own database and Redis connections (nothing is connected at import), so
reads and writes go on answering across many replacements, on SQLite and PostgreSQL alike. A ``HUP``
replaces every worker the same way (and runs ``gunicorn.conf.py``'s ``on_reload``).
"""

import os
import re
import runpy
import signal
import time
from pathlib import Path

import pytest

from .conftest import ROOT, create_tokens

pytestmark = pytest.mark.live


def worker_pids(server):
    return {entry["pid"] for entry in server.access_log()}


def test_recycled_workers_answer_reads_and_writes(server_factory, live_database_url):
    token = create_tokens(live_database_url, ["recycling-manager"])["recycling-manager"]
    server = server_factory(
        workers=2,
        GUNICORN_MAX_REQUESTS="4",
        GUNICORN_MAX_REQUESTS_JITTER="0",
        DJANGO_THROTTLE_USER="100000/minute",
        DJANGO_THROTTLE_ANON="100000/minute",
    )
    client = server.client(token)
    created = []
    for number in range(24):
        response = client.post(
            f"{server.url}/api/customers",
            json={"name": f"Recycled {number}", "email": f"recycled-{number}@example.com"},
            timeout=30,
        )
        assert response.status_code == 201, response.text
        created.append(response.json()["data"]["id"])
        read = client.get(f"{server.url}/api/customers/{created[-1]}", timeout=30)
        assert read.status_code == 200, read.text
        assert read.json()["data"]["name"] == f"Recycled {number}"
    # 48 requests at 4 a worker: at least ten workers served them, none of them failed.
    assert len(worker_pids(server)) >= 10
    assert "Booting worker" in server.log_path.read_text()
    assert not re.search(r"Traceback|Exception in worker|database is locked", server.log_path.read_text())
    listed = client.get(f"{server.url}/api/customers", params={"search": "Recycled", "page_size": 100}, timeout=30)
    assert sorted(row["id"] for row in listed.json()["data"]) == sorted(created)


def test_preload_is_the_default_and_can_be_turned_off(monkeypatch):
    def preload(value=None):
        if value is None:
            monkeypatch.delenv("GUNICORN_PRELOAD", raising=False)
        else:
            monkeypatch.setenv("GUNICORN_PRELOAD", value)
        return runpy.run_path(str(ROOT / "gunicorn.conf.py"))["preload_app"]

    assert preload() is True
    assert preload("false") is False
    assert preload("0") is False
    assert preload("true") is True


def test_a_reload_replaces_the_workers_and_they_answer(server_factory, live_database_url):
    """``HUP`` (docs/deployment.md): new workers, forked from the master again, answer reads and writes."""
    token = create_tokens(live_database_url, ["reload-manager"])["reload-manager"]
    server = server_factory(workers=2, DJANGO_THROTTLE_USER="100000/minute", DJANGO_THROTTLE_ANON="100000/minute")
    client = server.client(token)

    def answered(number):
        created = client.post(
            f"{server.url}/api/customers",
            json={"name": f"Reloaded {number}"},
            timeout=30,
            headers={"Connection": "close"},
        )
        assert created.status_code == 201, created.text
        read = client.get(
            f"{server.url}/api/customers/{created.json()['data']['id']}", timeout=30, headers={"Connection": "close"}
        )
        assert read.status_code == 200, read.text
        return read.json()["data"]["name"]

    assert [answered(number) for number in range(4)] == [f"Reloaded {number}" for number in range(4)]
    before = worker_pids(server)
    os.kill(server.process.pid, signal.SIGHUP)
    # Two new workers boot and the old ones stop: only the new ones answer from then on.
    deadline = time.monotonic() + 60
    while server.log_path.read_text().count("Booting worker") < 4 or any(
        Path(f"/proc/{pid}").exists() for pid in before
    ):
        assert time.monotonic() < deadline, server.log_path.read_text()
        time.sleep(0.2)
    assert [answered(number) for number in range(4, 12)] == [f"Reloaded {number}" for number in range(4, 12)]
    after = {entry["pid"] for entry in server.access_log()[-16:]}
    assert after and not after & before
    assert server.process.poll() is None
    assert not re.search(r"Traceback|Exception|Error", server.log_path.read_text())
