"""A long answer (an export of many rows) is not cut off by gunicorn's worker timeout.

gunicorn.conf.py runs threaded workers: their main loop tells the arbiter they
are alive while a request runs, whereas a sync worker only does so between
requests and is killed in the middle of anything longer than the timeout.
"""

import io
import time

import openpyxl
import pytest
import requests

from tests.live.conftest import create_tokens, manage, start_server
from tests.migrated import OWN_SQLITE_FILE

pytestmark = [pytest.mark.live, OWN_SQLITE_FILE]

# gunicorn's worker timeout in these tests. A threaded worker tells the arbiter it is alive about once a
# second, so on a loaded machine a 1 s timeout can kill it between two heartbeats.
TIMEOUT = 2  # seconds


@pytest.fixture(scope="module")
def big_database(tmp_path_factory, migrated_sqlite):
    """An SQLite database with 50,000 customers: an XLSX export of them takes several seconds."""
    url = migrated_sqlite(tmp_path_factory.mktemp("long") / "crm.db")
    seed = ["seed_demo", "--customers", "50000", "--interactions-per", "0", "--opportunities-per", "0"]
    manage(url, *seed, "--no-progress", "--end", "2026-01-01")
    count = manage(url, "shell", "-c", "from customers.models import Customer; print(Customer.objects.count())")
    token = create_tokens(url, ["exporter"])["exporter"]
    return url, token, int(count.strip().splitlines()[-1])


def _export(big_database, static_root, log_path, **env):
    """(status or None if the connection broke, body, seconds, server log) of an XLSX export of every customer."""
    url, token, _ = big_database
    server = start_server(url, log_path, workers=1, GUNICORN_TIMEOUT=TIMEOUT, DJANGO_STATIC_ROOT=static_root, **env)
    try:
        started = time.monotonic()
        try:
            response = server.client(token).get(f"{server.url}/api/customers/export?format=xlsx", timeout=120)
            status, body = response.status_code, response.content
        except requests.exceptions.ConnectionError:
            status, body = None, b""
        return status, body, time.monotonic() - started, log_path.read_text()
    finally:
        server.stop()


def test_an_export_longer_than_the_worker_timeout_arrives_whole(big_database, static_root, tmp_path):
    _, _, expected = big_database

    status, body, elapsed, log = _export(big_database, static_root, tmp_path / "gunicorn.log")

    assert elapsed > 1.5 * TIMEOUT, "the export must outlast the timeout for this test to prove anything"
    assert status == 200
    sheet = openpyxl.load_workbook(io.BytesIO(body), read_only=True).active
    assert sum(1 for _ in sheet.iter_rows(values_only=True)) == expected + 1  # the header, then every customer
    assert "WORKER TIMEOUT" not in log


def test_a_sync_worker_would_be_killed_in_the_middle(big_database, static_root, tmp_path):
    status, _, _, log = _export(big_database, static_root, tmp_path / "gunicorn.log", GUNICORN_WORKER_CLASS="sync")

    assert "WORKER TIMEOUT" in log
    assert status in (None, 500)
