import json
from datetime import timedelta

import pytest
from django.utils import timezone

from core.models import IdempotencyKey
from customers.models import Customer
from interactions.models import Interaction
from opportunities.models import Opportunity
from tests.factories import CustomerFactory, ManagerFactory

pytestmark = pytest.mark.django_db


def post(api, path, body, key):
    return api.post(path, body, format="json", HTTP_IDEMPOTENCY_KEY=key)


def test_retry_with_same_key_replays_first_response_without_second_write(api):
    first = post(api, "/api/customers", {"name": "Ada", "email": "ada@example.com"}, "key-1")
    second = post(api, "/api/customers", {"name": "Ada", "email": "ada@example.com"}, "key-1")

    assert first.status_code == second.status_code == 201
    assert second.content == first.content
    assert second["Idempotent-Replayed"] == "true"
    assert "Idempotent-Replayed" not in first
    assert second["ETag"] == first["ETag"]
    assert Customer.objects.filter(email="ada@example.com").count() == 1


@pytest.mark.parametrize(
    ("path", "body"),
    [
        ("/api/interactions", lambda customer: {"customer_id": customer.pk, "interaction_type": "call"}),
        ("/api/opportunities", lambda customer: {"customer_id": customer.pk, "title": "Deal", "value": 10}),
    ],
)
def test_every_resource_post_is_idempotent(api, path, body):
    customer = CustomerFactory()
    responses = [post(api, path, body(customer), "same") for _ in range(3)]

    assert [r.status_code for r in responses] == [201, 201, 201]
    assert len({r.json()["data"]["id"] for r in responses}) == 1
    assert Interaction.objects.count() + Opportunity.objects.count() == 1


def test_same_key_with_different_body_is_refused(api):
    post(api, "/api/customers", {"name": "Ada"}, "key-2")
    response = post(api, "/api/customers", {"name": "Grace"}, "key-2")

    assert response.status_code == 422
    assert response.json()["error"]["code"] == "idempotency_key_reused"
    assert list(Customer.objects.values_list("name", flat=True)) == ["Ada"]


def test_same_key_on_another_path_is_refused(api):
    customer = CustomerFactory()
    post(api, "/api/interactions", {"customer_id": customer.pk, "interaction_type": "call"}, "key-3")
    response = post(api, "/api/opportunities", {"customer_id": customer.pk, "interaction_type": "call"}, "key-3")

    assert response.status_code == 422
    assert not Opportunity.objects.exists()


def test_keys_belong_to_one_user(api, anon_client):
    from knox.models import get_token_model

    other = ManagerFactory()
    _, token = get_token_model().objects.create(other)
    anon_client.credentials(HTTP_AUTHORIZATION=f"Bearer {token}")

    post(api, "/api/customers", {"name": "Mine"}, "shared-key")
    response = post(anon_client, "/api/customers", {"name": "Theirs"}, "shared-key")

    assert response.status_code == 201
    assert response.json()["data"]["name"] == "Theirs"
    assert IdempotencyKey.objects.filter(key="shared-key").count() == 2


def test_validation_errors_are_replayed_too(api):
    first = post(api, "/api/customers", {"name": ""}, "key-4")
    second = post(api, "/api/customers", {"name": ""}, "key-4")

    assert first.status_code == second.status_code == 400
    assert second.content == first.content
    assert second["Idempotent-Replayed"] == "true"


def test_expired_key_is_treated_as_new(api):
    post(api, "/api/customers", {"name": "Ada"}, "old-key")
    IdempotencyKey.objects.update(created_at=timezone.now() - timedelta(hours=25))

    response = post(api, "/api/customers", {"name": "Ada"}, "old-key")

    assert response.status_code == 201
    assert "Idempotent-Replayed" not in response
    assert Customer.objects.filter(name="Ada").count() == 2
    assert IdempotencyKey.objects.get(key="old-key").created_at > timezone.now() - timedelta(minutes=1)


def test_posts_without_key_are_not_deduplicated(api):
    for _ in range(2):
        assert api.post("/api/customers", {"name": "Ada"}, format="json").status_code == 201
    assert Customer.objects.filter(name="Ada").count() == 2
    assert not IdempotencyKey.objects.exists()


@pytest.mark.parametrize("key", ["", "x" * 256, "has space", "tab\there"])
def test_malformed_key_is_rejected(api, key):
    response = post(api, "/api/customers", {"name": "Ada"}, key)

    assert response.status_code == 400
    assert response.json()["error"]["code"] == "invalid_idempotency_key"
    assert not Customer.objects.exists()


def test_unauthenticated_post_with_key_stores_nothing(anon_client):
    response = anon_client.post("/api/customers", {"name": "Ada"}, format="json", HTTP_IDEMPOTENCY_KEY="k")

    assert response.status_code == 401
    assert not IdempotencyKey.objects.exists()


def test_stored_response_is_the_rendered_envelope(api):
    response = post(api, "/api/customers", {"name": "Ada"}, "key-5")
    record = IdempotencyKey.objects.get(key="key-5")

    assert record.response_status == 201
    assert json.loads(bytes(record.response_body)) == response.json()
    assert record.response_headers["ETag"] == response["ETag"]


@pytest.mark.parametrize("stored_keys", [1, 20])
def test_key_handling_costs_the_same_queries_however_many_keys_are_stored(
    api, user, django_assert_num_queries, stored_keys
):
    for n in range(stored_keys):
        IdempotencyKey.objects.create(user=user, key=f"old-{n}", fingerprint="0" * 64, response_status=201)
    # The request's own savepoint (a transaction outside tests) around: token, claim (in a
    # savepoint), the insert with its history record and its event (in a savepoint), the
    # customer read back with its summary figures, storing the response; and the custom field
    # definitions (a new record must have its required ones).
    with django_assert_num_queries(14):
        assert post(api, "/api/customers", {"name": "Ada"}, "new-key").status_code == 201
    # Around: token, the body validated before the transaction (a customer's create is: the custom field
    # definitions; the email is none), the failed claim (savepoint rolled back, then released), reading
    # the stored response.
    with django_assert_num_queries(9):
        assert post(api, "/api/customers", {"name": "Ada"}, "new-key").status_code == 201


def test_a_create_reads_the_key_without_building_request_headers(api):
    """The key is read from the environ (``META``): a create, keyed or not, does not build
    ``request.headers`` from the whole environ for it (tests/core/api/test_request_path.py's reads neither)."""
    keyed = post(api, "/api/customers", {"name": "Ada"}, "key-meta")
    plain = api.post("/api/customers", {"name": "Grace"}, format="json")
    replayed = post(api, "/api/customers", {"name": "Ada"}, "key-meta")

    assert [keyed.status_code, plain.status_code, replayed.status_code] == [201, 201, 201]
    assert replayed["Idempotent-Replayed"] == "true"
    assert IdempotencyKey.objects.filter(key="key-meta").count() == 1
    assert [r.wsgi_request.__dict__.get("headers") for r in (keyed, plain, replayed)] == [None, None, None]
