"""Request rate limits, counted in the shared cache (see ``CACHES``).

Rates come from ``REST_FRAMEWORK["DEFAULT_THROTTLE_RATES"]`` (environment:
``DJANGO_THROTTLE_USER``, ``DJANGO_THROTTLE_ANON``, ``DJANGO_THROTTLE_LOGIN``)
and are read at request time, so a change of settings applies without a reload.

Requests are counted with a sliding window of two fixed-window counters
(the current window and the one before it, weighted by how much of it still
overlaps the last ``duration`` seconds). Each request costs one atomic check
and count, whatever the rate: DRF's own throttles keep the timestamp of every
request in the window and rewrite that list on each request, which grows with
the rate, and concurrent requests overshoot their limit. On Redis the check and
the count are one script call; with the database cache (the default), one
conditional upsert in core's ``RateCounter`` table. Either way concurrent
requests cannot pass a limit.

While the counters cannot be reached (Redis down), logins are refused
(``LoginUnavailable``, 503) and other requests are let in uncounted, with a
warning. The admin's login form counts its attempts with the same counters
through ``login_attempt_wait``.

Every counted API request is answered with where it stands (IETF draft
httpapi-ratelimit-headers): ``RateLimit-Policy: "user";q=1200;w=60`` and
``RateLimit: "user";r=1187;t=42``, from the counts the check itself returned.
"""

import contextlib
import functools
import hashlib
import logging
import math
import os
import threading
import time
from collections.abc import Mapping

import redis
from django.conf import settings
from django.core.cache import DEFAULT_CACHE_ALIAS, caches
from django.core.cache.backends.db import DatabaseCache
from django.core.cache.backends.redis import RedisCache
from django.core.exceptions import ImproperlyConfigured
from django.db import connection, transaction
from redis import exceptions as redis_errors
from redis.exceptions import RedisError
from rest_framework import exceptions, throttling
from rest_framework.settings import api_settings

logger = logging.getLogger(__name__)

RATE_LIMITS_ATTRIBUTE = "rate_limits"

# Slack for float arithmetic on the weighted counts and on whole seconds.
_EPSILON = 1e-6


def _fits(previous, current, weight, limit):
    """Whether one more request fits: the window's estimate plus one stays within ``limit``."""
    return previous * weight + current + 1 <= limit + _EPSILON


class CountersUnavailable(Exception):
    """The cache holding the counters cannot be reached: nothing can be counted."""


class _CacheCounters:
    """Counters through Django's cache API, for a cache local to the process (the tests').

    A check and a count are two calls here, made one at a time within the
    process; a cache shared between processes has its own class below.
    """

    _lock = threading.Lock()

    def __init__(self, cache):
        self.cache = cache

    def hit(self, current_key, previous_key, weight, limit, timeout):
        """Count one request if it fits; (fits, current count, previous count), counts as before it."""
        with self._lock:
            counts = self.cache.get_many([current_key, previous_key])
            current, previous = counts.get(current_key, 0), counts.get(previous_key, 0)
            fits = _fits(previous, current, weight, limit)
            if fits:
                self.cache.set(current_key, current + 1, timeout)
        return fits, current, previous

    def ping(self):
        return True


