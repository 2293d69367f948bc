"""gunicorn settings: ``gunicorn -c gunicorn.conf.py`` (see docs/deployment.md).

Every value can be changed through the environment; command-line flags win over both.
"""

import gc
import multiprocessing
import os


def _int(name, default):
    value = os.environ.get(name, "").strip()
    return int(value) if value else default


def _bool(name, default):
    value = os.environ.get(name, "").strip().lower()
    return value in ("1", "true", "yes", "on") if value else default


wsgi_app = "crm_site.wsgi:application"
bind = os.environ.get("GUNICORN_BIND", "127.0.0.1:8000")
# Each worker answers GUNICORN_THREADS requests at a time (one by default), so
# workers x threads is the concurrency. Threaded workers ("gthread") rather than
# gunicorn's "sync": a sync worker signals it is alive only between requests, so
# the timeout would kill it in the middle of a long answer, such as a CSV export
# of a million rows (about 20 s) or an XLSX one (about 2 minutes). Here the
# timeout catches a worker that has stopped, not a request that takes long.
worker_class = os.environ.get("GUNICORN_WORKER_CLASS", "gthread")
workers = _int("GUNICORN_WORKERS", multiprocessing.cpu_count() * 2 + 1)
threads = _int("GUNICORN_THREADS", 1)
timeout = _int("GUNICORN_TIMEOUT", 30)
graceful_timeout = _int("GUNICORN_GRACEFUL_TIMEOUT", 30)
keepalive = _int("GUNICORN_KEEPALIVE", 5)
# Recycle workers now and then so that a slow leak cannot grow without bound.
max_requests = _int("GUNICORN_MAX_REQUESTS", 2000)
max_requests_jitter = _int("GUNICORN_MAX_REQUESTS_JITTER", 200)
# The application is loaded once, in the master, and each worker is a fork of it: a
# recycled worker starts in milliseconds instead of importing Django and every app
# again (about 0.9 s of CPU, which under load the other workers' requests wait for),
# and the workers share the loaded code's memory. Nothing is connected at import
# (databases and Redis connect on a worker's first use). The price: HUP re-forks the
# workers from the code the master loaded, so a release restarts gunicorn (as
# docs/deployment.md says), or set GUNICORN_PRELOAD=false for HUP to load new code.
preload_app = _bool("GUNICORN_PRELOAD", True)


def pre_fork(server, worker):
    """Take what the master has loaded out of the garbage collector's reach before each fork.

    A worker's first full collection would otherwise visit every object it inherited (the
    whole loaded application) and, writing to each one's header, copy the pages they lie in
    out of the memory it shares with the master: a pause of about 90 ms in the middle of a
    request, soon after every recycled worker starts (docs/benchmarks.md, "Recycled workers").
    Frozen objects are never collected, which is what a loaded module is for anyway; each
    worker's own objects are collected as before.
    """
    gc.freeze()


# The application writes one JSON line per request (logger "crm.access") with the
# request id, user and duration; gunicorn's own access log would only repeat it.
accesslog = None
errorlog = "-"
loglevel = os.environ.get("GUNICORN_LOG_LEVEL", "info")

# Addresses of the TLS proxy allowed to set X-Forwarded-Proto / X-Forwarded-For.
forwarded_allow_ips = os.environ.get("GUNICORN_FORWARDED_ALLOW_IPS", "127.0.0.1")

# gunicorn's control socket (``gunicornc``: show workers, add or remove them,
# reload, shut down) defaults to one path per user and host, so every instance
# started by that user would take it over from the one before, and the first to
# stop would delete the socket of the others: a command meant for one instance
# could reach another. Off unless GUNICORN_CONTROL_SOCKET names a path, which
# must then be one of this instance's own (e.g. /run/crm/gunicorn.ctl).
_control_socket = os.environ.get("GUNICORN_CONTROL_SOCKET", "").strip()
control_socket_disable = not _control_socket
if _control_socket:
    control_socket = _control_socket

# Refuse oversized request lines and headers before Django sees them.
limit_request_line = 8190
limit_request_fields = 100
