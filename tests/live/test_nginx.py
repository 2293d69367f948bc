"""nginx from Debian in front of gunicorn, configured from deploy/nginx.conf.

Slow clients that send part of their headers and then wait hold a gunicorn worker
thread each until they finish; with the default of one thread per worker, a few of
them leave nothing to answer anyone else. nginx reads whole requests before it
passes them on, so behind it the same clients cost gunicorn nothing.
"""

import os
import re
import shutil
import signal
import socket
import subprocess
import time
from concurrent.futures import ThreadPoolExecutor
from contextlib import ExitStack, contextmanager

import pytest
import requests

from tests.live.conftest import ROOT, kill_process_group

pytestmark = pytest.mark.live

TEMPLATE = ROOT / "deploy" / "nginx.conf"
# Slow clients arrive in batches (more than gunicorn's 3 threads each time) until
# gunicorn stops answering; which worker accepts which connection is the kernel's
# choice, so on a busy machine one batch may miss a worker. nginx gets the most.
BATCH = 8
MOST_SLOW_CLIENTS = 64
# Health checks sent at once: a worker left free would take some of them.
PROBES = 6
# Far above what /api/health takes, far below the slow clients' patience.
ANSWER_WITHIN = 5
MAX_BODY = 64 * 1024


def nginx_binary():
    path = shutil.which("nginx") or ("/usr/sbin/nginx" if os.path.exists("/usr/sbin/nginx") else None)
    if path is None:
        pytest.fail("nginx is not installed: apt-get install -y nginx (.ci/run does it)")
    return path


def free_port():
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def render_template(values):
    """deploy/nginx.conf with its ``${CRM_...}`` placeholders filled in, as the documented envsubst does."""
    text = TEMPLATE.read_text()
    placeholders = set(re.findall(r"\$\{(CRM_\w+)\}", text))
    # The envsubst line in the file's header names every placeholder the file uses.
    command = next(line for line in text.splitlines() if "envsubst '" in line)
    assert set(re.findall(r"\$\{(CRM_\w+)\}", command)) == placeholders
    assert placeholders == set(values)
    return re.sub(r"\$\{(CRM_\w+)\}", lambda match: str(values[match.group(1)]), text)


def main_config(prefix, site):
    """The smallest nginx.conf around the site's server block: everything under ``prefix``."""
    user = "user root root;\n" if os.geteuid() == 0 else ""
    return f"""{user}daemon off;
worker_processes 1;
pid {prefix}/nginx.pid;
error_log {prefix}/error.log info;
events {{ worker_connections 256; }}
http {{
    include /etc/nginx/mime.types;
    access_log off;
    client_body_temp_path {prefix}/client_body;
    proxy_temp_path {prefix}/proxy;
    fastcgi_temp_path {prefix}/fastcgi;
    uwsgi_temp_path {prefix}/uwsgi;
    scgi_temp_path {prefix}/scgi;
    include {site};
}}
"""


@contextmanager
def running_nginx(prefix, upstream, static_root, *more_upstreams):
    """nginx in the foreground in a process group of its own, stopped whatever happens.

    With ``more_upstreams``, the upstream block lists every server (nginx spreads requests over
    them and passes a request on to the next one when a server cannot be reached).
    """
    port = free_port()
    site = prefix / "crm.conf"
    first = upstream.removeprefix("http://")
    text = render_template(
        {
            "CRM_LISTEN": f"127.0.0.1:{port}",
            "CRM_SERVER_NAME": "127.0.0.1",
            "CRM_UPSTREAM": first,
            "CRM_STATIC_ROOT": static_root,
            "CRM_MAX_BODY": MAX_BODY,
        }
    )
    if more_upstreams:
        servers = [first, *(other.removeprefix("http://") for other in more_upstreams)]
        line = f"    server {first};\n"
        assert text.count(line) == 1
        text = text.replace(line, "".join(f"    server {server};\n" for server in servers))
    site.write_text(text)
    config = prefix / "nginx.conf"
    config.write_text(main_config(prefix, site))
    binary = nginx_binary()
    checked = subprocess.run([binary, "-t", "-p", str(prefix), "-c", str(config)], capture_output=True, text=True)
    assert checked.returncode == 0, checked.stderr
    log = (prefix / "nginx.out").open("w")
    process = subprocess.Popen(
        [binary, "-p", str(prefix), "-c", str(config)], stdout=log, stderr=subprocess.STDOUT, start_new_session=True
    )
    try:
        url = f"http://127.0.0.1:{port}"
        deadline = time.monotonic() + 30
        while True:
            if process.poll() is not None:
                raise RuntimeError(f"nginx exited ({process.returncode}):\n{(prefix / 'error.log').read_text()}")
            try:
                if requests.get(f"{url}/api/health", timeout=5).status_code == 200:
                    break
            except requests.RequestException:
                pass
            if time.monotonic() > deadline:
                raise RuntimeError(f"nginx did not answer at {url}:\n{(prefix / 'error.log').read_text()}")
            time.sleep(0.1)
        yield url
    finally:
        # QUIT lets nginx finish; the process group is killed after in any case.
        try:
            os.killpg(process.pid, signal.SIGQUIT)
            process.wait(timeout=10)
        except (ProcessLookupError, subprocess.TimeoutExpired):
            pass
        kill_process_group(process)
        log.close()