class _DatabaseCounters:
    """The counters in core's ``RateCounter`` table, when the cache is the database's.

    The check and the count are one statement: the row of the current window is
    inserted or incremented only while the weighted count stays within the
    limit, under the row lock that the upsert takes (PostgreSQL) or the
    database's write lock (SQLite), so concurrent requests cannot overshoot.
    Keys are the cache's (its ``KEY_PREFIX`` included), so servers that share a
    database but not a prefix keep separate counts.
    """

    def __init__(self, cache):
        self.cache = cache

    @staticmethod
    @functools.cache
    def _statements(vendor):
        from core.models import RateCounter

        meta = RateCounter._meta
        quote = connection.ops.quote_name
        table = quote(meta.db_table)
        key, count, expires = (quote(meta.get_field(name).column) for name in ("key", "count", "expires"))
        weighted_previous = f"COALESCE((SELECT p.{count} FROM {table} p WHERE p.{key} = %s), 0) * %s"
        # The SELECT's WHERE also keeps SQLite from reading ON CONFLICT as a join's ON.
        hit = (
            f"INSERT INTO {table} ({key}, {count}, {expires}) SELECT %s, 1, %s WHERE {weighted_previous} + 1 <= %s "
            f"ON CONFLICT ({key}) DO UPDATE SET {count} = {table}.{count} + 1, {expires} = excluded.{expires} "
            f"WHERE {weighted_previous} + {table}.{count} + 1 <= %s "
            # The previous window's count too, for the RateLimit header: no second query.
            f"RETURNING {count}, COALESCE((SELECT p.{count} FROM {table} p WHERE p.{key} = %s), 0)"
        )
        read = f"SELECT {key}, {count} FROM {table} WHERE {key} IN (%s, %s)"
        cull = f"DELETE FROM {table} WHERE {expires} < %s"
        return hit, read, cull

    def hit(self, current_key, previous_key, weight, limit, timeout):
        hit, read, cull = self._statements(connection.vendor)
        current_key, previous_key = self.cache.make_key(current_key), self.cache.make_key(previous_key)
        now = int(time.time())
        bound = limit + _EPSILON
        with self._commit_without_waiting(), connection.cursor() as cursor:
            cursor.execute(
                hit,
                [current_key, now + timeout, previous_key, weight, bound, previous_key, weight, bound, previous_key],
            )
            row = cursor.fetchone()
            if row is not None:
                if row[0] == 1:
                    # A window's first request: counters of windows that no longer count go.
                    cursor.execute(cull, [now])
                return True, row[0] - 1, row[1]
            cursor.execute(read, [current_key, previous_key])
            counts = dict(cursor.fetchall())
        return False, counts.get(current_key, 0), counts.get(previous_key, 0)

    @staticmethod
    @contextlib.contextmanager
    def _commit_without_waiting():
        """On PostgreSQL, a transaction of its own whose commit does not wait for the disk.

        A count lost in a crash costs nothing, while waiting for the write-ahead
        log to reach the disk on every request's count costs more than the
        count itself (see docs/benchmarks.md). Inside a caller's transaction the
        setting would reach the caller's writes too: there the count is left as it is.
        """
        if connection.vendor != "postgresql" or connection.in_atomic_block:
            yield
            return
        with transaction.atomic(), connection.cursor() as cursor:
            cursor.execute("SET LOCAL synchronous_commit TO OFF")
            yield

    def ping(self):
        return True  # the database's own check covers it


# The same check and count as _CacheCounters.hit, atomically, in one round trip.
_REDIS_HIT = """
local current = tonumber(redis.call('GET', KEYS[1]) or '0')
local previous = tonumber(redis.call('GET', KEYS[2]) or '0')
if previous * tonumber(ARGV[1]) + current + 1 > tonumber(ARGV[2]) + tonumber(ARGV[4]) then
    return {0, current, previous}
end
redis.call('INCR', KEYS[1])
redis.call('EXPIRE', KEYS[1], ARGV[3])
return {1, current, previous}
"""


class _RedisCounters:
    """The counters on Redis, under the same keys and values as through Django's cache.

    One script call per request, where Django's Redis cache would make a client
    per call and take four round trips. The call is packed here and sent
    straight over a connection of the process's own (one ``EVALSHA``, its reply
    read back): redis-py's client, script and pool objects wrap the same
    exchange in argument checks, command parsing, retry and bookkeeping layers
    that cost more than the round trip itself (see docs/benchmarks.md). The reply
    is read by the connection with hiredis's parser, which redis-py takes when
    the package is installed (a requirement: the pure-Python one took half the
    instructions of a counted request's Redis call). A script the server has
    forgotten (a restart, ``SCRIPT FLUSH``) is loaded again.
    """

    def __init__(self, cache, link):
        self.cache = cache
        self.link = link

    def hit(self, current_key, previous_key, weight, limit, timeout):
        make_key = self.cache.make_key
        try:
            fits, current, previous = self.link.evalsha(
                (make_key(current_key), make_key(previous_key), repr(weight), limit, timeout, _EPSILON)
            )
        except RedisError as exc:
            raise CountersUnavailable(str(exc)) from exc
        return bool(fits), current, previous

    def ping(self):
        try:
            return bool(self.link.script.registered_client.ping())
        except RedisError:
            return False


def resp_command(*args):
    """``args`` packed as one Redis command (RESP), as redis-py packs them: str as UTF-8, numbers by ``repr``."""
    parts = [b"*%d\r\n" % len(args)]
    for arg in args:
        data = arg.encode() if isinstance(arg, str) else repr(arg).encode()
        parts.append(b"$%d\r\n%s\r\n" % (len(data), data))
    return b"".join(parts)


