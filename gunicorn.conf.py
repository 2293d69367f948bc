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

    Otherwise every full collection in a worker visits each object it inherited (the whole
    loaded application, about 150,000), 50 to 100 ms of CPU in the middle of a request, and
    writes to their headers, so the kernel copies the pages they lie in out of the memory
    the worker shares with the master; and a worker's exit collects them all again (about
    430 ms of CPU against 55 ms frozen), once per recycled worker. Frozen objects are still
    freed when nothing refers to them; only the collector, which frees reference cycles,
    leaves them alone, and a loaded module lives as long as the process anyway. Each
    worker's own objects are collected as before (docs/benchmarks.md, "Recycled workers").
    """
    gc.freeze()


def post_worker_init(worker):
    """The same for a worker that loaded the application itself (``GUNICORN_PRELOAD=false``)."""
    gc.freeze()


def on_reload(server):
    """After a ``HUP``: let the collector free the previous configuration's cycles (the next fork freezes again)."""
    gc.unfreeze()
    gc.collect()


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
