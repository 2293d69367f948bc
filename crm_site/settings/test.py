"""Settings for the test suite. ``DATABASE_URL`` picks SQLite (default) or PostgreSQL."""

from .base import *  # noqa: F403

DEBUG = False
# A throwaway key: the test database is created and destroyed by each run.
SECRET_KEY = "test-only-key-not-secret-0123456789abcdefghijklmnopqrstuvwxyz"
PASSWORD_HASHERS = ["django.contrib.auth.hashers.MD5PasswordHasher"]
ALLOWED_HOSTS = ["testserver", "localhost", "127.0.0.1"]
