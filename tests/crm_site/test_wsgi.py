"""The WSGI module, as gunicorn loads it before forking its workers: in a fresh process, with the production settings."""

import json
import os
import secrets
import subprocess
import sys

from django.conf import settings

SCRIPT = """
import json
from django.urls import resolvers

import crm_site.wsgi  # what gunicorn's master imports (preload_app)

from django.db import connections
from django.urls import resolve, reverse
from django.utils import translation

connected = [alias for alias in connections if connections[alias].connection is not None]
built = []
original = resolvers.URLResolver._populate


def counted(self):
    built.append(repr(self))
    return original(self)


resolvers.URLResolver._populate = counted
for language in ("en", "zh-hans"):
    with translation.override(language):
        # What a request does: the admin's prefix (core.timezones), an API route and its name.
        reverse("admin:index")
        match = resolve("/api/customers/7")
        reverse(match.view_name, kwargs=match.kwargs)
        reverse("admin:customers_customer_changelist")
print(json.dumps({"connected": connected, "built": built, "view": match.view_name}))
"""


def test_the_url_lookups_are_built_at_import_and_nothing_is_connected(tmp_path):
    database = tmp_path / "never-opened.db"
    clean = {k: v for k, v in os.environ.items() if not k.startswith("DJANGO_") and k not in ("DATABASE_URL",)}
    result = subprocess.run(
        [sys.executable, "-c", SCRIPT],
        cwd=settings.BASE_DIR,
        env={
            **clean,
            "DJANGO_SETTINGS_MODULE": "crm_site.settings.production",
            "DJANGO_SECRET_KEY": secrets.token_urlsafe(50),
            "DJANGO_ALLOWED_HOSTS": "crm.example.com",
            "DATABASE_URL": f"sqlite:///{database}",
            # A Redis nobody listens on: a connection made at import would fail here.
            "REDIS_URL": "redis://127.0.0.1:1/0",
        },
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert result.returncode == 0, result.stderr
    answer = json.loads(result.stdout.strip().splitlines()[-1])
    assert answer["view"] == "customer-detail"
    # A request finds every lookup built, in each language: none is built on first use.
    assert answer["built"] == []
    # gunicorn forks its workers from this process: they must open their own connections.
    assert answer["connected"] == []
    assert not database.exists()
