"""Settings for running on a developer's or a small team's own machine.

DEBUG is on unless ``DJANGO_DEBUG`` says otherwise. Without ``DJANGO_SECRET_KEY``
a random key is generated once into ``.secret_key`` (git-ignored), so sessions
survive restarts and no key is ever committed.
"""

import secrets

from .base import *  # noqa: F403
from .base import BASE_DIR, env, env_bool


def _local_secret_key():
    path = BASE_DIR / ".secret_key"
    if not path.exists():
        path.write_text(secrets.token_urlsafe(50))
        path.chmod(0o600)
    return path.read_text().strip()


DEBUG = env_bool("DJANGO_DEBUG", True)
SECRET_KEY = env("DJANGO_SECRET_KEY") or _local_secret_key()
