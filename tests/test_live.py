"""Behaviour that only a real server process and real concurrent clients can show."""

import subprocess
import sys
from concurrent.futures import ThreadPoolExecutor

import pytest

from tests.live import PROJECT, live_gunicorn

pytestmark = pytest.mark.live


def test_concurrent_creates_with_one_email_make_exactly_one_customer(tmp_path):
    with live_gunicorn(tmp_path, workers=3) as server:
        payload = {"name": "Race", "email": "race@example.com"}
        with ThreadPoolExecutor(max_workers=8) as pool:
            results = list(pool.map(lambda _: server.request("POST", "/api/customers", payload), range(16)))
        statuses = sorted(status for status, _ in results)
        assert statuses == [201] + [400] * 15
        for status, body in results:
            if status == 400:
                assert body["error"]["fields"] == {"email": ["A customer with this email already exists."]}
        status, body = server.request("GET", "/api/customers?search=race@example.com")
        assert body["meta"]["count"] == 1


def test_concurrent_writers_lose_nothing(tmp_path):
    with live_gunicorn(tmp_path, workers=3) as server:
        _, created = server.request("POST", "/api/customers", {"name": "Busy"})
        customer_id = created["data"]["id"]

        def write(n):
            return server.request(
                "POST", "/api/interactions", {"customer_id": customer_id, "interaction_type": "call", "notes": f"n{n}"}
            )[0]

        with ThreadPoolExecutor(max_workers=6) as pool:
            statuses = list(pool.map(write, range(60)))
        assert statuses == [201] * 60
        _, listing = server.request("GET", f"/api/interactions?customer_id={customer_id}&page_size=500")
        assert sorted(row["notes"] for row in listing["data"]) == sorted(f"n{n}" for n in range(60))


def test_health_is_503_when_the_database_is_unreachable():
    script = (
        "import django; django.setup(); from django.test import Client; "
        "r = Client().get('/api/health'); print(r.status_code); print(r.content.decode())"
    )
    env = {
        "PATH": "/usr/bin:/bin",
        "DJANGO_SETTINGS_MODULE": "crm_site.settings.test",
        # Nothing listens on port 1: the connection is refused at once.
        "DATABASE_URL": "postgres://postgres@127.0.0.1:1/unreachable",
    }
    result = subprocess.run(
        [sys.executable, "-c", script], cwd=PROJECT, env=env, capture_output=True, text=True, timeout=60
    )
    status, body = result.stdout.splitlines()[:2]
    assert status == "503"
    assert '"status": "unhealthy"' in body
    assert '"database": "unavailable"' in body
