"""Bearer tokens: login, expiry, logout, revocation; every data endpoint needs authentication."""

import io
from datetime import timedelta

import pytest
from django.contrib.auth import get_user_model
from django.contrib.auth.hashers import make_password
from django.contrib.auth.management.commands import changepassword
from django.contrib.auth.models import update_last_login
from django.core.management import call_command
from django.db import connection
from django.utils import timezone
from knox.models import get_token_model
from rest_framework.test import APIClient

from tests.factories import PASSWORD, CustomerFactory, ManagerFactory, StaffFactory, UserFactory

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


@pytest.mark.parametrize(
    ("payload", "field"),
    [({"username": 12345, "password": "1234"}, "username"), ({"username": "12345", "password": 1234}, "password")],
)
def test_token_login_refuses_credentials_that_are_not_texts(anon_client, db, payload, field):
    UserFactory(username="12345", password="1234")  # the numbers are not taken for their texts
    response = anon_client.post("/api/auth/token", payload, format="json")
    assert response.status_code == 400, response.content
    assert response.json()["error"]["fields"] == {field: ["Not a valid string."]}
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


def deactivate_by_save(user, client):
    user.is_active = False
    user.save()


def deactivate_by_queryset_update(user, client):
    get_user_model().objects.filter(pk=user.pk).update(is_active=False)


def deactivate_by_raw_sql(user, client):
    with connection.cursor() as cursor:
        cursor.execute("UPDATE auth_user SET is_active = %s WHERE id = %s", [False, user.pk])


def deactivate_in_the_admin(user, client):
    client.force_login(StaffFactory(username="admin"))
    response = client.post(
        f"/admin/auth/user/{user.pk}/change/",
        {
            "username": user.username,
            "email": user.email,
            "is_staff": "on",
            # is_active left out: the checkbox unticked.
            "groups": list(user.groups.values_list("pk", flat=True)),
            "date_joined_0": "2024-01-01",
            "date_joined_1": "00:00:00",
        },
    )
    assert response.status_code == 302, response.content


@pytest.mark.parametrize(
    "deactivate", [deactivate_by_save, deactivate_by_queryset_update, deactivate_by_raw_sql, deactivate_in_the_admin]
)
def test_token_of_deactivated_user_never_works_again(user, token, client, deactivate):
    deactivate(user, client)
    assert get_user_model().objects.get(pk=user.pk).is_active is False
    response = bearer(token).get("/api/customers")
    assert response.status_code == 401
    assert response.json()["error"]["code"] == "authentication_failed"
    # Reactivating the account, whichever way, does not bring the token back.
    get_user_model().objects.filter(pk=user.pk).update(is_active=True)
    assert bearer(token).get("/api/customers").status_code == 401
    assert not AuthToken.objects.filter(user=user).exists()


def test_a_token_taken_after_reactivation_works(user, token, anon_client):
    get_user_model().objects.filter(pk=user.pk).update(is_active=False)
    get_user_model().objects.filter(pk=user.pk).update(is_active=True)
    response = anon_client.post("/api/auth/token", {"username": user.username, "password": PASSWORD}, format="json")
    assert bearer(response.json()["data"]["token"]).get("/api/customers").status_code == 200


NEW_PASSWORD = "a different horse entirely"


def set_password_and_save(user, client, monkeypatch):
    user.set_password(NEW_PASSWORD)
    user.save()


def set_password_and_save_only_it(user, client, monkeypatch):
    user.set_password(NEW_PASSWORD)
    user.save(update_fields=["password"])


def changepassword_command(user, client, monkeypatch):
    monkeypatch.setattr(changepassword.Command, "_get_pass", lambda self, prompt="": NEW_PASSWORD)
    call_command("changepassword", user.username, stdout=io.StringIO())


def admin_password_form(user, client, monkeypatch):
    client.force_login(StaffFactory(username="admin"))
    response = client.post(
        f"/admin/auth/user/{user.pk}/password/",
        {"usable_password": "true", "password1": NEW_PASSWORD, "password2": NEW_PASSWORD, "set-password": "Change"},
    )
    assert response.status_code == 302, response.content


