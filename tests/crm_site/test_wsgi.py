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


def run_as_gunicorns_master(script, database):
    """Run ``script`` in a fresh process with the production settings; its last line of output, decoded."""
    clean = {k: v for k, v in os.environ.items() if not k.startswith("DJANGO_") and k not in ("DATABASE_URL",)}
    result = subprocess.run(
        [sys.executable, "-c", script],
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
    return json.loads(result.stdout.strip().splitlines()[-1])


def test_the_url_lookups_are_built_at_import_and_nothing_is_connected(tmp_path):
    database = tmp_path / "never-opened.db"
    answer = run_as_gunicorns_master(SCRIPT, database)
    assert answer["view"] == "customer-detail"
    # A request finds every lookup built, in each language: none is built on first use.
    assert answer["built"] == []
    # gunicorn forks its workers from this process: they must open their own connections.
    assert answer["connected"] == []
    assert not database.exists()


FORKED = """
import gc, json, os, runpy

config = runpy.run_path("gunicorn.conf.py")
import crm_site.wsgi  # what gunicorn's master imports (preload_app)

loaded = len(gc.get_objects())
config["pre_fork"](None, None)  # what the master runs before it forks each worker
read, write = os.pipe()
if os.fork() == 0:
    # In the worker: the objects a full collection would visit, and those it leaves alone.
    os.write(write, json.dumps({"collectable": len(gc.get_objects()), "frozen": gc.get_freeze_count()}).encode())
    os._exit(0)
os.close(write)
print(json.dumps({"loaded": loaded, **json.loads(os.read(read, 1000))}))
"""


def test_a_forked_worker_leaves_what_the_master_loaded_to_the_master(tmp_path):
    """A worker's collections do not visit the loaded application (and so do not copy its pages).

    Without this, a worker's first full collection wrote to the header of every object it had inherited:
    a pause of about 90 ms a recycled worker, and each worker's own copy of most of the master's memory.
    """
    answer = run_as_gunicorns_master(FORKED, tmp_path / "never-opened.db")

    assert answer["loaded"] > 50_000
    assert answer["frozen"] > answer["loaded"] * 0.99
    assert answer["collectable"] < answer["loaded"] / 100
