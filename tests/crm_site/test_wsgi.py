"""The WSGI module, as gunicorn loads it before forking its workers: in a fresh process, with the production settings."""

import gc
import json
import os
import runpy
import secrets
import subprocess
import sys
import weakref

import pytest
from django.conf import settings
from gunicorn.config import Config

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


def gunicorn_config():
    """``gunicorn.conf.py`` as gunicorn reads it: its hooks under the names gunicorn calls."""
    config = Config()
    for name, value in runpy.run_path(str(settings.BASE_DIR / "gunicorn.conf.py")).items():
        if name in config.settings:
            config.set(name.lower(), value)
    return config


FORKED = """
import gc, json, os

from tests.crm_site.test_wsgi import gunicorn_config

config = gunicorn_config()
if PRELOAD:
    import crm_site.wsgi  # what gunicorn's master imports (preload_app)
config.pre_fork(None, None)  # what the master runs before it forks each worker
read, write = os.pipe()
if os.fork() == 0:
    if not PRELOAD:
        import crm_site.wsgi  # what a worker imports itself
    # The objects a full collection would visit, and those it leaves alone.
    answer = {"loaded": len(gc.get_objects()) + gc.get_freeze_count(), "collectable_at_fork": len(gc.get_objects())}
    config.post_worker_init(None)  # what the worker runs once it has the application
    answer.update(collectable=len(gc.get_objects()), frozen=gc.get_freeze_count())
    os.write(write, json.dumps(answer).encode())
    os._exit(0)
os.close(write)
print(os.read(read, 1000).decode())
os.wait()
"""


@pytest.mark.parametrize("preload", [True, False], ids=["preloaded", "loaded-by-the-worker"])
def test_a_worker_leaves_the_loaded_application_out_of_its_collections(tmp_path, preload):
    """A worker's collections do not visit the loaded application (and so do not copy its pages).

    Without this, every full collection in a worker (its exit included) visited each object of
    the application: 50 to 100 ms each, and each worker's own copy of most of the master's memory.
    """
    answer = run_as_gunicorns_master(f"PRELOAD = {preload}\n{FORKED}", tmp_path / "never-opened.db")

    assert answer["loaded"] > 50_000
    assert answer["frozen"] > answer["loaded"] * 0.99
    assert answer["collectable"] < answer["loaded"] / 100
    if preload:
        # Frozen in the master, before the fork: the master's own collections leave it alone too.
        assert answer["collectable_at_fork"] < answer["loaded"] / 100


def test_a_reload_frees_the_cycles_frozen_with_the_previous_configuration():
    config = gunicorn_config()

    class Node:
        pass

    node = Node()
    node.itself = node  # a cycle: only the collector frees it
    gone = weakref.ref(node)
    del node
    gc.freeze()  # as the master's pre_fork does, with the configuration read at start
    try:
        gc.collect()
        assert gone() is not None
        config.on_reload(None)  # the master, after a HUP
        assert gone() is None
    finally:
        gc.unfreeze()