def admin_disables_password_login(user, client, monkeypatch):
    client.force_login(StaffFactory(username="admin"))
    response = client.post(
        f"/admin/auth/user/{user.pk}/password/", {"usable_password": "false", "unset-password": "Disable"}
    )
    assert response.status_code == 302, response.content


def hash_assigned_directly(user, client, monkeypatch):
    user.password = make_password(NEW_PASSWORD)
    user.save()


def hash_set_by_queryset_update(user, client, monkeypatch):
    get_user_model().objects.filter(pk=user.pk).update(password=make_password(NEW_PASSWORD))


def hash_set_by_raw_sql(user, client, monkeypatch):
    with connection.cursor() as cursor:
        cursor.execute("UPDATE auth_user SET password = %s WHERE id = %s", [make_password(NEW_PASSWORD), user.pk])


@pytest.mark.parametrize(
    "change",
    [
        set_password_and_save,
        set_password_and_save_only_it,
        changepassword_command,
        admin_password_form,
        admin_disables_password_login,
        hash_assigned_directly,
        hash_set_by_queryset_update,
        hash_set_by_raw_sql,
    ],
)
def test_changing_the_password_revokes_every_token_of_that_user(user, client, monkeypatch, change):
    _, first = AuthToken.objects.create(user)
    _, second = AuthToken.objects.create(user)
    _, others = AuthToken.objects.create(ManagerFactory())
    change(user, client, monkeypatch)
    user.refresh_from_db()
    assert not user.check_password(PASSWORD)
    for raw in (first, second):
        response = bearer(raw).get("/api/customers")
        assert response.status_code == 401
        assert response.json()["error"]["code"] == "authentication_failed"
    assert not AuthToken.objects.filter(user=user).exists()
    assert bearer(others).get("/api/customers").status_code == 200


def test_a_token_taken_after_the_change_works(user, anon_client):
    AuthToken.objects.create(user)
    user.set_password(NEW_PASSWORD)
    user.save()
    response = anon_client.post("/api/auth/token", {"username": user.username, "password": NEW_PASSWORD}, format="json")
    assert response.status_code == 200
    assert bearer(response.json()["data"]["token"]).get("/api/customers").status_code == 200
    assert AuthToken.objects.filter(user=user).count() == 1


def test_saves_that_keep_the_password_keep_the_tokens(user, token, django_assert_num_queries):
    user.first_name = "Renamed"
    user.save()
    user.refresh_from_db()
    # Signing in to the admin records last_login: one UPDATE, nothing else.
    with django_assert_num_queries(1):
        update_last_login(None, user)
    assert bearer(token).get("/api/customers").status_code == 200


def test_upgrading_the_password_hash_at_login_ends_older_tokens(db, anon_client):
    # A hash weaker than the hasher's current parameters (here: a short salt) is upgraded
    # when the user next logs in. Tokens are tied to the stored hash, as Django's sessions
    # are: the older ones end, the one taken with that login works.
    user = ManagerFactory()
    weak = make_password(PASSWORD, salt="ab", hasher="md5")
    get_user_model().objects.filter(pk=user.pk).update(password=weak)
    _, older = AuthToken.objects.create(user)
    response = anon_client.post("/api/auth/token", {"username": user.username, "password": PASSWORD}, format="json")
    assert get_user_model().objects.get(pk=user.pk).password not in ("", weak)
    assert bearer(older).get("/api/customers").status_code == 401
    assert bearer(response.json()["data"]["token"]).get("/api/customers").status_code == 200


def test_logout_revokes_only_that_token(user):
    _, first = AuthToken.objects.create(user)
    _, second = AuthToken.objects.create(user)
    response = bearer(first).post("/api/auth/logout")
    assert response.status_code == 200
    assert response.json() == {"success": True, "message": "Logged out.", "data": None}
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
