"""/api/webhooks: managers register endpoints, read their delivery log, replay, send test events."""

from datetime import timedelta

import pytest
from django.utils import timezone
from standardwebhooks import Webhook

from webhooks.models import Delivery, Endpoint

pytestmark = pytest.mark.django_db(transaction=True)


def test_create_shows_the_secret_once(api, receiver):
    created = api.post("/api/webhooks", {"url": receiver.url, "event_types": ["customer.created"]}, format="json")
    assert created.status_code == 201, created.content
    data = created.json()["data"]
    assert data["secret"].startswith("whsec_") and data["event_types"] == ["customer.created"]
    assert Endpoint.objects.get(pk=data["id"]).secret == data["secret"]
    assert "secret" not in api.get(f"/api/webhooks/{data['id']}").json()["data"]


@pytest.mark.parametrize(
    "url",
    [
        "http://10.0.0.5/hook",
        "https://10.1.2.3/hook",
        "https://127.0.0.1/hook",
        "https://[::1]/hook",
        "https://169.254.169.254/latest/meta-data",
        # IPv6 addresses that carry a private IPv4 address to a translator or tunnel.
        "https://[64:ff9b::a00:5]/hook",  # NAT64: 10.0.0.5
        "https://[64:ff9b:1::a9fe:a9fe]/hook",  # local-use NAT64: 169.254.169.254
        "https://[::ffff:0:7f00:1]/hook",  # IPv4-translated (SIIT): 127.0.0.1
        "https://[::127.0.0.1]/hook",  # IPv4-compatible
        "https://[2002:c0a8:101::1]/hook",  # 6to4: 192.168.1.1
        "https://localhost/hook",
        "ftp://example.com/",
        "https://user:pw@example.com/",
    ],
)
def test_private_and_odd_urls_are_refused(api, settings, url):
    settings.WEBHOOKS_ALLOW_PRIVATE = False
    response = api.post("/api/webhooks", {"url": url}, format="json")
    assert response.status_code == 400
    assert "url" in response.json()["error"]["fields"]
    assert not Endpoint.objects.exists()


def test_plain_http_to_a_public_address_is_refused_outside_debug(api, settings):
    settings.WEBHOOKS_ALLOW_PRIVATE = True
    response = api.post("/api/webhooks", {"url": "http://93.184.216.34/hook"}, format="json")
    assert response.status_code == 400 and "https" in response.json()["error"]["fields"]["url"][0]


def test_delivery_time_check_refuses_an_endpoint_that_became_private(api, receiver, settings):
    endpoint = Endpoint.objects.create(url=receiver.url)
    settings.WEBHOOKS_ALLOW_PRIVATE = False
    api.post(f"/api/webhooks/{endpoint.pk}/test")
    row = Delivery.objects.get(endpoint=endpoint)
    assert receiver.requests == [] and "private" in row.error and row.response_status is None


def test_unknown_event_type_is_a_400(api, receiver):
    response = api.post("/api/webhooks", {"url": receiver.url, "event_types": ["nope.done"]}, format="json")
    assert response.status_code == 400 and "event_types" in response.json()["error"]["fields"]


@pytest.mark.parametrize(
    ("body", "field", "message"),
    [
        ({"is_active": "false"}, "is_active", "Must be a valid boolean."),
        ({"is_active": 0}, "is_active", "Must be a valid boolean."),
        ({"description": 12}, "description", "Not a valid string."),
        ({"event_types": [12]}, "event_types", "Give a list of event types, each a text of up to 64 characters."),
    ],
)
def test_create_refuses_values_of_the_wrong_json_type(api, receiver, body, field, message):
    response = api.post("/api/webhooks", {"url": receiver.url, **body}, format="json")
    assert response.status_code == 400, response.content
    assert response.json()["error"]["fields"] == {field: [message]}
    assert not Endpoint.objects.exists() and not Endpoint.history.exists()


@pytest.mark.parametrize("sent", ["yes", "true", 1])
def test_update_refuses_a_boolean_that_is_not_true_or_false_and_changes_nothing(api, receiver, sent):
    endpoint = Endpoint.objects.create(url=receiver.url, is_active=False, disabled_reason="410")
    entries = Endpoint.history.count()
    response = api.patch(f"/api/webhooks/{endpoint.pk}", {"description": "Billing", "is_active": sent}, format="json")
    assert response.status_code == 400, response.content
    assert response.json()["error"]["fields"] == {"is_active": ["Must be a valid boolean."]}
    endpoint.refresh_from_db()
    assert (endpoint.is_active, endpoint.disabled_reason, endpoint.description) == (False, "410", "")
    assert Endpoint.history.count() == entries


def test_test_event_log_and_replay(api, receiver):
    endpoint = Endpoint.objects.create(url=receiver.url)
    sent = api.post(f"/api/webhooks/{endpoint.pk}/test")
    assert sent.status_code == 202
    headers, body = receiver.requests[-1]
    assert Webhook(endpoint.secret).verify(body, headers)["type"] == "webhook.test"
    log = api.get(f"/api/webhooks/{endpoint.pk}/deliveries").json()
    row = log["data"][0]
    assert (row["status"], row["attempts"], row["response_status"]) == ("succeeded", 1, 200)
    assert row["duration_ms"] is not None and row["event_type"] == "webhook.test"
    replayed = api.post(f"/api/webhooks/{endpoint.pk}/deliveries/{row['id']}/replay")
    assert replayed.status_code == 202 and len(receiver.requests) == 2
    assert api.get(f"/api/webhooks/{endpoint.pk}/deliveries", {"status": "bogus"}).status_code == 400


