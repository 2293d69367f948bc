"""Request rate limits, counted in the shared cache (see ``CACHES``).

Rates come from ``REST_FRAMEWORK["DEFAULT_THROTTLE_RATES"]`` (environment:
``DJANGO_THROTTLE_USER``, ``DJANGO_THROTTLE_ANON``, ``DJANGO_THROTTLE_LOGIN``)
and are read at request time, so a change of settings applies without a reload.
"""

import hashlib
import logging
from collections.abc import Mapping

from django.core.exceptions import ImproperlyConfigured
from redis.exceptions import RedisError
from rest_framework import throttling
from rest_framework.settings import api_settings

logger = logging.getLogger(__name__)


class _SettingsRateMixin:
    def allow_request(self, request, view):
        try:
            return super().allow_request(request, view)
        except RedisError:
            # An unreachable Redis must not take the whole API down with it.
            logger.warning("Rate limit %r not applied: the cache is unreachable.", self.scope, exc_info=True)
            return True

    def get_rate(self):
        try:
            return api_settings.DEFAULT_THROTTLE_RATES[self.scope]
        except KeyError as exc:
            raise ImproperlyConfigured(f"No throttle rate set for scope {self.scope!r}.") from exc


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
