"""Real server processes for tests that need them: gunicorn with several workers.

The server runs the production settings against its own database: an SQLite
file, or, when the suite runs on PostgreSQL (``DATABASE_URL``), a database
named after the test database with ``_live`` appended. It is migrated once per
test session; each server gets its own cache key prefix, so throttle counters
of one server never leak into another.
"""

import json
import os
import re
import secrets
import shutil
import signal
import subprocess
import sys
import time
import uuid
from pathlib import Path
from urllib.parse import urlsplit, urlunsplit

import psycopg
import pytest
import redis
import requests
from django.conf import settings
from django.db import connections

ROOT = Path(settings.BASE_DIR)
REDIS_URL = os.environ.get("TEST_REDIS_URL", "redis://127.0.0.1:6379/3")


def redis_env_or_skip():
    """The environment of a server with its cache in Redis; the test is skipped (failed on CI) without Redis."""
    try:
        redis.Redis.from_url(REDIS_URL, socket_connect_timeout=1).ping()
    except redis.RedisError:
        if os.environ.get("CI"):
            pytest.fail(f"Redis is not reachable at {REDIS_URL}")
        pytest.skip(f"Redis is not reachable at {REDIS_URL}")
    return {"REDIS_URL": REDIS_URL}


def _is_postgres(url):
    return urlsplit(url).scheme in ("postgres", "postgresql")


def base_env(database_url, **extra):
    env = {
        key: value
        for key, value in os.environ.items()
        if not key.startswith(("DJANGO_", "GUNICORN_")) and key not in ("DATABASE_URL", "REDIS_URL")
    }
    env.update(
        {
            "DJANGO_SETTINGS_MODULE": "crm_site.settings.production",
            "DJANGO_SECRET_KEY": secrets.token_urlsafe(50),
            "DJANGO_SECURE_SSL_REDIRECT": "false",
            "DJANGO_ALLOWED_HOSTS": "127.0.0.1,localhost",
            "DATABASE_URL": database_url,
            "PYTHONUNBUFFERED": "1",
        }
    )
    env.update({key: str(value) for key, value in extra.items()})
    return env