class _RedisLink:
    """The rate-limit script and the connections this process calls it over.

    Connections are made by the client's pool (its address, timeouts and
    protocol) and kept here, one per thread at a time: a connection is taken
    from ``idle`` for a call and put back after it (``list.pop`` and
    ``append`` are atomic). An idle connection the server has closed (a
    restart) reads as ready, and is reconnected before use, as the pool itself
    does; after a fork the parent's connections are left to it.
    """

    def __init__(self, url):
        self.script = redis.Redis.from_url(url, **_REDIS_TIMEOUTS).register_script(_REDIS_HIT)
        self.pool = self.script.registered_client.connection_pool
        self.idle = []
        self.pid = os.getpid()

    def _take(self):
        if self.pid != os.getpid():
            self.idle, self.pid = [], os.getpid()
        try:
            connection = self.idle.pop()
        except IndexError:
            return self.pool.make_connection()
        try:
            # Closed by the server (it raises so), or holding a reply nobody read: start afresh.
            stale = connection.can_read()
        except (redis_errors.ConnectionError, redis_errors.TimeoutError, OSError):
            stale = True
        if stale:
            connection.disconnect()
        return connection

    def evalsha(self, args):
        """The script's reply for ``args`` (its keys, then its arguments)."""
        packed = [resp_command("EVALSHA", self.script.sha, 2, *args)]
        connection = self._take()
        try:
            connection.send_packed_command(packed, check_health=False)
            try:
                reply = connection.read_response()
            except redis_errors.NoScriptError:
                connection.send_packed_command([resp_command("SCRIPT", "LOAD", self.script.script)], check_health=False)
                connection.read_response()
                connection.send_packed_command(packed, check_health=False)
                reply = connection.read_response()
        except BaseException:
            # Whatever the connection holds (a reply half read) goes with it.
            connection.disconnect()
            raise
        self.idle.append(connection)
        return reply


# An unreachable Redis is reported within a second or two, not after the system's TCP timeouts.
_REDIS_TIMEOUTS = {"socket_connect_timeout": 2, "socket_timeout": 2}


@functools.cache
def _redis_link(url):
    return _RedisLink(url)


def _counters():
    cache = caches[DEFAULT_CACHE_ALIAS]
    location = settings.CACHES[DEFAULT_CACHE_ALIAS].get("LOCATION")
    # Integers are stored as plain numbers by Django's Redis cache, so both see the same counters.
    if isinstance(cache, RedisCache) and isinstance(location, str) and "," not in location:
        return _RedisCounters(cache, _redis_link(location))
    if isinstance(cache, DatabaseCache):
        return _DatabaseCounters(cache)
    return _CacheCounters(cache)


def counters_reachable():
    """Whether the rate-limit counters can be read and written (``/api/health``)."""
    return _counters().ping()


class LoginUnavailable(exceptions.APIException):
    """A login refused because its attempts cannot be counted (the cache is unreachable)."""

    status_code = 503
    default_detail = "Logging in is unavailable for the moment (the login limits cannot be checked). Try again shortly."
    default_code = "login_unavailable"