def open_slow_clients(stack, url, count):
    """``count`` connections that send the start of a request and then wait; ``stack`` closes them."""
    host, port = url.removeprefix("http://").split(":")
    for _ in range(count):
        client = stack.enter_context(socket.create_connection((host, int(port)), timeout=10))
        client.sendall(b"GET /api/health HTTP/1.1\r\nHost: 127.0.0.1\r\nUser-Agent: slow")
    # Give the server time to take every connection in.
    time.sleep(1)


def health_answers_in_time(url):
    started = time.monotonic()
    try:
        response = requests.get(f"{url}/api/health", timeout=ANSWER_WITHIN)
    except requests.Timeout:
        return False
    assert response.status_code == 200, response.text
    assert response.json()["status"] == "healthy"
    return time.monotonic() - started < ANSWER_WITHIN


@pytest.fixture(scope="module")
def gunicorn_behind_nginx(server_factory, static_root, tmp_path_factory):
    """Its own gunicorn (3 workers, the default one thread each): slow clients must not reach other tests."""
    server = server_factory(workers=3, DJANGO_MAX_REQUEST_BODY_BYTES=MAX_BODY)
    try:
        with running_nginx(tmp_path_factory.mktemp("nginx"), server.url, static_root) as nginx_url:
            yield server, nginx_url
    finally:
        server.stop()


def probes_answered(url, probes=PROBES):
    """How many of ``probes`` health checks sent at once are answered in time."""
    with ThreadPoolExecutor(max_workers=probes) as pool:
        return sum(pool.map(health_answers_in_time, [url] * probes))


def test_slow_clients_at_nginx_leave_the_health_check_answered(gunicorn_behind_nginx):
    server, nginx_url = gunicorn_behind_nginx

    with ExitStack() as stack:
        open_slow_clients(stack, nginx_url, MOST_SLOW_CLIENTS)

        assert probes_answered(nginx_url) == PROBES
        # Nothing of the slow requests reached gunicorn: they are still incomplete.
        assert all(entry["path"] == "/api/health" for entry in server.access_log())


def test_the_same_slow_clients_straight_at_gunicorn_leave_it_unanswered(gunicorn_behind_nginx):
    server, nginx_url = gunicorn_behind_nginx

    with ExitStack() as stack:
        opened = 0
        while opened < MOST_SLOW_CLIENTS:
            open_slow_clients(stack, server.url, BATCH)
            opened += BATCH
            if probes_answered(server.url) == 0:
                break
        else:
            pytest.fail(f"gunicorn still answered with {opened} slow clients holding connections")
    # Once the slow clients go away, gunicorn answers again.
    assert probes_answered(server.url) == PROBES


def test_nginx_refuses_a_body_above_the_apps_limit_without_passing_it_on(gunicorn_behind_nginx):
    server, nginx_url = gunicorn_behind_nginx

    def token_requests():
        # Health checks the earlier tests gave up on may still be answered now: count only these.
        return [entry for entry in server.access_log() if entry["path"] == "/api/auth/token"]

    before = len(token_requests())
    response = requests.post(
        f"{nginx_url}/api/auth/token",
        data=b"x" * (MAX_BODY + 1),
        headers={"Content-Type": "application/json"},
        timeout=30,
    )

    assert response.status_code == 413
    assert response.headers["Server"].startswith("nginx")
    assert len(token_requests()) == before
    # Right at the limit the request goes through to the app (which refuses the JSON itself).
    response = requests.post(
        f"{nginx_url}/api/auth/token", data=b"x" * MAX_BODY, headers={"Content-Type": "application/json"}, timeout=30
    )
    assert response.status_code == 400
    assert response.json()["success"] is False
    assert len(token_requests()) == before + 1


def test_nginx_serves_hashed_static_files_from_disk_with_a_far_future_cache(gunicorn_behind_nginx, static_root):
    server, nginx_url = gunicorn_behind_nginx
    hashed = next(static_root.glob("admin/css/base.*.css")).relative_to(static_root)

    response = requests.get(f"{nginx_url}/static/{hashed}", timeout=30)

    assert response.status_code == 200
    assert response.content == (static_root / hashed).read_bytes()
    assert response.headers["Cache-Control"] == "public, max-age=31536000, immutable"
    assert response.headers["Server"].startswith("nginx")
    assert not [entry for entry in server.access_log() if entry["path"].startswith("/static/")]
