#!/usr/bin/env python3
"""Where the time of one API request goes: the WSGI application called in process, no network.

    DATABASE_URL=sqlite:///bench/results/data/crm-10000.db .venv/bin/python bench/request_profile.py
    DATABASE_URL=... .venv/bin/python bench/request_profile.py --request create --profile 20
    DATABASE_URL=... .venv/bin/python bench/request_profile.py --request list --requests 100
    DATABASE_URL=... .venv/bin/python bench/request_profile.py --layers --requests 3000 --runs 5
    DATABASE_URL=... .venv/bin/python bench/request_profile.py --layer throttle --requests 2000 --calls
    DATABASE_URL=... .venv/bin/python bench/request_profile.py --compare auth,throttle:no-redis,throttle \
        --requests 100 --runs 60

Runs under the production settings (as ``bench/run.py`` serves them: rate limits on, counted in
Redis at ``REDIS_URL``, default ``redis://127.0.0.1:6379/5``; the access-log line written, to
/dev/null) against a migrated database with customers (``bench/run.py`` builds one). Sends
``--requests`` requests to ``crm_site.wsgi.application`` with a bearer token, as gunicorn would
(an environ, ``start_response``, the body joined), and prints the CPU time per request (best and
median of ``--runs``; the median's user and system parts, and the context switches a request: a
blocking round trip, to Redis say, costs far more CPU in a request than in a loop of its own) and, with ``--profile N``, the N costliest functions of a cProfile run and the
share of each part of the stack (by the file each function's own time is spent in; CPU time of this
process by default, ``--clock wall`` to include the waits). It also prints the queries per request and,
for a write, the time from its transaction's ``BEGIN`` to the end of its ``COMMIT``: on SQLite the
database's one write lock is held that long, so writers at many connections make at most one over
that time per second.
"""

import argparse
import cProfile
import io
import json
import os
import pstats
import resource
import secrets
import statistics
import sys
import time
from collections import defaultdict
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

SETTINGS = {
    "DJANGO_SETTINGS_MODULE": "crm_site.settings.production",
    "DJANGO_SECRET_KEY": secrets.token_urlsafe(50),
    "DJANGO_ALLOWED_HOSTS": "127.0.0.1,localhost",
    "DJANGO_SECURE_SSL_REDIRECT": "false",
    "DJANGO_LOG_LEVEL": "WARNING",
    "DJANGO_THROTTLE_USER": "100000000/minute",
    "DJANGO_THROTTLE_ANON": "100000000/minute",
    "REDIS_URL": os.environ.get("BENCH_REDIS_URL", "redis://127.0.0.1:6379/5"),
}

# Parts of the stack, by the path of the file a function is in (first match wins).
PARTS = [
    ("project code", (str(ROOT) + "/",)),
    ("DRF", ("/rest_framework/",)),
    ("knox", ("/knox/",)),
    ("corsheaders, whitenoise, simple_history", ("/corsheaders/", "/whitenoise/", "/simple_history/")),
    ("Django ORM and database backends", ("/django/db/",)),
    ("Django URL resolving", ("/django/urls/",)),
    (
        "Django request, response, handler, middleware",
        ("/django/core/handlers/", "/django/http/", "/django/middleware/"),
    ),
    ("Django (other)", ("/django/",)),
    ("Redis client", ("/redis/",)),
    ("logging, json", ("/logging/", "/json/")),
    ("asgiref (thread-local context)", ("/asgiref/",)),
]


