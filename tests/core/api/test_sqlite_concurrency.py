"""Concurrent writers on SQLite through a real gunicorn: every write lands, none is refused.

The full-size run (8 threads x 500 writes, 4 workers) is bench/sqlite_writers.py.
"""

import http.client
import json
import os
import secrets
import socket
import subprocess
import sys
import threading
import time
from collections import Counter
from pathlib import Path

import pytest
from django.conf import settings

from tests.migrated import OWN_SQLITE_FILE

ROOT = Path(settings.BASE_DIR)
BIN = Path(sys.executable).parent
THREADS, WRITES, WORKERS = 4, 25, 4

pytestmark = [pytest.mark.live, OWN_SQLITE_FILE]


def free_port():
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


@pytest.fixture
def sqlite_server(tmp_path, migrated_sqlite):
    env = {
        **os.environ,
        "DJANGO_SETTINGS_MODULE": "crm_site.settings.production",
        "DJANGO_SECRET_KEY": secrets.token_urlsafe(50),
        "DJANGO_SECURE_SSL_REDIRECT": "false",
        "DJANGO_ALLOWED_HOSTS": "127.0.0.1",
        "DATABASE_URL": migrated_sqlite(tmp_path / "live.db"),
    }

    def manage(*args):
        result = subprocess.run(
            [sys.executable, "manage.py", *args], env=env, cwd=ROOT, capture_output=True, text=True, check=True
        )
        return result.stdout.strip().splitlines()[-1] if result.stdout.strip() else ""

    token = manage(
        "shell",
        "-c",
        "from django.contrib.auth import get_user_model\nfrom knox.models import get_token_model\n"
        "from django.contrib.auth.models import Group\n"
        "u = get_user_model().objects.create_user('w')\n"
        "u.groups.add(Group.objects.get(name='Sales manager'))\n"
        "print(get_token_model().objects.create(u)[1])",
    )
    port = free_port()
    log = open(tmp_path / "gunicorn.log", "w+")  # noqa: SIM115 - closed below
    process = subprocess.Popen(
        [BIN / "gunicorn", "-w", str(WORKERS), "-b", f"127.0.0.1:{port}", "crm_site.wsgi:application"],
        env=env,
        cwd=ROOT,
        stdout=log,
        stderr=subprocess.STDOUT,
    )
    deadline = time.monotonic() + 30
    while True:
        try:
            http.client.HTTPConnection("127.0.0.1", port, timeout=2).request("GET", "/api/health")
            break
        except OSError:
            if time.monotonic() > deadline or process.poll() is not None:
                process.kill()
                pytest.fail("gunicorn did not start")
            time.sleep(0.2)
    yield port, token, manage, tmp_path / "gunicorn.log"
    process.terminate()
    process.wait(timeout=20)
    log.close()


def test_concurrent_writers_lose_nothing_and_never_see_a_locked_database(sqlite_server):
    port, token, manage, log_path = sqlite_server
    statuses, created = Counter(), []

    def write(thread_number):
        connection = http.client.HTTPConnection("127.0.0.1", port, timeout=60)
        headers = {"Authorization": f"Bearer {token}", "Content-Type": "application/json"}
        for number in range(WRITES):
            body = json.dumps({"name": f"Writer {thread_number}-{number}", "email": f"w{thread_number}.{number}@x.io"})
            connection.request("POST", "/api/customers", body, headers)
            response = connection.getresponse()
            payload = json.loads(response.read())
            statuses[response.status] += 1
            if response.status == 201:
                created.append(payload["data"]["id"])
        connection.close()

    threads = [threading.Thread(target=write, args=(number,)) for number in range(THREADS)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()

    assert statuses == Counter({201: THREADS * WRITES})
    stored = json.loads(
        manage(
            "shell",
            "-c",
            "import json\nfrom customers.models import Customer\n"
            "print(json.dumps(sorted(Customer.objects.values_list('id', flat=True))))",
        )
    )
    assert stored == sorted(created)
    assert "database is locked" not in log_path.read_text()
