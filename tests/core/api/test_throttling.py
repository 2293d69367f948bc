"""Rate limits, counted in the database cache and in Redis (the two shared caches)."""

import contextlib
import os
import threading
import time
import uuid

import pytest
import redis
from django.core.cache import cache
from django.core.management import call_command
from django.db import connection, connections
from knox.models import get_token_model
from rest_framework.test import APIClient, APIRequestFactory

from core.api.throttling import UserThrottle, _redis_link, resp_command
from tests.factories import PASSWORD, ManagerFactory, StaffFactory, UserFactory

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


def _stored(shared_cache, key):
    """(count, seconds left) of a counter, read from the storage itself, not through the throttles."""
    key = cache.make_key(key)
    if shared_cache == "database":
        with connection.cursor() as cursor:
            cursor.execute("SELECT count, expires FROM core_ratecounter WHERE key = %s", [key])
            row = cursor.fetchone()
        return (row[0], row[1] - time.time()) if row else (0, None)
    client = redis.Redis.from_url(REDIS_URL)
    return int(client.get(key) or 0), client.ttl(key)


def _client_for(user):
    _, token = get_token_model().objects.create(user)
    client = APIClient()
    client.credentials(HTTP_AUTHORIZATION=f"Bearer {token}")
    return client


def _assert_throttled(response):
    assert response.status_code == 429
    assert response.json()["success"] is False
    assert response.json()["error"]["code"] == "throttled"
    # The window slides: a client at its limit may wait up to two windows.
    assert 0 < int(response["Retry-After"]) <= 120


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

    window = int(time.time() // 60)
    counts = [_stored(shared_cache, f"throttle_user_{user.pk}:{w}")[0] for w in (window - 1, window)]
    assert sum(counts) == 2


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


@pytest.fixture
def redis_rates(rates, shared_cache):
    if shared_cache != "redis":
        pytest.skip("Redis only")
    return rates


def test_a_script_the_server_forgot_is_loaded_again(redis_rates):
    redis_rates(user="3/minute")
    client = _client_for(ManagerFactory())
    assert client.get("/api/customers").status_code == 200
    redis.Redis.from_url(REDIS_URL).script_flush()

    statuses = [client.get("/api/customers").status_code for _ in range(3)]

    assert statuses == [200, 200, 429]


def test_a_dropped_connection_is_replaced_and_the_request_counted(redis_rates, shared_cache):
    redis_rates(user="3/minute")
    user = ManagerFactory()
    client = _client_for(user)
    assert client.get("/api/customers").status_code == 200
    # The server drops the process's connections to it, as when it restarts (only these: Redis is shared).
    idle = _redis_link(REDIS_URL).idle
    addresses = [":".join(map(str, connection._sock.getsockname()[:2])) for connection in idle]
    assert addresses
    admin = redis.Redis.from_url(REDIS_URL)
    for address in addresses:
        admin.client_kill(address)

    assert [client.get("/api/customers").status_code for _ in range(3)] == [200, 200, 429]
    window = int(time.time() // 60)
    counts = [_stored(shared_cache, f"throttle_user_{user.pk}:{w}")[0] for w in (window - 1, window)]
    assert sum(counts) == 3


@contextlib.contextmanager
def _commands_run():
    """The commands Redis runs meanwhile, as ``MONITOR`` reports them (every client's: Redis is shared)."""
    seen, end = [], f"end-{uuid.uuid4().hex}"
    monitor = redis.Redis.from_url(REDIS_URL).monitor()
    monitor.__enter__()  # MONITOR is on once this returns

    def watch():
        for command in monitor.listen():
            if command["command"] == f"ECHO {end}":
                return
            seen.append(command)

    watcher = threading.Thread(target=watch, daemon=True)
    watcher.start()
    try:
        yield seen
    finally:
        redis.Redis.from_url(REDIS_URL).echo(end)
        watcher.join(10)
        monitor.__exit__(None, None, None)


def test_a_counted_request_is_one_command_to_redis(redis_rates):
    # One round trip a request, over a kept connection: no health check, handshake or second
    # command on the way (each blocking round trip costs a worker far more than its own CPU:
    # docs/benchmarks.md, "Eleventh pass").
    redis_rates()
    client = _client_for(ManagerFactory())
    assert client.get("/api/customers").status_code == 200
    kept = {str(connection._sock.getsockname()[1]) for connection in _redis_link(REDIS_URL).idle}
    assert kept

    with _commands_run() as seen:
        statuses = [client.get("/api/customers").status_code for _ in range(3)]

    assert statuses == [200, 200, 200]
    ours = [command["command"].split()[0] for command in seen if command["client_port"] in kept]
    assert ours == ["EVALSHA"] * 3


def test_redis_replies_are_read_by_hiredis():
    # redis-py's own parser in C (the hiredis package): its pure-Python parser cost a counted
    # request about 55,000 instructions more (docs/benchmarks.md, "Eleventh pass").
    connection = _redis_link(REDIS_URL).pool.make_connection()

    assert redis.utils.HIREDIS_AVAILABLE
    assert type(connection._parser).__name__ == "_HiredisParser"


@pytest.mark.parametrize(
    "args",
    [
        (
            "EVALSHA",
            "a" * 40,
            2,
            "crm:1:throttle_user_7:29433",
            "crm:1:throttle_user_7:29432",
            repr(0.25),
            1200,
            121,
            1e-06,
        ),
        ("SCRIPT", "LOAD", "return {1, 'ü'}"),
    ],
)
def test_rate_limit_commands_are_packed_as_redis_py_packs_them(args):
    packed = redis.Redis.from_url(REDIS_URL).connection_pool.make_connection().pack_command(*args)

    assert resp_command(*args) == b"".join(packed)


# Nothing listens on port 9 here: the connection is refused at once.
UNREACHABLE_REDIS = "redis://127.0.0.1:9/0"


@pytest.fixture
def redis_down(settings):
    settings.CACHES = {
        "default": {"BACKEND": "django.core.cache.backends.redis.RedisCache", "LOCATION": UNREACHABLE_REDIS}
    }
    settings.REST_FRAMEWORK = {
        **settings.REST_FRAMEWORK,
        "DEFAULT_THROTTLE_RATES": {"user": "1/minute", "anon": "1/minute", "login": "1/minute"},
    }


def test_unreachable_cache_serves_other_requests_unthrottled_with_a_warning(redis_down, api, caplog):
    responses = [api.get("/api/customers") for _ in range(2)]

    assert [r.status_code for r in responses] == [200, 200]
    assert "Rate limit 'user' not applied: the cache is unreachable." in caplog.text


def test_unreachable_cache_refuses_api_logins_with_503(redis_down, anon_client, user, caplog):
    response = anon_client.post("/api/auth/token", {"username": user.username, "password": PASSWORD}, format="json")

    assert response.status_code == 503
    assert response.json()["success"] is False
    assert response.json()["error"]["code"] == "login_unavailable"
    assert "login limits cannot be checked" in response.json()["error"]["message"]
    assert not get_token_model().objects.filter(user=user).exists()
    assert "the cache holding the login limits is unreachable" in caplog.text


def test_unreachable_cache_refuses_admin_logins_with_503(redis_down, client, staff_user):
    response = client.post("/admin/login/", {"username": staff_user.username, "password": PASSWORD})

    assert response.status_code == 503
    assert "Logging in is unavailable for the moment" in response.content.decode()
    assert "_auth_user_id" not in client.session


def test_health_reports_the_cache_down_with_503(redis_down, anon_client):
    response = anon_client.get("/api/health")

    assert response.status_code == 503
    assert response.json() == {
        "status": "unhealthy",
        "message": "Cache is unavailable",
        "database": "ok",
        "cache": "down",
    }


def test_health_reports_the_shared_cache_ok(shared_cache, anon_client):
    response = anon_client.get("/api/health")

    assert response.status_code == 200
    assert response.json()["cache"] == "ok"


def _admin_login(client, username, password, address="127.0.0.1"):
    return client.post("/admin/login/", {"username": username, "password": password}, REMOTE_ADDR=address)


def test_admin_login_is_limited_then_refused_even_with_the_right_password(rates, client, caplog):
    rates(login="3/minute")
    staff = StaffFactory(username="clerk")
    for n in range(3):
        assert _admin_login(client, "clerk", f"guess{n}").status_code == 200  # the form again, with its error

    response = _admin_login(client, "clerk", PASSWORD)

    assert response.status_code == 429
    assert 0 < int(response["Retry-After"]) <= 120
    assert "Too many login attempts. Try again in" in response.content.decode()
    assert "_auth_user_id" not in client.session
    assert "Login refused: too many attempts from address 127.0.0.1 or for username 'clerk'." in caplog.text
    # The limit is per address and per username: another user from another address logs in.
    other = StaffFactory(username="other")
    assert _admin_login(client, other.username, PASSWORD, address="10.9.9.9").status_code == 302
    assert client.session["_auth_user_id"] == str(other.pk)
    assert staff.pk != other.pk


def test_admin_login_below_the_limit_logs_in(rates, client):
    rates(login="3/minute")
    staff = StaffFactory(username="clerk")
    for n in range(2):
        _admin_login(client, "clerk", f"guess{n}")

    response = _admin_login(client, "clerk", PASSWORD)

    assert response.status_code == 302
    assert client.session["_auth_user_id"] == str(staff.pk)


def test_admin_login_is_limited_per_username_across_addresses(rates, client):
    rates(login="3/minute")
    StaffFactory(username="clerk")
    for n, name in enumerate(["clerk", "Clerk", " CLERK "]):
        _admin_login(client, name, "wrong", address=f"10.0.0.{n}")

    assert _admin_login(client, "clerk", PASSWORD, address="10.0.0.9").status_code == 429


def test_admin_and_api_logins_share_their_counters(rates, client, anon_client):
    rates(login="3/minute")
    StaffFactory(username="clerk")
    for n in range(2):
        anon_client.post("/api/auth/token", {"username": "clerk", "password": f"guess{n}"}, format="json")
    assert _admin_login(client, "clerk", "guess2", address="10.0.0.1").status_code == 200

    # Three attempts so far on the username, whichever door they came through.
    assert _admin_login(client, "clerk", PASSWORD, address="10.0.0.2").status_code == 429
    api = anon_client.post("/api/auth/token", {"username": "clerk", "password": PASSWORD}, format="json")
    _assert_throttled(api)


def test_admin_login_page_itself_is_not_counted(rates, client):
    rates(login="1/minute")
    StaffFactory(username="clerk")
    for _ in range(3):
        assert client.get("/admin/login/").status_code == 200

    assert _admin_login(client, "clerk", PASSWORD).status_code == 302


class _Clock:
    def __init__(self, now):
        self.now = now

    def __call__(self):
        return self.now


def _throttle_at(clock, rate="3/minute"):
    throttle = UserThrottle()
    throttle.rate = rate
    throttle.num_requests, throttle.duration = throttle.parse_rate(rate)
    throttle.timer = clock
    return throttle


def _allowed(throttle, user):
    request = APIRequestFactory().get("/api/customers")
    request.user = user
    return throttle.allow_request(request, None)


def test_the_window_slides_so_a_boundary_does_not_double_the_rate(rates):
    rates()
    user = ManagerFactory()
    clock = _Clock(60 * 1_000_000 + 59.5)  # half a second before a window ends
    throttle = _throttle_at(clock)

    assert [_allowed(throttle, user) for _ in range(3)] == [True, True, True]
    clock.now += 1  # the next fixed window has begun, but the last minute still holds 3 requests
    assert _allowed(throttle, user) is False


def test_retry_after_is_when_one_more_request_fits(rates):
    rates()
    user = ManagerFactory()
    start = 60 * 1_000_000 + 50
    clock = _Clock(start)
    throttle = _throttle_at(clock)
    assert [_allowed(throttle, user) for _ in range(3)] == [True, True, True]

    assert _allowed(throttle, user) is False
    # 10 s to the end of this window, then a third of the next for one of the 3 to slide out.
    assert throttle.wait() == 30

    clock.now = start + 29
    assert _allowed(throttle, user) is False
    clock.now = start + 30
    assert _allowed(throttle, user) is True


def test_a_counter_stays_one_number_whatever_the_rate(rates, shared_cache):
    rates()
    user = ManagerFactory()
    clock = _Clock(60 * 1_000_000 + 1)
    throttle = _throttle_at(clock, rate="100000/minute")

    for _ in range(50):
        assert _allowed(throttle, user)

    assert _stored(shared_cache, f"throttle_user_{user.pk}:{1_000_000}")[0] == 50


def test_a_rate_of_zero_refuses_everything_and_says_when_to_come_back(rates):
    rates()
    throttle = _throttle_at(_Clock(60 * 1_000_000 + 15), rate="0/minute")

    assert _allowed(throttle, ManagerFactory()) is False
    assert throttle.wait() == 105


@pytest.mark.django_db(transaction=True)
def test_concurrent_requests_cannot_overshoot_the_limit(rates, shared_cache):
    if shared_cache == "database" and connection.vendor == "sqlite":
        pytest.skip("the in-memory test database serves one thread at a time: tests/live covers SQLite")
    rates()
    user = ManagerFactory()
    throttle = _throttle_at(_Clock(60 * 1_000_000 + 30), rate="5/minute")
    start = threading.Barrier(20)
    results = []

    def attempt():
        try:
            start.wait()
            results.append(_allowed(throttle, user))
        finally:
            connections.close_all()  # this thread's own connection

    threads = [threading.Thread(target=attempt) for _ in range(20)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()

    assert sorted(results) == [False] * 15 + [True] * 5


@pytest.mark.parametrize("rate", ["3/hour", "3/day"])
def test_a_counter_is_kept_as_long_as_its_window_counts(rates, shared_cache, rate):
    rates(user=rate)
    user = ManagerFactory()
    client = _client_for(user)
    for _ in range(3):
        client.get("/api/customers")
    duration = 3600 if rate.endswith("hour") else 86400

    window = int(time.time() // duration)
    count, seconds_left = _stored(shared_cache, f"throttle_user_{user.pk}:{window}")
    assert count == 3
    # The counter weighs on the next window too: an expiry at the cache's default
    # (300 s) would let the full rate in again every five minutes.
    assert seconds_left > duration


def test_admin_lockout_message_speaks_the_browsers_language(rates, client):
    rates(login="1/minute")
    StaffFactory(username="clerk")
    _admin_login(client, "clerk", "guess")

    response = client.post("/admin/login/", {"username": "clerk", "password": PASSWORD}, HTTP_ACCEPT_LANGUAGE="zh-hans")

    assert response.status_code == 429
    assert "登录尝试次数过多" in response.content.decode()


def _rate_limit(response):
    """{policy: (remaining, reset)} from the RateLimit header, and {policy: (quota, window)} from the policy."""

    def items(header):
        return {
            part.split(";")[0].strip().strip('"'): dict(p.split("=") for p in part.split(";")[1:])
            for part in response[header].split(",")
        }

    return items("RateLimit"), items("RateLimit-Policy")


def test_every_counted_answer_says_its_policy_and_what_is_left_decreasing(rates):
    rates(user="5/minute")
    client = _client_for(ManagerFactory())

    answers = [client.get("/api/customers"), client.post("/api/customers", {"name": "A"}, format="json")]
    answers += [client.get("/api/customers/999999") for _ in range(3)]

    assert [answer.status_code for answer in answers] == [200, 201, 404, 404, 404]
    for answer in answers:
        limits, policies = _rate_limit(answer)
        assert policies == {"user": {"q": "5", "w": "60"}}
        assert 1 <= int(limits["user"]["t"]) <= 60
    assert [int(_rate_limit(answer)[0]["user"]["r"]) for answer in answers] == [4, 3, 2, 1, 0]


def test_a_refused_request_has_nothing_left_until_retry_after(rates):
    rates(user="2/minute")
    client = _client_for(ManagerFactory())
    client.get("/api/customers")
    client.get("/api/customers")

    refused = client.get("/api/customers")

    assert refused.status_code == 429
    limits, _policies = _rate_limit(refused)
    assert limits["user"] == {"r": "0", "t": refused["Retry-After"]}


def test_a_login_reports_every_policy_that_counts_it(rates):
    rates(anon="7/minute", login="3/minute")

    response = APIClient().post("/api/auth/token", {"username": "nobody", "password": "x"}, format="json")

    limits, policies = _rate_limit(response)
    assert response.status_code == 400
    assert policies == {
        "anon": {"q": "7", "w": "60"},
        "login_address": {"q": "3", "w": "60"},
        "login_username": {"q": "3", "w": "60"},
    }
    assert {name: limit["r"] for name, limit in limits.items()} == {
        "anon": "6",
        "login_address": "2",
        "login_username": "2",
    }


def test_what_is_left_counts_the_part_of_the_previous_window_still_in_the_last_minute(rates):
    rates()
    user = ManagerFactory()
    clock = _Clock(60 * 1_000_000 + 30)
    throttle = _throttle_at(clock, rate="10/minute")
    for _ in range(4):
        _allowed(throttle, user)
    clock.now += 45  # 15 s into the next window: three quarters of the previous one still count (3)

    assert _allowed(throttle, user) is True
    assert throttle.rate_limit(True) == ("user", 10, 60, 6, 45)
