"""Idempotency keys and If-Match under real concurrent requests to gunicorn (3 workers)."""

import threading
import uuid
from concurrent.futures import ThreadPoolExecutor

import pytest

from tests.live.conftest import create_tokens

pytestmark = pytest.mark.live

THREADS = 8


@pytest.fixture(scope="module")
def token(gunicorn_server):
    return create_tokens(gunicorn_server.database_url, ["concurrency"])["concurrency"]


def run_together(count, action):
    """Run ``action(i)`` in ``count`` threads released at the same moment."""
    barrier = threading.Barrier(count)

    def task(i):
        barrier.wait()
        return action(i)

    with ThreadPoolExecutor(count) as pool:
        return list(pool.map(task, range(count)))


def count_customers(server, token, name):
    response = server.client(token).get(f"{server.url}/api/customers", params={"search": name})
    return response.json()["meta"]["count"]


def create_and_read(server, client, prefix):
    """A new customer's URL and its ETag as read back."""
    created = client.post(f"{server.url}/api/customers", json={"name": f"{prefix} {uuid.uuid4().hex}"})
    url = f"{server.url}/api/customers/{created.json()['data']['id']}"
    return url, client.get(url).headers["ETag"]


def test_concurrent_posts_with_one_key_create_one_record(gunicorn_server, token):
    name = f"Once {uuid.uuid4().hex}"
    key = uuid.uuid4().hex

    def post(_):
        return gunicorn_server.client(token).post(
            f"{gunicorn_server.url}/api/customers", json={"name": name}, headers={"Idempotency-Key": key}, timeout=60
        )

    responses = run_together(THREADS, post)

    assert [r.status_code for r in responses] == [201] * THREADS
    assert len({r.json()["data"]["id"] for r in responses}) == 1
    assert sorted(r.headers.get("Idempotent-Replayed", "false") for r in responses) == ["false"] + ["true"] * (
        THREADS - 1
    )
    assert count_customers(gunicorn_server, token, name) == 1


def test_concurrent_posts_with_distinct_keys_each_create_a_record(gunicorn_server, token):
    name = f"Many {uuid.uuid4().hex}"

    def post(i):
        return gunicorn_server.client(token).post(
            f"{gunicorn_server.url}/api/customers", json={"name": name}, headers={"Idempotency-Key": f"{uuid.uuid4()}"}
        )

    responses = run_together(THREADS, post)

    assert [r.status_code for r in responses] == [201] * THREADS
    assert count_customers(gunicorn_server, token, name) == THREADS


def test_concurrent_edits_with_one_etag_let_exactly_one_through(gunicorn_server, token):
    client = gunicorn_server.client(token)
    url, etag = create_and_read(gunicorn_server, client, "Race")

    def edit(i):
        return gunicorn_server.client(token).patch(url, json={"name": f"Editor {i}"}, headers={"If-Match": etag})

    responses = run_together(THREADS, edit)

    statuses = sorted(r.status_code for r in responses)
    assert statuses == [200] + [412] * (THREADS - 1)
    winner = next(r for r in responses if r.status_code == 200)
    final = client.get(url)
    assert final.json()["data"]["name"] == winner.json()["data"]["name"]
    assert final.headers["ETag"] == winner.headers["ETag"]
    assert all(r.json()["error"]["code"] == "precondition_failed" for r in responses if r.status_code == 412)


def test_concurrent_delete_and_edit_with_one_etag_let_exactly_one_through(gunicorn_server, token):
    client = gunicorn_server.client(token)
    url, etag = create_and_read(gunicorn_server, client, "Gone")

    def act(i):
        session = gunicorn_server.client(token)
        if i % 2:
            return session.delete(url, headers={"If-Match": etag})
        return session.patch(url, json={"phone": str(i)}, headers={"If-Match": etag})

    responses = run_together(THREADS, act)

    assert sum(r.status_code == 200 for r in responses) == 1
    assert all(r.status_code in (412, 404) for r in responses if r.status_code != 200)
