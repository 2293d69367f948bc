"""Bearer tokens: login, expiry, logout; every data endpoint needs authentication."""

from datetime import timedelta

import pytest
from django.utils import timezone
from knox.models import get_token_model
from rest_framework.test import APIClient

from tests.factories import PASSWORD, CustomerFactory, UserFactory

AuthToken = get_token_model()

PROTECTED = [
    ("get", "/api/customers"),
    ("post", "/api/customers"),
    ("get", "/api/customers/1"),
    ("put", "/api/customers/1"),
    ("patch", "/api/customers/1"),
    ("delete", "/api/customers/1"),
    ("get", "/api/interactions"),
    ("post", "/api/interactions"),
    ("get", "/api/interactions/1"),
    ("get", "/api/opportunities"),
    ("post", "/api/opportunities"),
    ("delete", "/api/opportunities/1"),
    ("post", "/api/auth/logout"),
]


def bearer(raw):
    client = APIClient()
    client.credentials(HTTP_AUTHORIZATION=f"Bearer {raw}")
    return client


def test_token_login_returns_token_and_expiry(anon_client, user):
    response = anon_client.post("/api/auth/token", {"username": user.username, "password": PASSWORD}, format="json")
    assert response.status_code == 200
    data = response.json()["data"]
    assert len(data["token"]) >= 32
    assert data["expires_at"].endswith("Z")
    assert bearer(data["token"]).get("/api/customers").status_code == 200


def test_tokens_are_stored_hashed(anon_client, user):
    raw = anon_client.post("/api/auth/token", {"username": user.username, "password": PASSWORD}, format="json").json()[
        "data"
    ]["token"]
    stored = AuthToken.objects.get(user=user)
    assert stored.digest != raw
    assert raw not in stored.digest


@pytest.mark.parametrize(
    "payload",
    [
        {"username": "nobody", "password": PASSWORD},
        {"username": "user-x", "password": "wrong"},
        {"username": "user-x"},
        {},
        {"username": "user-x", "password": "a\x00b"},
    ],
)
def test_token_login_rejects_bad_credentials_with_400(anon_client, db, payload):
    UserFactory(username="user-x")
    response = anon_client.post("/api/auth/token", payload, format="json")
    assert response.status_code == 400
    assert response.json()["success"] is False
    assert response.json()["error"]["code"] == "validation_error"
    assert not AuthToken.objects.exists()


def test_inactive_user_cannot_get_a_token(anon_client, db):
    UserFactory(username="gone", is_active=False)
    response = anon_client.post("/api/auth/token", {"username": "gone", "password": PASSWORD}, format="json")
    assert response.status_code == 400


@pytest.mark.parametrize(("method", "path"), PROTECTED)
def test_data_endpoints_without_token_are_401(anon_client, db, method, path):
    CustomerFactory(id=1)
    response = getattr(anon_client, method)(path, {}, format="json")
    assert response.status_code == 401
    assert response["WWW-Authenticate"] == "Bearer"
    assert response.json()["error"]["code"] == "not_authenticated"


@pytest.mark.parametrize(
    "header",
    ["Bearer not-a-real-token", "Bearer ", "Bearer a b", "Bearer " + "f" * 64, "Bearer \u00ff\u00fe"],
)
def test_invalid_tokens_are_401(db, header):
    client = APIClient()
    client.credentials(HTTP_AUTHORIZATION=header)
    response = client.get("/api/customers")
    assert response.status_code == 401
    assert response.json()["success"] is False


def test_token_in_query_string_is_not_accepted(anon_client, token):
    response = anon_client.get(f"/api/customers?token={token}&access_token={token}")
    assert response.status_code == 401


def test_expired_token_is_401_and_removed(user):
    instance, raw = AuthToken.objects.create(user, expiry=timedelta(minutes=5))
    AuthToken.objects.filter(pk=instance.pk).update(expiry=timezone.now() - timedelta(seconds=1))
    response = bearer(raw).get("/api/customers")
    assert response.status_code == 401
    assert response.json()["error"]["code"] == "authentication_failed"
    assert not AuthToken.objects.filter(pk=instance.pk).exists()


def test_token_of_deactivated_user_is_401(user, token):
    user.is_active = False
    user.save()
    assert bearer(token).get("/api/customers").status_code == 401


def test_logout_revokes_only_that_token(user):
    _, first = AuthToken.objects.create(user)
    _, second = AuthToken.objects.create(user)
    response = bearer(first).post("/api/auth/logout")
    assert response.status_code == 200
    assert response.json() == {"success": True, "message": "Logged out."}
    assert bearer(first).get("/api/customers").status_code == 401
    assert bearer(second).get("/api/customers").status_code == 200


def test_staff_logged_into_the_admin_use_the_browsable_api(client, staff_user):
    CustomerFactory(name="Browsable")
    client.force_login(staff_user)
    as_json = client.get("/api/customers", HTTP_ACCEPT="application/json")
    assert as_json.status_code == 200
    assert as_json.json()["data"][0]["name"] == "Browsable"
    as_html = client.get("/api/customers", HTTP_ACCEPT="text/html")
    assert as_html.status_code == 200
    assert "Browsable" in as_html.content.decode()
