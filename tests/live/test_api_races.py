"""Races between real concurrent clients of gunicorn (3 workers)."""

import uuid
from concurrent.futures import ThreadPoolExecutor

import pytest

from tests.live.conftest import create_tokens

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