# Steps of a request, by the function that does each (cumulative time; nested steps are not
# subtracted from their parents, so the list reads top-down): (label, file ending, function).
STEPS = [
    ("the whole request (WSGI handler)", "django/core/handlers/wsgi.py", "__call__"),
    ("  URL resolving", "django/core/handlers/base.py", "resolve_request"),
    ("  the view (DRF dispatch, from the request's wrapping to the response)", "rest_framework/views.py", "dispatch"),
    ("    bearer authentication (token and user, one query)", "core/api/authentication.py", "authenticate"),
    ("    rate limit (one Redis script call)", "rest_framework/views.py", "check_throttles"),
    ("    content negotiation", "rest_framework/views.py", "perform_content_negotiation"),
    ("    detail: the record's read (one query)", "core/api/viewsets.py", "get_object"),
    ("    detail: the serializer's representation", "rest_framework/serializers.py", "data"),
    ("    ETag", "core/api/conditional.py", "compute_etag"),
    ("    create: validation (serializer is_valid)", "rest_framework/serializers.py", "is_valid"),
    ("    create: the save (row, history, event, company link)", "core/api/viewsets.py", "_save"),
    ("    create: the answer's read-back with summary figures", "core/api/viewsets.py", "_read_summary"),
    ("    create: COMMIT", "django/db/backends/base/base.py", "commit"),
    ("  rendering the envelope", "rest_framework/response.py", "rendered_content"),
    ("  the access-log line", "logging/__init__.py", "info"),
]


def steps_of(stats):
    """(label, seconds) of each step in ``STEPS`` that ran."""
    found = []
    for label, ending, function in STEPS:
        # The outermost of same-named functions in one file (Serializer.data calls BaseSerializer.data).
        seconds = max(
            (
                entry[3]
                for (filename, _line, name), entry in stats.stats.items()
                if name == function and filename.endswith(ending)
            ),
            default=0,
        )
        if seconds:
            found.append((label, seconds))
    return found


class WriteTransactions:
    """Time spent inside write transactions (``BEGIN`` to the end of ``COMMIT`` or ``ROLLBACK``), and queries.

    Wraps the backend's own begin, commit and rollback (those of ``atomic()``'s outermost block; savepoints
    are inside) on the one connection this process uses, and counts every statement with an execute wrapper.
    """

    def __init__(self, connection):
        self.cpu = self.wall = 0.0
        self.transactions = self.queries = self.queries_inside = 0
        self._started = None
        begin, commit, rollback = (
            connection._start_transaction_under_autocommit,
            connection._commit,
            connection._rollback,
        )

        def timed_begin():
            self._started = (time.process_time(), time.perf_counter())
            return begin()

        def ended(end):
            def run():
                try:
                    return end()
                finally:
                    if self._started is not None:
                        self.cpu += time.process_time() - self._started[0]
                        self.wall += time.perf_counter() - self._started[1]
                        self.transactions += 1
                        self._started = None

            return run

        connection._start_transaction_under_autocommit = timed_begin
        connection._commit, connection._rollback = ended(commit), ended(rollback)
        connection.execute_wrappers.append(self._count)

    def count_calls(self):
        """Count function calls (Python's and C's) from now on, in all and inside write transactions."""
        self.calls = self.calls_inside = 0

        def hook(frame, event, arg):
            if event == "call" or event == "c_call":
                self.calls += 1
                if self._started is not None:
                    self.calls_inside += 1

        sys.setprofile(hook)

    def _count(self, execute, sql, params, many, context):
        self.queries += 1
        if self._started is not None:
            self.queries_inside += 1
        return execute(sql, params, many, context)

    def reset(self):
        self.cpu = self.wall = 0.0
        self.transactions = self.queries = self.queries_inside = 0


def part_of(filename):
    if filename.startswith("~") or filename.startswith("<"):
        return "C built-ins (sqlite3, hashing, socket I/O, orjson...)"
    if "/site-packages/" in filename:
        filename = filename.split("/site-packages", 1)[1]
    for name, needles in PARTS:
        if any(needle in filename for needle in needles):
            return name
    return "Python standard library (other)"


