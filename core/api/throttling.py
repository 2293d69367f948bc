"""Request rate limits, counted in the shared cache (see ``CACHES``).

Rates come from ``REST_FRAMEWORK["DEFAULT_THROTTLE_RATES"]`` (environment:
``DJANGO_THROTTLE_USER``, ``DJANGO_THROTTLE_ANON``, ``DJANGO_THROTTLE_LOGIN``)
and are read at request time, so a change of settings applies without a reload.

Requests are counted with a sliding window of two fixed-window counters
(the current window and the one before it, weighted by how much of it still
overlaps the last ``duration`` seconds). Each request costs one read of two
small integers and one increment, whatever the rate: DRF's own throttles keep
the timestamp of every request in the window and rewrite that list on each
request, which grows with the rate. On Redis the check and the count are one
atomic script call; through another cache (the database table by default),
concurrent requests may overshoot a limit by the number in flight, as with
DRF's throttles.
"""

import functools
import hashlib
import logging
import math
from collections.abc import Mapping

import redis
from django.conf import settings
from django.core.cache import DEFAULT_CACHE_ALIAS, caches
from django.core.cache.backends.base import BaseCache
from django.core.cache.backends.redis import RedisCache
from django.core.exceptions import ImproperlyConfigured
from redis.exceptions import RedisError
from rest_framework import throttling
from rest_framework.settings import api_settings

logger = logging.getLogger(__name__)

# Slack for float arithmetic on the weighted counts and on whole seconds.
_EPSILON = 1e-6


def _fits(previous, current, weight, limit):
    """Whether one more request fits: the window's estimate plus one stays within ``limit``."""
    return previous * weight + current + 1 <= limit + _EPSILON


class _CacheCounters:
    """Counters through Django's cache API, whatever the backend."""

    def __init__(self, cache):
        self.cache = cache
        # BaseCache.incr() (the database cache's) is a read and a write that gives the
        # key the cache's default timeout (300 s), shorter than an hour's or a day's
        # window: there the count is written with its own timeout instead.
        self.atomic_incr = type(cache).incr is not BaseCache.incr

    def hit(self, current_key, previous_key, weight, limit, timeout):
        """Count one request if it fits; (fits, current count, previous count), counts as before it."""
        counts = self.cache.get_many([current_key, previous_key])
        current, previous = counts.get(current_key, 0), counts.get(previous_key, 0)
        if not _fits(previous, current, weight, limit):
            return False, current, previous
        if not current and self.cache.add(current_key, 1, timeout):
            return True, current, previous
        if not self.atomic_incr:
            # (Not added: another request has counted 1 since the read.)
            self.cache.set(current_key, max(current, 1) + 1, timeout)
            return True, current, previous
        try:
            self.cache.incr(current_key)
        except ValueError:  # expired between the read and the increment
            self.cache.add(current_key, 1, timeout)
        return True, current, previous


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

    One script call per request over a connection kept per process, where
    Django's Redis cache would make a client per call and take four round trips.
    """

    def __init__(self, cache, script):
        self.cache = cache
        self.script = script

    def hit(self, current_key, previous_key, weight, limit, timeout):
        keys = [self.cache.make_key(current_key), self.cache.make_key(previous_key)]
        fits, current, previous = self.script(keys=keys, args=[repr(weight), limit, timeout, _EPSILON])
        return bool(fits), current, previous


@functools.cache
def _redis_script(url):
    return redis.Redis.from_url(url).register_script(_REDIS_HIT)


def _counters():
    cache = caches[DEFAULT_CACHE_ALIAS]
    location = settings.CACHES[DEFAULT_CACHE_ALIAS].get("LOCATION")
    # Integers are stored as plain numbers by Django's Redis cache, so both see the same counters.
    if isinstance(cache, RedisCache) and isinstance(location, str) and "," not in location:
        return _RedisCounters(cache, _redis_script(location))
    return _CacheCounters(cache)


class _SettingsRateMixin:
    def allow_request(self, request, view):
        try:
            return self._allow_request(request, view)
        except RedisError:
            # An unreachable Redis must not take the whole API down with it.
            logger.warning("Rate limit %r not applied: the cache is unreachable.", self.scope, exc_info=True)
            return True

    def get_rate(self):
        try:
            return api_settings.DEFAULT_THROTTLE_RATES[self.scope]
        except KeyError as exc:
            raise ImproperlyConfigured(f"No throttle rate set for scope {self.scope!r}.") from exc

    def _allow_request(self, request, view):
        if self.rate is None:
            return True
        key = self.get_cache_key(request, view)
        if key is None:
            return True
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


class LoginAddressThrottle(_SettingsRateMixin, throttling.SimpleRateThrottle):
    """Login attempts per client address."""

    scope = "login"

    def get_cache_key(self, request, view):
        if request.method != "POST":
            return None
        return self.cache_format % {"scope": "login_address", "ident": self.get_ident(request)}


class LoginUsernameThrottle(_SettingsRateMixin, throttling.SimpleRateThrottle):
    """Login attempts per username, whichever addresses they come from."""

    scope = "login"

    def get_cache_key(self, request, view):
        if request.method != "POST":
            return None
        # A malformed body raises here, and is answered 400/415 like in the view.
        data = request.data
        username = data.get("username") if isinstance(data, Mapping) else None
        if not isinstance(username, str) or not username.strip():
            return None
        ident = hashlib.sha256(username.strip().casefold().encode("utf-8", "surrogatepass")).hexdigest()
        return self.cache_format % {"scope": "login_username", "ident": ident}