class _SettingsRateMixin:
    # Whether an unreachable cache refuses the request (True) or lets it in uncounted.
    fail_closed = False

    def allow_request(self, request, view):
        if self.rate is None:
            return True
        self.current = allowed = None
        try:
            allowed = self.allow_key(self.get_cache_key(request, view))
            return allowed
        finally:
            if self.current is not None:
                # On the Django request, where RateLimitHeadersMiddleware finds it.
                django_request = getattr(request, "_request", request)
                django_request.__dict__.setdefault(RATE_LIMITS_ATTRIBUTE, []).append(self.rate_limit(allowed))

    def allow_key(self, key):
        """Count one request under ``key`` (None: not limited); whether it is within the rate."""
        if key is None:
            return True
        try:
            return self._allow_key(key)
        except CountersUnavailable:
            if self.fail_closed:
                logger.error("Login refused: the cache holding the login limits is unreachable.", exc_info=True)
                raise LoginUnavailable() from None
            # An unreachable cache must not take the whole API down with it.
            logger.warning("Rate limit %r not applied: the cache is unreachable.", self.scope, exc_info=True)
            return True

    def get_rate(self):
        try:
            return api_settings.DEFAULT_THROTTLE_RATES[self.scope]
        except KeyError as exc:
            raise ImproperlyConfigured(f"No throttle rate set for scope {self.scope!r}.") from exc

    def _allow_key(self, key):
        self.now = self.timer()
        window = int(self.now // self.duration)
        self.elapsed = self.now - window * self.duration
        current_key, previous_key = f"{key}:{window}", f"{key}:{window - 1}"
        fits, self.current, self.previous = _counters().hit(
            current_key,
            previous_key,
            weight=1 - self.elapsed / self.duration,
            limit=self.num_requests,
            # Kept while it can still weigh on the next window.
            timeout=2 * self.duration + 1,
        )
        return True if fits else self.throttle_failure()

    @property
    def policy_name(self):
        return self.scope

    def rate_limit(self, allowed):
        """(policy name, quota, window seconds, requests left, seconds until then) once this request is counted.

        The window slides: "until then" is the end of the current fixed window,
        or for a refused request the wait until one more fits (``Retry-After``).
        """
        if not allowed:
            return self.policy_name, self.num_requests, self.duration, 0, self.wait()
        used = (self.previous or 0) * (1 - self.elapsed / self.duration) + self.current + 1
        remaining = max(0, math.floor(self.num_requests - used + _EPSILON))
        reset = max(1, math.ceil(self.duration - self.elapsed - _EPSILON))
        return self.policy_name, self.num_requests, self.duration, remaining, reset

    def wait(self):
        """Seconds until one more request fits, if no other request comes meanwhile."""
        room = self.num_requests - 1
        if self.current <= room:
            # Within this window, once enough of the previous window has slid out.
            seconds = (1 - (room - self.current) / self.previous) * self.duration - self.elapsed
        else:
            # In the next window, where this one becomes the previous one.
            fraction = 1 - room / self.current if self.current else 1  # a rate of 0 never lets one in
            seconds = (self.duration - self.elapsed) + fraction * self.duration
        return max(1, math.ceil(seconds - _EPSILON))


class UserThrottle(_SettingsRateMixin, throttling.UserRateThrottle):
    """Per authenticated user (anonymous requests fall back to the client address)."""


class AnonThrottle(_SettingsRateMixin, throttling.AnonRateThrottle):
    """Per client address, for requests without credentials."""


class _LoginThrottle(_SettingsRateMixin, throttling.SimpleRateThrottle):
    # Logins are refused while their attempts cannot be counted: a guessing
    # client must not get unlimited tries because the cache went away.
    fail_closed = True
    scope = "login"


class LoginAddressThrottle(_LoginThrottle):
    """Login attempts per client address."""

    policy_name = "login_address"

    def get_cache_key(self, request, view):
        if request.method != "POST":
            return None
        return self.cache_format % {"scope": "login_address", "ident": self.get_ident(request)}


class LoginUsernameThrottle(_LoginThrottle):
    """Login attempts per username, whichever addresses they come from."""

    policy_name = "login_username"

    def get_cache_key(self, request, view):
        if request.method != "POST":
            return None
        # A malformed body raises here, and is answered 400/415 like in the view.
        data = request.data
        return self.username_key(data.get("username") if isinstance(data, Mapping) else None)

    def username_key(self, username):
        if not isinstance(username, str) or not username.strip():
            return None
        ident = hashlib.sha256(username.strip().casefold().encode("utf-8", "surrogatepass")).hexdigest()
        return self.cache_format % {"scope": "login_username", "ident": ident}


def login_attempt_wait(*, request, username):
    """Count one attempt to log in as ``username`` from ``request``'s address, as the API's login does.

    For login forms outside the API (the admin's): the same counters and rate
    (``login`` in ``DEFAULT_THROTTLE_RATES``) per client address and per
    username. Returns None when the attempt may go on, else the seconds to wait
    (the lockout is logged). Raises ``LoginUnavailable`` when the counters
    cannot be reached.
    """
    by_address, by_username = LoginAddressThrottle(), LoginUsernameThrottle()
    if by_address.rate is None:
        return None
    waits = [
        throttle.wait()
        for throttle, key in (
            (by_address, by_address.get_cache_key(request, None)),
            (by_username, by_username.username_key(username)),
        )
        if not throttle.allow_key(key)
    ]
    if not waits:
        return None
    logger.warning(
        "Login refused: too many attempts from address %s or for username %r.",
        by_address.get_ident(request),
        username,
    )
    return max(waits)


class RateLimitHeadersMiddleware:
    """``RateLimit-Policy`` and ``RateLimit`` on every answer whose request a throttle counted."""

    def __init__(self, get_response):
        self.get_response = get_response

    def __call__(self, request):
        response = self.get_response(request)
        limits = getattr(request, RATE_LIMITS_ATTRIBUTE, None)
        if limits:
            response["RateLimit-Policy"] = ", ".join(
                f'"{name}";q={quota};w={window}' for name, quota, window, *_ in limits
            )
            response["RateLimit"] = ", ".join(f'"{name}";r={left};t={reset}' for name, _q, _w, left, reset in limits)
        return response
