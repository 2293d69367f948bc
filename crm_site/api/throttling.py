"""Request rate limits, counted in the shared cache (see ``CACHES``).

Rates come from ``REST_FRAMEWORK["DEFAULT_THROTTLE_RATES"]`` (environment:
``DJANGO_THROTTLE_USER``, ``DJANGO_THROTTLE_ANON``, ``DJANGO_THROTTLE_LOGIN``)
and are read at request time, so a change of settings applies without a reload.

Requests are counted with a sliding window of two fixed-window counters
(the current window and the one before it, weighted by how much of it still
overlaps the last ``duration`` seconds). Each request costs one read of two
small integers and one increment, whatever the rate: DRF's own throttles keep
the timestamp of every request in the window and rewrite that list on each
request, which grows with the rate. Concurrent requests may overshoot a limit
by the number of requests in flight, as with DRF's throttles.
"""

import functools
import hashlib
import logging
import math
from collections.abc import Mapping

import redis
from django.conf import settings
from django.core.cache import DEFAULT_CACHE_ALIAS, caches
from django.core.cache.backends.redis import RedisCache
from django.core.exceptions import ImproperlyConfigured
from redis.exceptions import RedisError
from rest_framework import throttling
from rest_framework.settings import api_settings

logger = logging.getLogger(__name__)

# Slack for float arithmetic on the weighted counts and on whole seconds.
_EPSILON = 1e-6


class _CacheCounters:
    """Counters through Django's cache API, whatever the backend."""

    def __init__(self, cache):
        self.cache = cache

    def read(self, keys):
        counts = self.cache.get_many(keys)
        return [counts.get(key, 0) for key in keys]

    def increment(self, key, exists, timeout):
        if not exists and self.cache.add(key, 1, timeout):
            return
        try:
            self.cache.incr(key)
        except ValueError:  # expired between the read and the increment
            self.cache.add(key, 1, timeout)


class _RedisCounters(_CacheCounters):
    """The same keys and values on Redis, in two round trips over a connection kept per process.

    (Django's Redis cache makes a client per call and checks that a key exists
    before incrementing it: four round trips where two do.)
    """

    def __init__(self, cache, client):
        super().__init__(cache)
        self.client = client

    def read(self, keys):
        values = self.client.mget([self.cache.make_key(key) for key in keys])
        return [0 if value is None else int(value) for value in values]

    def increment(self, key, exists, timeout):
        key = self.cache.make_key(key)
        pipeline = self.client.pipeline(transaction=False)
        pipeline.incr(key)
        pipeline.expire(key, timeout)
        pipeline.execute()


@functools.cache
def _redis_client(url):
    return redis.Redis.from_url(url)


def _counters():
    cache = caches[DEFAULT_CACHE_ALIAS]
    location = settings.CACHES[DEFAULT_CACHE_ALIAS].get("LOCATION")
    # Integers are stored as plain numbers by Django's Redis cache, so both see the same counters.
    if isinstance(cache, RedisCache) and isinstance(location, str) and "," not in location:
        return _RedisCounters(cache, _redis_client(location))
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
        counters = _counters()
        self.current, self.previous = counters.read([current_key, previous_key])
        if self._estimate(self.elapsed) + 1 > self.num_requests + _EPSILON:
            return self.throttle_failure()
        # Kept while it can still weigh on the next window.
        counters.increment(current_key, exists=bool(self.current), timeout=2 * self.duration + 1)
        return True

    def _estimate(self, elapsed):
        """Requests counted in the ``duration`` seconds up to ``elapsed`` seconds into this window."""
        return self.previous * (1 - elapsed / self.duration) + self.current

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
