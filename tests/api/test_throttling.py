"""Rate limits, counted in the database cache and in Redis (the two shared caches)."""

import os
import uuid

import pytest
import redis
from django.core.cache import cache
from django.core.management import call_command
from django.db import connection
from knox.models import get_token_model
from rest_framework.test import APIClient

from tests.factories import PASSWORD, ManagerFactory, UserFactory

pytestmark = pytest.mark.django_db

REDIS_URL = os.environ.get("TEST_REDIS_URL", "redis://127.0.0.1:6379/3")


def _redis_available():
    try:
        return redis.Redis.from_url(REDIS_URL, socket_connect_timeout=1).ping()
    except redis.RedisError:
        return False


@pytest.fixture(params=["database", "redis"])
def shared_cache(request, settings):
    prefix = f"test-{uuid.uuid4().hex}"
    if request.param == "database":
        settings.CACHES = {
            "default": {
                "BACKEND": "django.core.cache.backends.db.DatabaseCache",
                "LOCATION": "crm_cache",
                "KEY_PREFIX": prefix,
            }
        }
        call_command("createcachetable", verbosity=0)
    else:
        if not _redis_available():
            if os.environ.get("CI"):
                pytest.fail(f"Redis is not reachable at {REDIS_URL}")
            pytest.skip(f"Redis is not reachable at {REDIS_URL}")
        settings.CACHES = {
            "default": {
                "BACKEND": "django.core.cache.backends.redis.RedisCache",
                "LOCATION": REDIS_URL,
                "KEY_PREFIX": prefix,
            }
        }
    return request.param


@pytest.fixture
def rates(settings, shared_cache):
    def set_rates(**overrides):
        settings.REST_FRAMEWORK = {
            **settings.REST_FRAMEWORK,
            "DEFAULT_THROTTLE_RATES": {
                "user": "1000/minute",
                "anon": "1000/minute",
                "login": "1000/minute",
                **overrides,
            },
        }

    return set_rates


def _client_for(user):
    _, token = get_token_model().objects.create(user)
    client = APIClient()
    client.credentials(HTTP_AUTHORIZATION=f"Bearer {token}")
    return client


def _assert_throttled(response):
    assert response.status_code == 429
    assert response.json()["success"] is False
    assert response.json()["error"]["code"] == "throttled"
    assert 0 < int(response["Retry-After"]) <= 60


def test_user_rate_limits_each_user_separately(rates):
    rates(user="3/minute")
    alice, bob = _client_for(ManagerFactory()), _client_for(ManagerFactory())

    statuses = [alice.get("/api/customers").status_code for _ in range(4)]

    assert statuses == [200, 200, 200, 429]
    _assert_throttled(alice.get("/api/customers"))
    assert bob.get("/api/customers").status_code == 200


def test_counters_live_in_the_configured_shared_cache(rates, shared_cache):
    rates(user="5/minute")
    user = ManagerFactory()
    client = _client_for(user)
    for _ in range(2):
        client.get("/api/customers")

    assert len(cache.get(f"throttle_user_{user.pk}")) == 2
    # Read back from the storage itself, not through Django's cache object.
    key = cache.make_key(f"throttle_user_{user.pk}")
    if shared_cache == "database":
        with connection.cursor() as cursor:
            cursor.execute("SELECT COUNT(*) FROM crm_cache WHERE cache_key = %s", [key])
            assert cursor.fetchone()[0] == 1
    else:
        assert redis.Redis.from_url(REDIS_URL).exists(key) == 1


def test_anonymous_rate_limits_by_address(rates):
    rates(anon="2/minute")
    client = APIClient()

    assert [client.get("/api/schema/?format=json").status_code for _ in range(2)] == [200, 200]
    _assert_throttled(client.get("/api/schema/?format=json"))
    assert client.get("/api/schema/?format=json", REMOTE_ADDR="10.1.1.1").status_code == 200


def test_login_is_limited_per_address_whatever_the_username(rates):
    rates(login="3/minute")
    user = ManagerFactory()
    client = APIClient()
    for n in range(3):
        assert (
            client.post("/api/auth/token", {"username": f"guess{n}", "password": "x"}, format="json").status_code == 400
        )

    response = client.post("/api/auth/token", {"username": user.username, "password": PASSWORD}, format="json")

    _assert_throttled(response)
    assert not get_token_model().objects.filter(user=user).exists()


def test_login_is_limited_per_username_across_addresses(rates):
    rates(login="3/minute")
    user = UserFactory(username="alice")
    client = APIClient()
    for n, name in enumerate(["alice", "Alice", " ALICE "]):
        client.post(
            "/api/auth/token", {"username": name, "password": "wrong"}, format="json", REMOTE_ADDR=f"10.0.0.{n}"
        )

    response = client.post(
        "/api/auth/token", {"username": user.username, "password": PASSWORD}, format="json", REMOTE_ADDR="10.0.0.9"
    )

    _assert_throttled(response)
    other = client.post("/api/auth/token", {"username": "bob", "password": "x"}, format="json", REMOTE_ADDR="10.0.0.8")
    assert other.status_code == 400


def test_forwarded_for_header_does_not_reset_the_address_count(rates):
    rates(login="2/minute")
    client = APIClient()
    for n in range(2):
        client.post("/api/auth/token", {"username": f"u{n}", "password": "x"}, format="json")

    response = client.post(
        "/api/auth/token", {"username": "u9", "password": "x"}, format="json", HTTP_X_FORWARDED_FOR="203.0.113.7"
    )

    _assert_throttled(response)


def test_unreachable_redis_lets_requests_through_with_a_warning(settings, api, caplog):
    settings.CACHES = {
        "default": {"BACKEND": "django.core.cache.backends.redis.RedisCache", "LOCATION": "redis://127.0.0.1:9/0"}
    }
    settings.REST_FRAMEWORK = {
        **settings.REST_FRAMEWORK,
        "DEFAULT_THROTTLE_RATES": {"user": "1/minute", "anon": "1/minute"},
    }

    responses = [api.get("/api/customers") for _ in range(2)]

    assert [r.status_code for r in responses] == [200, 200]
    assert "Rate limit 'user' not applied: the cache is unreachable." in caplog.text
