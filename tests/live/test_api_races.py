"""Races between real concurrent clients of gunicorn (3 workers)."""

import sqlite3
import time
import uuid
from concurrent.futures import ThreadPoolExecutor

import psycopg
import pytest

from tests.live.conftest import create_tokens, manage, redis_env_or_skip

pytestmark = pytest.mark.live


@pytest.fixture(scope="module")
def client(gunicorn_server):
    token = create_tokens(gunicorn_server.database_url, ["races"])["races"]
    return gunicorn_server.client(token)


def test_concurrent_creates_with_one_email_make_exactly_one_customer(gunicorn_server, client):
    email = f"race-{uuid.uuid4().hex[:8]}@example.com"
    payload = {"name": "Race", "email": email}

    def create(_):
        return client.post(f"{gunicorn_server.url}/api/customers", json=payload)

    with ThreadPoolExecutor(max_workers=8) as pool:
        responses = list(pool.map(create, range(16)))
    assert sorted(r.status_code for r in responses) == [201] + [400] * 15
    for response in responses:
        if response.status_code == 400:
            assert response.json()["error"]["fields"] == {"email": ["A customer with this email already exists."]}
    listing = client.get(f"{gunicorn_server.url}/api/customers", params={"search": email}).json()
    assert listing["meta"]["count"] == 1


def test_concurrent_writers_lose_nothing(gunicorn_server, client):
    url = gunicorn_server.url
    customer_id = client.post(f"{url}/api/customers", json={"name": "Busy"}).json()["data"]["id"]

    def write(n):
        body = {"customer_id": customer_id, "interaction_type": "call", "notes": f"n{n}"}
        return client.post(f"{url}/api/interactions", json=body).status_code

    with ThreadPoolExecutor(max_workers=6) as pool:
        statuses = list(pool.map(write, range(60)))
    assert statuses == [201] * 60
    listing = client.get(f"{url}/api/interactions", params={"customer_id": customer_id, "page_size": 500}).json()
    assert sorted(row["notes"] for row in listing["data"]) == sorted(f"n{n}" for n in range(60))


class RowLock:
    """A connection of our own holding a write lock on a customer's row (on SQLite: on every write)."""

    def __init__(self, database_url, customer_id):
        self.sqlite = database_url.startswith("sqlite")
        self.database_url, self.customer_id = database_url, customer_id
        if self.sqlite:
            self.connection = sqlite3.connect(database_url.removeprefix("sqlite:///"), isolation_level=None)
            self.connection.execute("BEGIN IMMEDIATE")
        else:
            self.connection = psycopg.connect(database_url)
            self.connection.execute("SELECT id FROM customers_customer WHERE id = %s FOR UPDATE", [customer_id])

    def wait_for_a_waiter(self):
        if self.sqlite:
            time.sleep(1)  # SQLite cannot say who waits: give the request time to reach the lock
            return
        deadline = time.monotonic() + 60
        holder = self.connection.info.backend_pid
        with psycopg.connect(self.database_url, autocommit=True) as observer:
            while time.monotonic() < deadline:
                # A session waiting for this one: the update (not a session of another database, another test's).
                waiting = "SELECT count(*) FROM pg_stat_activity WHERE %s = ANY(pg_blocking_pids(pid))"
                if observer.execute(waiting, [holder]).fetchone()[0]:
                    return
                time.sleep(0.05)
        pytest.fail("the update never waited for the lock")

    def delete_and_commit(self):
        placeholder = "?" if self.sqlite else "%s"
        self.connection.execute(f"DELETE FROM customers_customer WHERE id = {placeholder}", [self.customer_id])
        if self.sqlite:
            self.connection.execute("COMMIT")
        else:
            self.connection.commit()

    def close(self):
        self.connection.close()


def test_an_update_racing_a_delete_does_not_bring_the_record_back(gunicorn_server, client):
    url = gunicorn_server.url
    customer_id = client.post(f"{url}/api/customers", json={"name": "Doomed"}).json()["data"]["id"]
    lock = RowLock(gunicorn_server.database_url, customer_id)
    try:
        with ThreadPoolExecutor(max_workers=1) as pool:
            update = pool.submit(client.patch, f"{url}/api/customers/{customer_id}", json={"name": "Renamed"})
            lock.wait_for_a_waiter()
            lock.delete_and_commit()
            response = update.result(timeout=30)
    finally:
        lock.close()

    assert response.status_code == 404
    assert client.get(f"{url}/api/customers/{customer_id}").status_code == 404


NO_ROLE_TOKEN = (
    "from django.contrib.auth import get_user_model\n"
    "from knox.models import get_token_model\n"
    "user, _ = get_user_model().objects.get_or_create(username='no-role')\n"
    "print(get_token_model().objects.create(user)[1])\n"
)