def main():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument(
        "--request", choices=["detail", "create", "list"], default="detail", help="list: the first page of 50 customers"
    )
    parser.add_argument("--requests", type=int, default=2000)
    parser.add_argument("--runs", type=int, default=5)
    parser.add_argument("--profile", type=int, default=0, help="show the N costliest functions (cProfile)")
    parser.add_argument(
        "--calls",
        action="store_true",
        help="then count the function calls of --requests more requests, in all and inside the write "
        "transaction (deterministic, unlike the timings)",
    )
    parser.add_argument(
        "--role",
        choices=["manager", "rep"],
        default="manager",
        help="who asks: a sales manager (sees every record) or a sales rep (sees their own; the detail is of "
        "a customer they own)",
    )
    parser.add_argument("--dump", help="also write the cProfile run to this file (for pstats or snakeviz)")
    parser.add_argument("--sort", default="tottime", help="cProfile order of the functions shown (tottime, cumulative)")
    parser.add_argument(
        "--layers",
        action="store_true",
        help="instead: the detail request built up layer by layer (Django's handler, each middleware, DRF, "
        "bearer authentication, the rate limit, the endpoint), the CPU time of each",
    )
    parser.add_argument(
        "--layer",
        metavar="VARIANT",
        help="instead: one step of --layers, under the settings' whole middleware, measured as a request is "
        "(with --calls, --profile; for instruction or system-call counts of one layer, run the step below it "
        "and subtract): drf, a DRF view answering the record, no authentication, permission or rate limit; "
        "auth, + bearer authentication and the role permission; throttle, + the rate limit; optionally changed "
        "as --compare describes (throttle:no-redis...)",
    )
    parser.add_argument(
        "--compare",
        metavar="VARIANTS",
        help="instead: steps of --layer measured in turns in this one process, so that the machine's load weighs "
        "on each alike: --runs rounds, each running every variant for --requests requests in a shuffled order, "
        "and each variant's median CPU per request and median difference from the first, round by round. A "
        "variant is a step (drf, auth, throttle, or detail: the whole customer detail), optionally with one of :no-redis (the rate limit's script "
        "answered in the process), :python-parser (redis-py's pure-Python reply parser instead of hiredis), "
        ":ping (a bare round trip to Redis, a PING, before each request) or :sleep (50 us asleep before each "
        "request); comma-separated, e.g. auth,throttle:no-redis,throttle,auth:ping",
    )
    parser.add_argument(
        "--clock",
        choices=["cpu", "wall"],
        default="cpu",
        help="what the profile counts: this process's CPU time (default; waits for Redis or the disk, and "
        "other processes' load, left out) or wall-clock time",
    )
    args = parser.parse_args()
    if not os.environ.get("DATABASE_URL"):
        raise SystemExit("set DATABASE_URL to a migrated database with customers (bench/run.py builds one)")
    for name, value in SETTINGS.items():
        os.environ.setdefault(name, value)

    import django

    django.setup()
    import logging

    from django.contrib.auth import get_user_model
    from django.contrib.auth.models import Group
    from knox.models import get_token_model

    from crm_site.wsgi import application
    from customers.models import Customer

    # The access log is written, as in production, to a stream nobody reads.
    sink = open(os.devnull, "w")  # noqa: SIM115 - for the process's lifetime
    for handler in logging.getLogger("crm.access").handlers:
        handler.setStream(sink)

    user, _ = get_user_model().objects.get_or_create(username=f"bench-profile-{args.role}")
    user.groups.add(Group.objects.get(name="Sales manager" if args.role == "manager" else "Sales rep"))
    _, token = get_token_model().objects.create(user)
    customer_id = Customer.objects.order_by("pk").values_list("pk", flat=True)[Customer.objects.count() // 2]
    if args.role == "rep":
        # The rep owns the customer the detail reads (and, as reps do, creates their own).
        Customer.objects.filter(pk=customer_id).update(owner=user)
    counter = iter(range(10**9))

    detail_path = f"/api/customers/{customer_id}"
    paths = {"list": "/api/customers", "detail": detail_path, "create": detail_path}
    if args.layers or args.layer or args.compare:
        args.request = "layers"

    def environ():
        env = {
            "REQUEST_METHOD": "GET",
            "SCRIPT_NAME": "",
            "PATH_INFO": paths[args.request],
            "QUERY_STRING": "page_size=50" if args.request == "list" else "",
            "SERVER_NAME": "127.0.0.1",
            "SERVER_PORT": "8000",
            "SERVER_PROTOCOL": "HTTP/1.1",
            "REMOTE_ADDR": "127.0.0.1",
            "HTTP_HOST": "127.0.0.1:8000",
            "HTTP_AUTHORIZATION": f"Bearer {token}",
            "HTTP_ACCEPT": "application/json",
            "wsgi.url_scheme": "http",
            "wsgi.input": io.BytesIO(b""),
            "wsgi.errors": sys.stderr,
            "wsgi.multithread": False,
            "wsgi.multiprocess": True,
            "wsgi.run_once": False,
        }
        if args.request == "create":
            n = next(counter)
            # A new customer each time (name, phone and email no other create gave), as bench/wrk/request.lua.
            pid = os.getpid()
            body = (
                f'{{"name":"Profile Customer p{pid}x{time.time_ns()}x{n}","company":"Bench Co",'
                f'"email":"profile-{pid}-{time.time_ns()}-{n}@example.com",'
                f'"phone":"+86 13{(pid % 10000) * 100000 + n % 100000:09d}","status":"lead"}}'
            ).encode()
            env.update(
                REQUEST_METHOD="POST",
                PATH_INFO="/api/customers",
                CONTENT_TYPE="application/json",
                CONTENT_LENGTH=str(len(body)),
            )
            env["wsgi.input"] = io.BytesIO(body)
        return env

    expected = "201" if args.request == "create" else "200"
    statuses = []

    def start_response(status, headers, exc_info=None):
        statuses.append(status)

    def one():
        result = application(environ(), start_response)
        body = b"".join(result)
        if hasattr(result, "close"):
            result.close()
        return body

    from django.db import connection

    connection.ensure_connection()
    if args.layers:
        return layers(application, one, statuses, paths, customer_id, args)
    if args.compare:
        return compare(one, statuses, paths, args)
    if args.layer:
        before, _undo = layer_variants(paths, one)(args.layer)
        expected = "200"
        if before:
            bare = one

            def one():
                before()
                return bare()

    meter = WriteTransactions(connection)
    for _ in range(50):
        one()
    meter.reset()
    if not statuses[-1].startswith(expected):
        raise SystemExit(f"unexpected answer: {statuses[-1]}")

    cpu, wall, user, system, switches = [], [], [], [], []
    for _ in range(args.runs):
        started_cpu, started_wall = time.process_time(), time.perf_counter()
        started = resource.getrusage(resource.RUSAGE_SELF)
        for _ in range(args.requests):
            one()
        ended = resource.getrusage(resource.RUSAGE_SELF)
        cpu.append((time.process_time() - started_cpu) / args.requests * 1e6)
        wall.append((time.perf_counter() - started_wall) / args.requests * 1e6)
        user.append((ended.ru_utime - started.ru_utime) / args.requests * 1e6)
        system.append((ended.ru_stime - started.ru_stime) / args.requests * 1e6)
        switches.append(
            ((ended.ru_nvcsw - started.ru_nvcsw) / args.requests, (ended.ru_nivcsw - started.ru_nivcsw) / args.requests)
        )
    bad = [status for status in statuses if not status.startswith(expected)]
    name = f"layer {args.layer}" if args.layer else args.request
    print(f"{name}: {args.requests} requests x {args.runs} runs, {len(bad)} unexpected answers")
    print(f"  CPU per request:  best {min(cpu):.0f} us, median {statistics.median(cpu):.0f} us")
    print(f"  wall per request: best {min(wall):.0f} us, median {statistics.median(wall):.0f} us")
    print(
        f"  of the CPU, in the process's own code (user) {statistics.median(user):.0f} us and in the kernel for it"
        f" (system) {statistics.median(system):.0f} us (medians)"
    )
    voluntary, involuntary = (statistics.median(run[i] for run in switches) for i in (0, 1))
    print(f"  context switches per request: {voluntary:.2f} waiting (voluntary), {involuntary:.2f} preempted")
    print(f"  load average: {' '.join(f'{value:.2f}' for value in os.getloadavg())}")
    served = args.requests * args.runs
    print(
        f"  queries per request: {meter.queries / served:.1f}, {meter.queries_inside / served:.1f} of them in a transaction"
    )
    if meter.transactions:
        print(
            f"  in the write transaction (BEGIN to the end of COMMIT), per request: CPU {meter.cpu / served * 1e6:.0f} us,"
            f" wall {meter.wall / served * 1e6:.0f} us ({meter.transactions / served:.2f} transactions a request)"
        )

    if args.calls:
        meter.count_calls()
        for _ in range(args.requests):
            one()
        sys.setprofile(None)
        print(
            f"  function calls per request: {meter.calls / args.requests:.0f},"
            f" {meter.calls_inside / args.requests:.0f} of them in the write transaction"
        )

    if args.profile:
        profiler = cProfile.Profile(time.process_time if args.clock == "cpu" else time.perf_counter)
        profiler.enable()
        for _ in range(args.requests):
            one()
        profiler.disable()
        stats = pstats.Stats(profiler)
        if args.dump:
            stats.dump_stats(args.dump)
        total = sum(entry[2] for entry in stats.stats.values())
        parts = defaultdict(float)
        for (filename, _line, _name), entry in stats.stats.items():
            parts[part_of(filename)] += entry[2]
        print(f"\nOwn {args.clock} time by part of the stack (cProfile, {args.requests} requests):")
        for name, seconds in sorted(parts.items(), key=lambda item: -item[1]):
            print(f"  {seconds / total * 100:5.1f} %  {name}")
        steps = steps_of(stats)
        whole = steps[0][1] if steps else total
        print(f"\nSteps ({args.clock} time, cumulative, share of the whole request):")
        for label, seconds in steps:
            print(f"  {seconds / whole * 100:5.1f} %  {seconds / args.requests * 1e6:7.0f} us  {label}")
        out = io.StringIO()
        pstats.Stats(profiler, stream=out).sort_stats(args.sort).print_stats(args.profile)
        print(out.getvalue())
        calls = sum(entry[1] for entry in stats.stats.values()) / args.requests
        print(f"Function calls per request: {calls:.0f}")


def layers(application, one, statuses, paths, customer_id, args):
    """The customer detail built up from Django's bare handler, one layer at a time, in this process.

    Each layer is a view under ``/api/`` (so the bearer path through the middleware is the one the API
    takes) added to the URLconf for the run, and the middleware is the settings' own, loaded again for
    each prefix of it: the CPU time of a request at each step, and what the step added.
    """
    from django.conf import settings
    from django.test.utils import override_settings

    paths["layers"] = paths["detail"]
    add_layer_views(json.loads(one())["data"])
    middleware = list(settings.MIDDLEWARE)
    # (label, middleware, view, the step it adds to); each middleware step adds to the one before it.
    steps = [
        ("Django's handler and a view answering the record, no middleware", [], "plain", None),
        ("the same, the view reading the row by primary key (the floor's query)", [], "select", 0),
        *(
            (f"+ {name.rsplit('.', 1)[1]}", middleware[: index + 1], "plain", 0 if index == 0 else index + 1)
            for index, name in enumerate(middleware)
        ),
        ("+ DRF: a view answering the record, no authentication, permission or rate limit", middleware, "drf", -1),
        ("+ bearer authentication and the role permission", middleware, "drf-auth", -1),
        ("+ the rate limit", middleware, "drf-auth-throttle", -1),
        ("+ the customer detail's own work: the endpoint itself (read, serializer, ETag)", middleware, "detail", -1),
    ]
    print(f"The customer detail built up layer by layer: CPU per request, best of {args.runs} runs of {args.requests}")
    print("| step | CPU us per request | added |\n|---|---:|---:|")
    measured = []
    try:
        for label, stack, view, against in steps:
            paths["layers"] = paths["detail"] if view == "detail" else f"/api/_layers/{view}"
            if view == "select":
                paths["layers"] += f"/{customer_id}"
            with override_settings(MIDDLEWARE=stack):
                application.load_middleware()
                for _ in range(50):
                    one()
                if not statuses[-1].startswith("200"):
                    raise SystemExit(f"{label}: unexpected answer {statuses[-1]}")
                best = min(_cpu_per_request(one, args.requests) for _ in range(args.runs))
            added = "" if against is None else f"{best - measured[against]:+.0f}"
            print(f"| {label} | {best:.0f} | {added} |")
            measured.append(best)
    finally:
        application.load_middleware()


# --layer: the view of each step (under /api/_layers/) that runs behind the settings' whole middleware.
LAYER_VIEWS = {"drf": "drf", "auth": "drf-auth", "throttle": "drf-auth-throttle"}


def add_layer_views(record):
    """The views of the layer steps, answering ``record``, added to the URLconf under ``/api/_layers/``."""
    from django.db import connection
    from django.http import JsonResponse
    from django.urls import clear_url_caches, path
    from rest_framework.response import Response
    from rest_framework.views import APIView

    import crm_site.urls

    def plain(request):
        return JsonResponse({"success": True, "data": record}, json_dumps_params={"ensure_ascii": False})

    def primary_key_select(request, pk):
        # The floor's one query: a row by its primary key, as a dict.
        with connection.cursor() as cursor:
            cursor.execute("SELECT * FROM customers_customer WHERE id = %s", [pk])
            names = [column[0] for column in cursor.description]
            row = dict(zip(names, cursor.fetchone(), strict=True))
        return JsonResponse({"success": True, "data": row}, json_dumps_params={"ensure_ascii": False, "default": str})

    def drf_view(**attributes):
        view = type("LayerView", (APIView,), {"get": lambda self, request: Response(record), **attributes})
        return view.as_view()

    unchecked = {"authentication_classes": [], "permission_classes": [], "throttle_classes": []}
    views = {
        "plain": plain,
        "select": primary_key_select,
        "drf": drf_view(**unchecked),
        "drf-auth": drf_view(throttle_classes=[]),
        "drf-auth-throttle": drf_view(),
    }
    crm_site.urls.urlpatterns[:0] = [
        path("api/_layers/select/<int:pk>", views["select"]),
        *(path(f"api/_layers/{name}", view) for name, view in views.items() if name != "select"),
    ]
    clear_url_caches()


def layer_variants(paths, one):
    """Add the layer views; return ``apply(variant)``, which points the requests at a variant's path and
    makes its change: (a function to call before each request or None, a function undoing the change).

    A variant is a step of ``--layer`` or ``detail``, optionally with ``:no-redis`` (the rate limit's script
    answered in the process, ``[1, 0, 0]``), ``:python-parser`` (redis-py's pure-Python reply parser instead of
    hiredis), ``:ping`` (a bare PING round trip to Redis before each request) or ``:sleep`` (50 us asleep).
    """
    import socket
    from urllib.parse import urlsplit

    from redis._parsers import _RESP3Parser

    from core.api import throttling

    paths["layers"] = paths["detail"]
    add_layer_views(json.loads(one())["data"])
    url = os.environ["REDIS_URL"]
    address = urlsplit(url)
    # Its timeout as the rate limit's connections have one (Python then polls before each send and read).
    probe = socket.create_connection((address.hostname, address.port or 6379), timeout=2)

    def ping():
        probe.sendall(b"*1\r\n$4\r\nPING\r\n")
        probe.recv(64)

    def sleep():
        time.sleep(50e-6)

    python_parser = throttling._RedisLink(url)
    python_parser.pool.connection_kwargs["parser_class"] = _RESP3Parser
    evalsha, redis_link = throttling._RedisLink.evalsha, throttling._redis_link

    def undo():
        throttling._RedisLink.evalsha, throttling._redis_link = evalsha, redis_link

    def apply(variant):
        step, _, change = variant.partition(":")
        if step not in (*LAYER_VIEWS, "detail") or change not in ("", "no-redis", "python-parser", "ping", "sleep"):
            raise SystemExit(f"unknown variant {variant!r}")
        paths["layers"] = paths["detail"] if step == "detail" else f"/api/_layers/{LAYER_VIEWS[step]}"
        if change == "no-redis":
            throttling._RedisLink.evalsha = lambda link, arguments: [1, 0, 0]
        elif change == "python-parser":
            throttling._redis_link = lambda url: python_parser
        return {"ping": ping, "sleep": sleep}.get(change), undo

    return apply


def compare(one, statuses, paths, args):
    """``--compare``: the variants' CPU per request, measured in turns in this process."""
    import random

    apply = layer_variants(paths, one)
    variants = args.compare.split(",")
    for variant in variants:
        apply(variant)[1]()  # a mistyped variant stops here, before any measurement

    def block(variant):
        before, undo = apply(variant)
        try:
            started = resource.getrusage(resource.RUSAGE_SELF)
            for _ in range(args.requests):
                if before:
                    before()
                one()
            ended = resource.getrusage(resource.RUSAGE_SELF)
        finally:
            undo()
        return [
            (ended.ru_utime - started.ru_utime) / args.requests * 1e6,
            (ended.ru_stime - started.ru_stime) / args.requests * 1e6,
            (ended.ru_nvcsw - started.ru_nvcsw) / args.requests,
            (ended.ru_nivcsw - started.ru_nivcsw) / args.requests,
        ]

    for variant in variants:
        block(variant)
    if not all(status.startswith("200") for status in statuses[-args.requests :]):
        raise SystemExit(f"unexpected answers: {set(statuses[-args.requests :])}")
    rounds = {variant: [] for variant in variants}
    shuffled = random.Random(0)
    for _ in range(args.runs):
        for variant in shuffled.sample(variants, len(variants)):
            rounds[variant].append(block(variant))
    bad = [status for status in statuses if not status.startswith("200")]
    first = rounds[variants[0]]
    print(
        f"{args.runs} rounds of {args.requests} requests of each, in turns; {len(bad)} unexpected answers; load "
        f"average {' '.join(f'{value:.2f}' for value in os.getloadavg())}; medians over the rounds (user and system "
        "from getrusage, sampled by the kernel's clock ticks: read them over many rounds)"
    )
    print(
        "| variant | CPU us per request | user | system | waits | preempted "
        "| CPU added to the first | user | system |\n|---|---:|---:|---:|---:|---:|---:|---:|---:|"
    )
    for variant, measured in rounds.items():
        cpu = [user + system for user, system, *_ in measured]
        added = [
            [mine[0] + mine[1] - its[0] - its[1], mine[0] - its[0], mine[1] - its[1]]
            for mine, its in zip(measured, first, strict=True)
        ]
        columns = [statistics.median(cpu), *(statistics.median(row[i] for row in measured) for i in range(4))]
        differences = (statistics.median(row[i] for row in added) for i in range(3))
        print(
            f"| {variant} | {columns[0]:.0f} | {columns[1]:.0f} | {columns[2]:.0f} | {columns[3]:.2f} | "
            f"{columns[4]:.2f} | " + " | ".join(f"{value:+.0f}" for value in differences) + " |"
        )


def _cpu_per_request(one, requests):
    started = time.process_time()
    for _ in range(requests):
        one()
    return (time.process_time() - started) / requests * 1e6


if __name__ == "__main__":
    main()
