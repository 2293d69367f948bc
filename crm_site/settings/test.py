"""Settings for the test suite. ``DATABASE_URL`` picks SQLite (default) or PostgreSQL."""

from .base import *  # noqa: F403
from .base import env_bool

DEBUG = False
# A throwaway key: the test database is created and destroyed by each run.
SECRET_KEY = "test-only-key-not-secret-0123456789abcdefghijklmnopqrstuvwxyz"
PASSWORD_HASHERS = ["django.contrib.auth.hashers.MD5PasswordHasher"]
ALLOWED_HOSTS = ["testserver", "localhost", "127.0.0.1"]

if DATABASES["default"]["ENGINE"] == "core.sqlite":  # noqa: F405
    # pytest-django knows SQLite by the name of Django's own backend, which core.sqlite extends:
    # named here, the suite's database stays in memory, one per xdist worker, as it would be there.
    DATABASES["default"].setdefault("TEST", {}).setdefault("NAME", ":memory:")  # noqa: F405

# The suite's own requests must not trip the limits, nor add cache queries to the
# query-count tests: a per-process cache and generous rates. Throttle tests set
# low rates (and the database cache or Redis) explicitly.
CACHES = {"default": {"BACKEND": "django.core.cache.backends.locmem.LocMemCache", "LOCATION": "crm-tests"}}
REST_FRAMEWORK = {
    **REST_FRAMEWORK,  # noqa: F405
    "DEFAULT_THROTTLE_RATES": {"user": "100000/minute", "anon": "100000/minute", "login": "100000/minute"},
}

# Jobs run inline, when enqueued (after the commit), so tests see their effect at once;
# tests of the worker itself start `manage.py worker` with CRM_QUEUE_IMMEDIATE=false.
HUEY = {**HUEY, "immediate": env_bool("CRM_QUEUE_IMMEDIATE", True)}  # noqa: F405