def test_requests_refused_before_the_write_do_not_wait_for_the_database_write_lock(server_factory, live_database_url):
    """Authentication, permissions and rate limits are decided before a write's transaction begins.

    With SQLite's write lock held elsewhere (a long write, the sqlite3 shell), a refused write is
    answered at once; only a request that will write waits for the lock. The server's lock timeout
    is short: a refusal that waited for the lock would end in "database is locked" instead.
    """
    if not live_database_url.startswith("sqlite"):
        pytest.skip("on PostgreSQL writers do not queue on one lock")
    server = server_factory(workers=2, DJANGO_SQLITE_TIMEOUT=5, DJANGO_THROTTLE_USER="2/minute", **redis_env_or_skip())
    tokens = create_tokens(live_database_url, ["lock-limited", "lock-waiting"])
    no_role = manage(live_database_url, "shell", "--no-imports", "-c", NO_ROLE_TOKEN).strip().splitlines()[-1]
    url = f"{server.url}/api/customers"
    limited = server.client(tokens["lock-limited"])
    assert [limited.post(url, json={"name": f"Before {n}"}).status_code for n in range(2)] == [201, 201]

    holder = sqlite3.connect(live_database_url.removeprefix("sqlite:///"), isolation_level=None)
    holder.execute("BEGIN IMMEDIATE")
    try:
        refused = {
            "unauthenticated": server.client("not-a-token").post(url, json={"name": "Nobody"}),
            "no role": server.client(no_role).post(url, json={"name": "No role"}),
            "over the limit": limited.post(url, json={"name": "Third"}),
        }
        with ThreadPoolExecutor(max_workers=1) as pool:
            waiting = pool.submit(server.client(tokens["lock-waiting"]).post, url, json={"name": "Waited"})
            time.sleep(0.5)
            assert not waiting.done()
            holder.execute("COMMIT")
            created = waiting.result(timeout=30)
    finally:
        holder.close()

    assert {name: (r.status_code, r.json()["error"]["code"]) for name, r in refused.items()} == {
        "unauthenticated": (401, "authentication_failed"),
        "no role": (403, "permission_denied"),
        "over the limit": (429, "throttled"),
    }
    assert created.status_code == 201
    assert created.json()["data"]["name"] == "Waited"
    assert "database is locked" not in server.log_path.read_text()


@pytest.fixture(scope="module")
def early_server(server_factory, live_database_url):
    """A server whose rate limits count in Redis, so that a create reaches its validation (before the
    write lock) while another connection holds the lock; one worker."""
    if not live_database_url.startswith("sqlite"):
        pytest.skip("on PostgreSQL writers do not queue on one lock")
    server = server_factory(workers=1, DJANGO_THROTTLE_USER="100000/minute", **redis_env_or_skip())
    return server, server.client(create_tokens(live_database_url, ["early"])["early"])


def create_while_the_lock_is_held(server, client, body, write_meanwhile, headers=None):
    """POST ``body`` while a connection of our own holds SQLite's write lock; that connection runs
    ``write_meanwhile(connection)`` and commits once the request has had time to be validated and to
    reach the lock."""
    holder = sqlite3.connect(server.database_url.removeprefix("sqlite:///"), isolation_level=None)
    holder.execute("BEGIN IMMEDIATE")
    try:
        with ThreadPoolExecutor(max_workers=1) as pool:
            waiting = pool.submit(client.post, f"{server.url}/api/customers", json=body, headers=headers)
            time.sleep(1)
            assert not waiting.done()
            write_meanwhile(holder)
            holder.execute("COMMIT")
            return waiting.result(timeout=30)
    finally:
        holder.close()


def taking(email):
    """A write that gives ``email`` (in capitals: the index ignores case) to a customer of its own."""

    def take(connection):
        connection.execute(
            "INSERT INTO customers_customer (name, email, status, created_at, updated_at) "
            "VALUES ('First', ?, 'active', '2026-01-01 00:00:00', '2026-01-01 00:00:00')",
            [email.upper()],
        )

    return take


def test_an_email_taken_while_a_create_waits_for_the_lock_is_refused_as_before(early_server):
    """The create was validated before the lock, when the email was free; the unique index decides,
    and the answer is the validation's own 400."""
    server, client = early_server
    email = f"late-{uuid.uuid4().hex[:8]}@example.com"
    company = f"Second Co {uuid.uuid4().hex[:6]}"
    body = {"name": "Second", "email": email, "company": company}
    response = create_while_the_lock_is_held(server, client, body, taking(email))

    assert response.status_code == 400
    assert response.json()["error"]["fields"] == {"email": ["A customer with this email already exists."]}
    listing = client.get(f"{server.url}/api/customers", params={"search": email}).json()
    assert [row["name"] for row in listing["data"]] == ["First"]
    # The company its save created before the insert failed went with it.
    assert client.get(f"{server.url}/api/companies", params={"search": company}).json()["meta"]["count"] == 0


def test_an_email_taken_while_a_create_with_a_key_waits_is_refused_and_the_refusal_stored(early_server):
    server, client = early_server
    email = f"keyed-{uuid.uuid4().hex[:8]}@example.com"
    body, headers = {"name": "Second", "email": email}, {"Idempotency-Key": uuid.uuid4().hex}
    first = create_while_the_lock_is_held(server, client, body, taking(email), headers=headers)
    again = client.post(f"{server.url}/api/customers", json=body, headers=headers)

    assert first.status_code == again.status_code == 400
    assert first.json()["error"]["fields"] == {"email": ["A customer with this email already exists."]}
    assert again.json() == first.json()
    assert again.headers["Idempotent-Replayed"] == "true"


def test_a_company_deleted_while_a_create_naming_it_waits_for_the_lock_is_refused(early_server):
    """A create naming a company by id is validated again under the lock: a 400, as for a company that
    never was, not the deferred foreign key's failure at COMMIT."""
    server, client = early_server
    company_id = client.post(f"{server.url}/api/companies", json={"name": f"Gone {uuid.uuid4().hex[:6]}"}).json()[
        "data"
    ]["id"]

    def delete_the_company(connection):
        connection.execute("DELETE FROM companies_company WHERE id = ?", [company_id])

    response = create_while_the_lock_is_held(
        server, client, {"name": "Orphan", "company_id": company_id}, delete_the_company
    )

    assert response.status_code == 400
    assert response.json()["error"]["fields"] == {"company_id": [f'Invalid pk "{company_id}" - object does not exist.']}
    assert "Internal Server Error" not in server.log_path.read_text()