def manage(database_url, *args, stdin=None):
    result = subprocess.run(
        [sys.executable, "manage.py", *args],
        cwd=ROOT,
        env=base_env(database_url),
        input=stdin,
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert result.returncode == 0, result.stdout + result.stderr
    return result.stdout


@pytest.fixture(scope="session")
def live_database_url(tmp_path_factory, migrated_sqlite):
    suite_url = os.environ.get("DATABASE_URL", "")
    if _is_postgres(suite_url):
        parts = urlsplit(suite_url)
        # One database per pytest-xdist worker (PYTEST_XDIST_WORKER: gw0, gw1, ...).
        worker = os.environ.get("PYTEST_XDIST_WORKER", "")
        name = f"{parts.path.lstrip('/') or 'crm'}_live{'_' + worker if worker else ''}"
        admin_url = urlunsplit(parts._replace(path="/postgres"))
        with psycopg.connect(admin_url, autocommit=True) as admin:
            admin.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
            admin.execute(f'CREATE DATABASE "{name}"')
        url = urlunsplit(parts._replace(path=f"/{name}"))
        manage(url, "migrate", "--noinput")
    else:
        url = migrated_sqlite(tmp_path_factory.mktemp("live") / "crm.db")
    yield url
    if _is_postgres(url):
        with psycopg.connect(admin_url, autocommit=True) as admin:
            admin.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


def create_tokens(database_url, usernames):
    """Users (created if missing, as sales managers) and a fresh bearer token for each, in the live database."""
    script = (
        "import json, sys\n"
        "from django.contrib.auth import get_user_model\n"
        "from django.contrib.auth.models import Group\n"
        "from knox.models import get_token_model\n"
        "tokens = {}\n"
        "for name in json.loads(sys.stdin.read()):\n"
        "    user, _ = get_user_model().objects.get_or_create(username=name)\n"
        "    user.groups.add(Group.objects.get(name='Sales manager'))\n"
        "    tokens[name] = get_token_model().objects.create(user)[1]\n"
        "print(json.dumps(tokens))\n"
    )
    output = manage(database_url, "shell", "--no-imports", "-c", script, stdin=json.dumps(list(usernames)))
    return json.loads(output.strip().splitlines()[-1])


class LiveServer:
    def __init__(self, process, url, log_path, database_url):
        self.process = process
        self.url = url
        self.log_path = log_path
        self.database_url = database_url

    def log_lines(self):
        # Lines end at "\n" alone: a logged path may hold U+2028, U+0085 and the like, which JSON
        # leaves as they are and str.splitlines() would take for line ends (schemathesis sends them).
        return self.log_path.read_text(errors="replace").split("\n")

    def access_log(self):
        entries = []
        for line in self.log_lines():
            if line.startswith('{"event": "request"'):
                entries.append(json.loads(line))
        return entries

    def client(self, token=None):
        session = requests.Session()
        if token:
            session.headers["Authorization"] = f"Bearer {token}"
        return session

    def stop(self):
        kill_process_group(self.process)


@pytest.fixture(scope="session")
def static_root(tmp_path_factory, live_database_url):
    """``collectstatic`` as a deployment runs it (whitenoise's manifest needs it)."""
    root = tmp_path_factory.mktemp("static")
    result = subprocess.run(
        [sys.executable, "manage.py", "collectstatic", "--noinput"],
        cwd=ROOT,
        env=base_env(live_database_url, DJANGO_STATIC_ROOT=root),
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert result.returncode == 0, result.stdout + result.stderr
    return root


# A loaded machine (a parallel suite on two cores) can take a while to boot three workers.
STARTUP_SECONDS = float(os.environ.get("TEST_SERVER_STARTUP_SECONDS", "120"))


def start_server(database_url, log_path, workers=3, **env):
    """gunicorn on a free port, answering ``/api/health`` from every worker.

    The server runs in a process group of its own: whatever goes wrong while it
    starts (a timeout, a read error, Ctrl-C), the master and its workers are
    killed before the error goes on.
    """
    env.setdefault("DJANGO_CACHE_KEY_PREFIX", f"live-{uuid.uuid4().hex}")
    with log_path.open("w") as log:
        process = subprocess.Popen(
            [
                sys.executable,
                "-m",
                "gunicorn",
                "-c",
                "gunicorn.conf.py",
                "--bind",
                "127.0.0.1:0",
                "--workers",
                str(workers),
            ],
            cwd=ROOT,
            env=base_env(database_url, **env),
            stdout=log,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
    try:
        return LiveServer(process, wait_for_server(process, log_path, workers), log_path, database_url)
    except BaseException:
        kill_process_group(process)
        raise


def wait_for_server(process, log_path, workers):
    """The URL gunicorn listens at, once all ``workers`` have booted and one answers the health check."""
    deadline = time.monotonic() + STARTUP_SECONDS
    url = None
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise RuntimeError(f"gunicorn exited ({process.returncode}):\n{log_path.read_text()}")
        log = log_path.read_text()
        match = re.search(r"Listening at: (http://127\.0\.0\.1:\d+)", log)
        if match:
            url = match.group(1)
            booted = log.count("Booting worker")
            try:
                if booted >= workers and requests.get(f"{url}/api/health", timeout=10).status_code == 200:
                    return url
            except requests.RequestException:
                pass
        time.sleep(0.2)
    raise RuntimeError(f"gunicorn did not come up at {url} within {STARTUP_SECONDS:.0f} s:\n{log_path.read_text()}")


def kill_process_group(process):
    """Stop ``process`` and everything in its group (gunicorn's workers): TERM, then KILL."""
    for sig, wait in ((signal.SIGTERM, 20), (signal.SIGKILL, 10)):
        try:
            os.killpg(process.pid, sig)
        except ProcessLookupError:
            return
        try:
            process.wait(timeout=wait)
            # The master is gone; its workers may linger a moment: KILL the group's remains.
            os.killpg(process.pid, signal.SIGKILL)
        except ProcessLookupError:
            return
        except subprocess.TimeoutExpired:
            continue
        return


@pytest.fixture(scope="session")
def server_factory(live_database_url, static_root, tmp_path_factory):
    """Start gunicorn servers with given environment; all are stopped at the end of the session."""
    servers = []

    def start(workers=3, **env):
        env.setdefault("DJANGO_STATIC_ROOT", static_root)
        log_path = tmp_path_factory.mktemp("server") / "gunicorn.log"
        server = start_server(live_database_url, log_path, workers=workers, **env)
        servers.append(server)
        return server

    yield start
    for server in servers:
        server.stop()


@pytest.fixture(scope="session")
def gunicorn_server(server_factory):
    """gunicorn, 3 workers, database cache, rates high enough not to get in the way."""
    return server_factory(
        workers=3,
        DJANGO_THROTTLE_USER="100000/minute",
        DJANGO_THROTTLE_ANON="100000/minute",
        DJANGO_THROTTLE_LOGIN="100000/minute",
    )


# ---- A browser: Debian's Chromium driven by Playwright -------------------------------------------

ARTIFACTS = ROOT / "test-artifacts"
CHROMIUM_ARGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--no-first-run",
]


@pytest.fixture
def page(monkeypatch, transactional_db, live_server):
    """A Chromium page against ``live_server``; the test is skipped where ``chromium`` is not installed."""
    chromium = shutil.which("chromium")
    if chromium is None:
        pytest.skip("Debian's chromium is not installed (apt-get install -y chromium)")
    # Playwright's sync API runs an event loop in this thread; the ORM calls made
    # by the test itself are still plain synchronous ones.
    monkeypatch.setenv("DJANGO_ALLOW_ASYNC_UNSAFE", "true")
    from playwright.sync_api import sync_playwright

    ARTIFACTS.mkdir(exist_ok=True)
    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=chromium, headless=True, args=CHROMIUM_ARGS)
        context = browser.new_context(locale="en-US", viewport={"width": 1400, "height": 1000})
        page = context.new_page()
        page.set_default_timeout(15_000)
        try:
            yield page
        finally:
            page.screenshot(path=str(ARTIFACTS / "browser-last-page.png"), full_page=True)
            context.close()
            browser.close()
            # Inside Playwright's event loop the ORM got connections of its own: close them.
            connections.close_all()
