"""A real server process (gunicorn) on its own database, for tests that need true concurrency."""

import json
import os
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request
import uuid
from contextlib import contextmanager
from pathlib import Path

import dj_database_url

PROJECT = Path(__file__).resolve().parent.parent


def free_port():
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


@contextmanager
def scratch_database_url(tmp_path):
    """A fresh database of the kind the suite runs on (SQLite file or PostgreSQL database)."""
    current = os.environ.get("DATABASE_URL", "")
    if not current.startswith("postgres"):
        yield f"sqlite:///{tmp_path / 'live.db'}"
        return
    import psycopg

    config = dj_database_url.parse(current)
    name = f"crm_live_{uuid.uuid4().hex[:12]}"
    admin_dsn = dict(
        host=config["HOST"], port=config["PORT"] or 5432, user=config["USER"], password=config["PASSWORD"] or None
    )
    with psycopg.connect(dbname="postgres", autocommit=True, **admin_dsn) as conn:
        conn.execute(f'CREATE DATABASE "{name}"')
    try:
        yield current.rsplit("/", 1)[0] + f"/{name}"
    finally:
        with psycopg.connect(dbname="postgres", autocommit=True, **admin_dsn) as conn:
            conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


class LiveServer:
    def __init__(self, base_url, token, env):
        self.base_url = base_url
        self.token = token
        self.env = env

    def request(self, method, path, payload=None, token=True, headers=None):
        data = json.dumps(payload).encode() if payload is not None else None
        request = urllib.request.Request(self.base_url + path, data=data, method=method)
        request.add_header("Content-Type", "application/json")
        if token:
            request.add_header("Authorization", f"Bearer {self.token}")
        for key, value in (headers or {}).items():
            request.add_header(key, value)
        try:
            with urllib.request.urlopen(request, timeout=30) as response:
                return response.status, json.loads(response.read() or b"null")
        except urllib.error.HTTPError as error:
            return error.code, json.loads(error.read() or b"null")

    def manage(self, *args):
        return subprocess.run(
            [sys.executable, "manage.py", *args], cwd=PROJECT, env=self.env, check=True, capture_output=True, text=True
        ).stdout


@contextmanager
def live_gunicorn(tmp_path, workers=2, extra_env=None):
    with scratch_database_url(tmp_path) as database_url:
        env = {
            **os.environ,
            "DJANGO_SETTINGS_MODULE": "crm_site.settings.test",
            "DATABASE_URL": database_url,
            **(extra_env or {}),
        }
        server = LiveServer("", "", env)
        server.manage("migrate", "--noinput", "-v0")
        server.token = server.manage(
            "shell",
            "-c",
            "from django.contrib.auth import get_user_model; from knox.models import get_token_model; "
            "u = get_user_model().objects.create_user('live', password='live-pass-123'); "
            "from django.contrib.auth.models import Group; u.groups.add(Group.objects.get(name='Sales manager')); "
            "print(get_token_model().objects.create(u)[1])",
        ).split()[-1]
        port = free_port()
        process = subprocess.Popen(
            [sys.executable, "-m", "gunicorn", "-w", str(workers), "-b", f"127.0.0.1:{port}", "crm_site.wsgi"],
            cwd=PROJECT,
            env=env,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.PIPE,
        )
        server.base_url = f"http://127.0.0.1:{port}"
        try:
            deadline = time.monotonic() + 30
            while True:
                try:
                    if server.request("GET", "/api/health", token=False)[0] == 200:
                        break
                except (urllib.error.URLError, ConnectionError):
                    pass
                if process.poll() is not None or time.monotonic() > deadline:
                    raise RuntimeError(f"gunicorn did not start: {process.stderr.read().decode()[-2000:]}")
                time.sleep(0.2)
            yield server
        finally:
            process.terminate()
            process.wait(timeout=20)