def test_replay_failed_since(api, receiver):
    endpoint = Endpoint.objects.create(url=receiver.url)
    now = timezone.now()
    for index, created in enumerate([now - timedelta(days=2), now - timedelta(hours=1)]):
        Delivery.objects.create(
            endpoint=endpoint,
            message_id=f"m{index}",
            event_type="t",
            payload={"n": index},
            status=Delivery.Status.FAILED,
            created_at=created,
        )
    response = api.post(
        f"/api/webhooks/{endpoint.pk}/replay", {"since": (now - timedelta(days=1)).isoformat()}, format="json"
    )
    assert response.json()["data"] == {"replayed": 1}
    assert len(receiver.requests) == 1
    assert api.post(f"/api/webhooks/{endpoint.pk}/replay", {"since": "yesterday"}, format="json").status_code == 400


@pytest.mark.parametrize("since", [1_700_000_000, True])
def test_replay_refuses_a_since_that_is_not_a_text_and_sends_nothing(api, receiver, since):
    endpoint = Endpoint.objects.create(url=receiver.url)
    failed = Delivery.objects.create(
        endpoint=endpoint, message_id="m", event_type="t", payload={}, status=Delivery.Status.FAILED
    )
    response = api.post(f"/api/webhooks/{endpoint.pk}/replay", {"since": since}, format="json")
    assert response.status_code == 400, response.content
    assert list(response.json()["error"]["fields"]) == ["since"]
    failed.refresh_from_db()
    assert failed.status == Delivery.Status.FAILED and receiver.requests == []


def test_rotate_secret_answers_the_new_secret(api, receiver):
    endpoint = Endpoint.objects.create(url=receiver.url)
    data = api.post(f"/api/webhooks/{endpoint.pk}/rotate-secret").json()["data"]
    endpoint.refresh_from_db()
    assert data["secret"] == endpoint.secret != endpoint.previous_secret


def test_reactivating_clears_the_reason(api, receiver):
    endpoint = Endpoint.objects.create(url=receiver.url, is_active=False, disabled_reason="410")
    data = api.patch(f"/api/webhooks/{endpoint.pk}", {"is_active": True}, format="json").json()["data"]
    assert data["is_active"] is True and data["disabled_reason"] == ""


def test_list_query_count_stays_constant(api, receiver, django_assert_num_queries):
    for _ in range(5):
        Endpoint.objects.create(url=receiver.url)
    # Token (with the role), page.
    with django_assert_num_queries(2):
        assert len(api.get("/api/webhooks").json()["data"]) == 5


def test_event_types_that_are_not_texts_get_one_message_for_the_field(api, receiver):
    response = api.post("/api/webhooks", {"url": receiver.url, "event_types": [1, None]}, format="json")
    assert response.status_code == 400
    assert response.json()["error"]["fields"]["event_types"] == [
        "Give a list of event types, each a text of up to 64 characters."
    ]


def test_an_idempotency_key_replays_the_create_with_its_secret_and_writes_one_endpoint(api, receiver):
    body = {"url": receiver.url, "description": "Billing"}
    first = api.post("/api/webhooks", body, format="json", HTTP_IDEMPOTENCY_KEY="hook-1")
    again = api.post("/api/webhooks", body, format="json", HTTP_IDEMPOTENCY_KEY="hook-1")
    assert first.status_code == again.status_code == 201
    assert again.headers["Idempotent-Replayed"] == "true"
    # The same request answered again (a client that lost the answer gets its secret), not a second endpoint.
    assert again.json() == first.json() and Endpoint.objects.count() == 1
    other = api.post("/api/webhooks", {**body, "description": "Other"}, format="json", HTTP_IDEMPOTENCY_KEY="hook-1")
    assert other.status_code == 422 and Endpoint.objects.count() == 1


def test_etag_and_if_match_guard_an_endpoint_against_lost_updates(api, receiver):
    created = api.post("/api/webhooks", {"url": receiver.url}, format="json")
    endpoint_id = created.json()["data"]["id"]
    read = api.get(f"/api/webhooks/{endpoint_id}")
    etag = read.headers["ETag"]
    # The secret shown on creation is no part of the representation the ETag stands for.
    assert created.headers["ETag"] == etag
    assert api.get(f"/api/webhooks/{endpoint_id}", HTTP_IF_NONE_MATCH=etag).status_code == 304
    changed = api.put(f"/api/webhooks/{endpoint_id}", {"description": "One"}, format="json", HTTP_IF_MATCH=etag)
    assert changed.status_code == 200 and changed.headers["ETag"] != etag
    stale = api.put(f"/api/webhooks/{endpoint_id}", {"description": "Two"}, format="json", HTTP_IF_MATCH=etag)
    assert stale.status_code == 412
    assert Endpoint.objects.get(pk=endpoint_id).description == "One"
    deleted = api.delete(f"/api/webhooks/{endpoint_id}", HTTP_IF_MATCH=etag)
    assert deleted.status_code == 412 and Endpoint.objects.filter(pk=endpoint_id).exists()


def test_changes_to_an_endpoint_have_a_history_without_its_secrets(api, receiver):
    endpoint_id = api.post("/api/webhooks", {"url": receiver.url}, format="json").json()["data"]["id"]
    api.put(f"/api/webhooks/{endpoint_id}", {"description": "Changed"}, format="json")
    api.post(f"/api/webhooks/{endpoint_id}/rotate-secret")
    endpoint = Endpoint.objects.get(pk=endpoint_id)
    history = list(endpoint.history.order_by("history_id"))
    # The rotation changes no tracked field: no entry of its own.
    assert [entry.description for entry in history] == ["", "Changed"]
    assert not hasattr(history[0], "secret")


def test_endpoints_have_no_batch_route(api):
    assert api.post("/api/webhooks/batch", {"create": []}, format="json").status_code in (404, 405)
