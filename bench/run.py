#!/usr/bin/env python3
"""Load-test the CRM API beside the original Flask design, the Django floor and a bare-WSGI ceiling.

    .venv/bin/python bench/run.py --db sqlite --customers 100000 --workers 2 --duration 10 --runs 3

Builds (or reuses) a dataset with ``manage.py seed_demo``, serves the project
under gunicorn with production settings, creates a user and a bearer token,
and drives each endpoint with ``wrk``. In the same run, the reference Flask CRM
(``../shared/reference/flask_original``, its own virtualenv and loader, the same
number of customers), the Django floor (``django_floor.py``: Django with no
middleware, one URL and one raw SQLite query per detail request) and the
ceiling app (the same query under bare WSGI) are measured with the same worker
count. ``--server production`` serves every app as ``gunicorn.conf.py``
serves this project (its worker class, workers and threads, keep-alive) instead
of ``sync`` workers. Each figure is the median of
``--runs`` runs; apps are interleaved per run so that noise hits them alike.
Each run also reads the CPU time the app's gunicorn processes (and, for this
project, the local Redis server) used, from ``/proc``: CPU per answered
request, which other jobs on the machine move much less than requests per second.

Results go to ``bench/results/`` (git-ignored) as JSON and Markdown; the table
is also printed. See docs/benchmarks.md.
"""

import argparse
import functools
import json
import os
import runpy
import secrets
import shutil
import socket
import statistics
import subprocess
import sys
import time
import urllib.error
import urllib.request
from datetime import UTC, datetime
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
RESULTS = ROOT / "bench" / "results"
DATA = RESULTS / "data"
LUA = ROOT / "bench" / "wrk" / "request.lua"
PYTHON = ROOT / ".venv" / "bin" / "python"
GUNICORN = ROOT / ".venv" / "bin" / "gunicorn"
DEFAULT_REFERENCE = ROOT.parent / "shared" / "reference"
DEFAULT_PG_URL = "postgres://postgres@127.0.0.1:5432/crm_bench"
SEED = 42
SEED_END = "2026-01-01"  # fixed, so that a dataset is the same whenever it is built
SEARCH_SELECTIVE = "Zyxwvut"
SEARCH_COMMON = "Acme"


def log(message):
    print(f"[bench] {message}", file=sys.stderr, flush=True)


def free_port():
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def run(cmd, env=None, cwd=None, capture=False):
    result = subprocess.run(
        [str(part) for part in cmd], env=env, cwd=cwd, check=False, text=True, capture_output=capture
    )
    if result.returncode != 0:
        if capture:
            sys.stderr.write(result.stdout + result.stderr)
        raise SystemExit(f"command failed ({result.returncode}): {' '.join(str(part) for part in cmd)}")
    return result.stdout if capture else None


def git_commit():
    try:
        commit = subprocess.run(
            ["git", "rev-parse", "--short", "HEAD"], cwd=ROOT, capture_output=True, text=True, check=True
        ).stdout.strip()
        dirty = subprocess.run(["git", "status", "--porcelain"], cwd=ROOT, capture_output=True, text=True).stdout
        return commit + ("+dirty" if dirty.strip() else "")
    except (OSError, subprocess.CalledProcessError):
        return "unknown"


class Server:
    """A gunicorn process on a free loopback port, stopped on exit."""

    def __init__(self, name, app, workers, env, cwd, gunicorn, timeout=120, production=None, log_name=None):
        self.name = name
        self.port = free_port()
        self.base = f"http://127.0.0.1:{self.port}"
        if production is None:
            # Not even ours reads gunicorn.conf.py, which gunicorn loads from the working directory
            # unless told otherwise: its max_requests would restart our workers (a Django start each)
            # every 2,000 or so requests while the other apps' workers run on.
            worker = ["--config", os.devnull, "--workers", str(workers), "--worker-class", "sync"]
        else:
            # This project reads the file itself (max_requests and all); the others get its worker settings.
            config = ["--config", str(ROOT / "gunicorn.conf.py")] if name == "ours" else []
            worker = [
                *config,
                "--workers", str(production["workers"]),
                "--worker-class", production["worker_class"],
                "--threads", str(production["threads"]),
                "--keep-alive", str(production["keepalive"]),
            ]  # fmt: skip
        cmd = [
            str(gunicorn),
            *worker,
            "--bind", f"127.0.0.1:{self.port}",
            "--log-level", "warning",
            "--timeout", str(timeout),
            app,
        ]  # fmt: skip
        self.log_path = RESULTS / f"{log_name or name}.log"
        self.log_file = open(self.log_path, "w")  # noqa: SIM115 - kept open for the process's lifetime
        self.process = subprocess.Popen(cmd, env=env, cwd=cwd, stdout=self.log_file, stderr=subprocess.STDOUT)
        self.pid = self.process.pid

    def worker_pids(self):
        """The process ids of gunicorn's workers now (the master's children)."""
        listing = Path(f"/proc/{self.pid}/task/{self.pid}/children").read_text()
        return [int(child) for child in listing.split()]

    def cpu_seconds(self):
        """CPU time (user and system) the server has used so far: the master, its live workers and the
        workers it has reaped (recycled ones)."""
        total = process_cpu_seconds(self.pid, reaped_children=True)
        for pid in self.worker_pids():
            try:
                total += process_cpu_seconds(pid)
            except FileNotFoundError:
                pass  # gone since the listing; counted with the master's reaped children once waited for
        return total

    def wait_ready(self, path, headers=None, timeout=60):
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                raise SystemExit(f"{self.name} exited; see {self.log_path}")
            try:
                request = urllib.request.Request(self.base + path, headers=headers or {})
                with urllib.request.urlopen(request, timeout=5) as response:
                    if response.status == 200:
                        return
            except (urllib.error.URLError, ConnectionError, TimeoutError):
                pass
            time.sleep(0.2)
        raise SystemExit(f"{self.name} did not answer {path} within {timeout}s; see {self.log_path}")

    def stop(self):
        if self.process.poll() is None:
            self.process.terminate()
            try:
                self.process.wait(timeout=20)
            except subprocess.TimeoutExpired:
                self.process.kill()
        self.log_file.close()


_CLOCK_TICKS = os.sysconf("SC_CLK_TCK")


def process_cpu_seconds(pid, reaped_children=False):
    """User and system CPU seconds of process ``pid`` (proc(5)), with its reaped children's if asked."""
    # The fields after the command name (which may hold spaces), from the state on: utime is the 12th.
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    ticks = int(fields[11]) + int(fields[12])
    if reaped_children:
        ticks += int(fields[13]) + int(fields[14])
    return ticks / _CLOCK_TICKS


def redis_server_pid():
    """The local Redis server's process id, if one runs here (its CPU is part of our requests' cost)."""
    try:
        found = subprocess.run(["pgrep", "-x", "redis-server"], capture_output=True, text=True, check=False).stdout
    except FileNotFoundError:
        return None
    return int(found.split()[0]) if found.split() else None


def production_server_settings():
    """The worker settings of ``gunicorn.conf.py`` (with this environment's ``GUNICORN_*`` values)."""
    config = runpy.run_path(str(ROOT / "gunicorn.conf.py"))
    return {name: config[name] for name in ("workers", "worker_class", "threads", "keepalive")}


def wrk(url, *, duration, connections, threads, token="", method="GET", timeout="30s", server=None, redis_pid=None):
    """One wrk run's figures; with ``server``, also the CPU time per answered request of its processes
    (``server_cpu_us``) and of the Redis server ``redis_pid`` meanwhile (``redis_cpu_us``)."""
    env = {**os.environ, "BENCH_TOKEN": token, "BENCH_METHOD": method}
    cmd = ["wrk", f"-t{threads}", f"-c{connections}", f"-d{duration}s", f"--timeout={timeout}", "-s", LUA, url]
    meters = {"server_cpu_us": server.cpu_seconds} if server else {}
    if server and redis_pid:
        meters["redis_cpu_us"] = functools.partial(process_cpu_seconds, redis_pid)
    before = {name: meter() for name, meter in meters.items()}
    output = run(cmd, env=env, capture=True)
    used = {name: meter() - before[name] for name, meter in meters.items()}
    for line in output.splitlines():
        if line.startswith("BENCH_JSON "):
            sample = json.loads(line[len("BENCH_JSON ") :])
            sample["latency_load"] = latency_load(sample, connections)
            sample["latency_adds_up"] = sample["latency_load"] <= LATENCY_LOAD_TOLERATED
            for name, seconds in used.items():
                sample[name] = seconds / sample["requests"] * 1e6 if sample["requests"] else None
            return sample
    raise SystemExit(f"no result from wrk for {url}:\n{output}")


# At most 1 in principle (latency_load); what wrk's rounding and timing leave above it in runs whose
# latencies are right, which came to 0.96 to 1.04 when the server was the bottleneck.
LATENCY_LOAD_TOLERATED = 1.05


def latency_load(sample, connections):
    """wrk's latencies added up, as a share of the time its connections had.

    Each connection waits for one answer at a time, so the latencies add up to at most
    ``connections`` x the run's duration (about that much when the server is the bottleneck, less
    the client's own time). wrk's accounting breaks that now and then (with kept-alive connections,
    and when a server closes each one): a few requests are recorded as tens of milliseconds that a
    second client and a packet capture of the same run show answered in about one
    (docs/benchmarks.md, "Recycled workers"). Past ``LATENCY_LOAD_TOLERATED`` the run's tail is
    not trustworthy.
    """
    return sample["mean_ms"] * 1000 * sample["requests"] / (connections * sample["duration_us"])


def fetch_json(url, token="", method="GET"):
    """Status and decoded body (None for a body that is not JSON, such as an export's CSV)."""
    headers = {"Authorization": f"Bearer {token}"} if token else {}
    request = urllib.request.Request(url, headers=headers, method=method)
    try:
        with urllib.request.urlopen(request, timeout=60) as response:
            body = response.read()
            if "json" not in response.headers.get("Content-Type", ""):
                return response.status, None
            return response.status, json.loads(body or b"null")
    except urllib.error.HTTPError as exc:
        return exc.code, None


# --------------------------------------------------------------------------- datasets


def django_env(database_url, **extra):
    return {
        **os.environ,
        "DJANGO_SETTINGS_MODULE": "crm_site.settings.production",
        "DJANGO_SECRET_KEY": secrets.token_urlsafe(50),
        "DJANGO_ALLOWED_HOSTS": "127.0.0.1,localhost",
        "DJANGO_SECURE_SSL_REDIRECT": "false",
        "DJANGO_LOG_LEVEL": "WARNING",
        "DATABASE_URL": database_url,
        # Rate limits stay on (their cost is part of every request) but never trip under
        # the load generator; their counters live in Redis, as docs/deployment.md advises
        # for several workers (BENCH_REDIS_URL= empty: the database cache instead).
        "DJANGO_THROTTLE_USER": "100000000/minute",
        "DJANGO_THROTTLE_ANON": "100000000/minute",
        "REDIS_URL": os.environ.get("BENCH_REDIS_URL", "redis://127.0.0.1:6379/5"),
        **extra,
    }


def manage(env, *args, capture=False):
    return run([PYTHON, ROOT / "manage.py", *args], env=env, cwd=ROOT, capture=capture)


def customer_count(env):
    script = (
        "from customers.models import Customer\n"
        "try:\n    print(Customer.objects.count())\nexcept Exception:\n    print(-1)\n"
    )
    out = manage(env, "shell", "-c", script, capture=True)
    return int(out.strip().splitlines()[-1])


def recreate_postgres_database(url):
    import psycopg

    name = url.rsplit("/", 1)[1].split("?")[0]
    admin_url = url.rsplit("/", 1)[0] + "/postgres"
    with psycopg.connect(admin_url, autocommit=True) as conn:
        conn.execute(f'DROP DATABASE IF EXISTS "{name}"')
        conn.execute(f'CREATE DATABASE "{name}"')


def prepare_ours(args):
    if args.db == "sqlite":
        path = DATA / f"crm-{args.customers}.db"
        url = f"sqlite:///{path}"
    else:
        path = None
        url = args.pg_url
    env = django_env(url)
    if not args.rebuild:
        try:
            existing = customer_count(env)
        except SystemExit:
            existing = -1
        # Benchmarks add customers (create); a dataset within 10% of the size is reused.
        if args.customers <= existing <= args.customers * 1.1 + 1000:
            log(f"reusing the {args.db} dataset ({existing} customers)")
            return env, path
    log(f"building the {args.db} dataset: {args.customers} customers")
    if path is not None:
        for suffix in ("", "-wal", "-shm"):
            Path(f"{path}{suffix}").unlink(missing_ok=True)
    else:
        recreate_postgres_database(url)
    manage(env, "migrate", "--noinput", "-v0")
    manage(env, "seed_demo", "--customers", args.customers, "--seed", SEED, "--end", SEED_END)
    return env, path


def prepare_reference(args, reference):
    venv = Path(args.reference_venv)
    if not (venv / "bin" / "gunicorn").exists():
        log(f"creating the reference virtualenv in {venv}")
        run([sys.executable, "-m", "venv", venv])
        run([venv / "bin" / "pip", "install", "-q", "-r", reference / "flask_original" / "requirements.txt"])
    path = DATA / f"flask-{args.customers}.db"
    if args.rebuild or not path.exists():
        log(f"building the reference dataset: {args.customers} customers")
        path.unlink(missing_ok=True)
        run(
            [venv / "bin" / "python", "load_data.py", "--customers", args.customers, "--db", path],
            cwd=reference / "flask_original",
        )
    return venv, path


def bench_setup(env, customers):
    """Create the benchmark user and token; find the ids and cursors the endpoints use."""
    script = """
import json
from django.contrib.auth import get_user_model
from django.contrib.auth.models import Group
from knox.models import get_token_model
from customers.models import Customer
from core.api import pagination
user, _ = get_user_model().objects.get_or_create(username="bench")
user.groups.add(Group.objects.get(name="Sales manager"))
_, token = get_token_model().objects.create(user)
unique = Customer.objects.filter(name="Zyxwvut Unique").order_by("id").first()
total = Customer.objects.count()
deep = Customer.objects.order_by("-created_at", "-id")[max(total - 100, 0)]
cursor = pagination.encode_cursor(deep) if hasattr(pagination, "encode_cursor") else None
print(json.dumps({"token": token, "unique_id": unique.pk, "total": total, "deep_cursor": cursor}))
"""
    out = manage(env, "shell", "-c", script, capture=True)
    return json.loads(out.strip().splitlines()[-1])


# --------------------------------------------------------------------------- endpoints


def endpoints(info, page_size=50):
    """(key, label, ours path, reference path or None, method)."""
    cid = info["unique_id"]
    last_page = max(1, -(-info["total"] // page_size))
    rows = [
        ("detail", "customer detail", f"/api/customers/{cid}", f"/api/customers/{cid}", "GET"),
        (
            "search_selective",
            f"search ?search={SEARCH_SELECTIVE} (1 match)",
            f"/api/customers?search={SEARCH_SELECTIVE}",
            f"/api/customers?search={SEARCH_SELECTIVE}",
            "GET",
        ),
        (
            "search_common",
            f"search ?search={SEARCH_COMMON} (common)",
            f"/api/customers?search={SEARCH_COMMON}",
            f"/api/customers?search={SEARCH_COMMON}",
            "GET",
        ),
        ("list_first", "list, first page", "/api/customers", "/api/customers", "GET"),
    ]
    if info.get("deep_cursor"):
        rows.append(
            (
                "list_deep_cursor",
                "list, deep page (?cursor=)",
                f"/api/customers?cursor={info['deep_cursor']}",
                None,
                "GET",
            )
        )
    rows += [
        ("list_deep_page", f"list, last page (?page={last_page})", f"/api/customers?page={last_page}", None, "GET"),
        (
            "interactions_by_customer",
            "interactions by customer",
            f"/api/interactions?customer_id={cid}",
            f"/api/interactions?customer_id={cid}",
            "GET",
        ),
        ("create", "create customer (POST)", "/api/customers", "/api/customers", "POST"),
        ("pipeline", "pipeline report", "/api/reports/pipeline", None, "GET"),
        ("export", "customer export", "/api/customers/export", None, "GET"),
    ]
    return rows


# The like-for-like rows and their targets against the reference (issue 17: detail and create at
# parity, beside an authenticating and rate-limiting stack; search and interactions at 1.5x).
LIKE_FOR_LIKE = {"detail": "1.0x", "search_selective": "1.5x", "interactions_by_customer": "1.5x", "create": "1.0x"}


def median_of(samples, key):
    values = [sample[key] for sample in samples]
    return statistics.median(values) if values else None


def summarise(samples):
    if not samples:
        return None
    return {
        "rps": median_of(samples, "rps"),
        "p50_ms": median_of(samples, "p50_ms"),
        "p99_ms": median_of(samples, "p99_ms"),
        "latency_adds_up": all(sample["latency_adds_up"] for sample in samples),
        "latency_load": [round(sample["latency_load"], 3) for sample in samples],
        "non_2xx": sum(sample["non_2xx"] for sample in samples),
        "socket_errors": sum(sample["socket_errors"] for sample in samples),
        "runs": [round(sample["rps"], 1) for sample in samples],
        "cpu_us": median_of([sample for sample in samples if sample.get("server_cpu_us")], "server_cpu_us"),
        "redis_cpu_us": median_of([sample for sample in samples if sample.get("redis_cpu_us")], "redis_cpu_us"),
    }


def rate(numerator, denominator):
    """numerator / denominator, or None when either is missing or the denominator is 0 (a run with no answers)."""
    return numerator / denominator if numerator is not None and denominator else None


def fmt(value, digits=1):
    return "—" if value is None else f"{value:,.{digits}f}"


def tail(summary):
    """The p99 cell of an app's row: marked when wrk's latencies did not add up (``latency_adds_up``)."""
    if summary is None:
        return fmt(None)
    return fmt(summary["p99_ms"], 2) + ("" if summary.get("latency_adds_up", True) else " †")


def render_table(meta, results, notes):
    production = meta.get("production")
    if production:
        serving = (
            f"gunicorn as gunicorn.conf.py serves (ours with the file itself): {production['workers']} "
            f"{production['worker_class']} workers x {production['threads']} thread(s), keep-alive {production['keepalive']} s, each"
        )
    else:
        serving = f"gunicorn {meta['workers']} sync workers each"
    lines = [
        f"Dataset: {meta['customers']:,} customers ({meta['database']}), reference on SQLite with the same "
        f"customer count; {serving}; load average {meta['load'][0]:.2f} at the end; wrk -t{meta['threads']} "
        f"-c{meta['connections']} -d{meta['duration']}s; median of {meta['runs']} runs; commit {meta['commit']}; "
        f"{meta['started']}.",
        "",
        "| endpoint | ours req/s | p50 ms | p99 ms | Flask req/s | p50 ms | p99 ms | ours/Flask |",
        "|---|---:|---:|---:|---:|---:|---:|---:|",
    ]
    for row in results:
        ours, ref = row["ours"], row["reference"]
        if ours is None:
            lines.append(f"| {row['label']} | skipped: {row['note']} | | | | | | |")
            continue
        ratio = ours["rps"] / ref["rps"] if ref and ref["rps"] else None
        target = LIKE_FOR_LIKE.get(row["key"])
        lines.append(
            f"| {row['label']} | {fmt(ours['rps'])} | {fmt(ours['p50_ms'], 2)} | {tail(ours)} | "
            f"{fmt(ref['rps'] if ref else None)} | {fmt(ref['p50_ms'] if ref else None, 2)} | "
            f"{tail(ref)} | {fmt(ratio, 2) + 'x' if ratio else '—'}{f' (target {target})' if target else ''} |"
        )
    ceiling = meta.get("ceiling")
    floor = meta.get("floor")
    detail = next((row for row in results if row["key"] == "detail"), None)
    flask_rps = ((detail or {}).get("reference") or {}).get("rps")
    if floor and detail and detail["ours"]:
        lines += [
            "",
            f"Django floor (no middleware, one URL, one raw SQLite query, {floor['table']}): detail "
            f"{fmt(floor['rps'])} req/s, p50 {fmt(floor['p50_ms'], 2)} ms. Ours/floor on detail: "
            f"{fmt(rate(detail['ours']['rps'], floor['rps']), 2)} (target 0.6); ours/Flask: "
            f"{fmt(rate(detail['ours']['rps'], flask_rps), 2)}x (target 1.0x); "
            f"Flask/floor: {fmt(rate(flask_rps, floor['rps']), 2)}.",
        ]
    if ceiling and detail and detail["ours"]:
        lines += [
            "",
            f"Ceiling (bare WSGI, one raw SQLite query, {ceiling['table']}): detail {fmt(ceiling['rps'])} req/s, "
            f"p50 {fmt(ceiling['p50_ms'], 2)} ms. Ours/ceiling on detail: "
            f"{fmt(rate(detail['ours']['rps'], ceiling['rps']), 2)}; "
            f"Flask/ceiling: {fmt(rate(flask_rps, ceiling['rps']), 2)}.",
        ]
    lines += cpu_table(results, floor, ceiling)
    if any(not (row[app] or {}).get("latency_adds_up", True) for row in results for app in ("ours", "reference")):
        lines += [
            "",
            "†: wrk's latencies in at least one run of this row add up to more time than its connections had "
            "(mean x requests > connections x duration), so its p99 is wrk's accounting, not the server's "
            '(docs/benchmarks.md, "Recycled workers"); throughput is not affected.',
        ]
    errors = [
        f"{row['label']}: {row['ours']['non_2xx']} non-2xx, {row['ours']['socket_errors']} socket errors"
        for row in results
        if row["ours"] and (row["ours"]["non_2xx"] or row["ours"]["socket_errors"])
    ]
    if errors:
        lines += ["", "Errors (ours): " + "; ".join(errors)]
    if notes:
        lines += [""] + [f"- {note}" for note in notes]
    return "\n".join(lines)


def cpu_table(results, floor, ceiling):
    """CPU time per answered request, by server: what each answer costs, whatever else the machine runs."""
    rows = [row for row in results if (row["ours"] or {}).get("cpu_us")]
    if not rows:
        return []
    lines = [
        "",
        "CPU per answered request (user and system time of the server's gunicorn processes over the same "
        "runs, median; ours also the local Redis server's, which counts its rate limits):",
        "",
        "| endpoint | ours us | ours' Redis us | Flask us | Flask/ours |",
        "|---|---:|---:|---:|---:|",
    ]
    for row in rows:
        ours, ref = row["ours"], row["reference"] or {}
        spent = ours["cpu_us"] + (ours.get("redis_cpu_us") or 0)
        lines.append(
            f"| {row['label']} | {fmt(ours['cpu_us'], 0)} | {fmt(ours.get('redis_cpu_us'), 0)} | "
            f"{fmt(ref.get('cpu_us'), 0)} | {fmt(rate(ref.get('cpu_us'), spent), 2)} |"
        )
    others = [(name, app) for name, app in (("Django floor", floor), ("ceiling", ceiling)) if app and app.get("cpu_us")]
    if others:
        lines += ["", "Detail: " + "; ".join(f"{name} {fmt(app['cpu_us'], 0)} us" for name, app in others) + "."]
    return lines


def main():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--db", choices=["sqlite", "postgres"], default="sqlite")
    parser.add_argument("--customers", type=int, default=10_000)
    parser.add_argument("--workers", type=int, default=2, help="gunicorn sync workers, for every app (default 2)")
    parser.add_argument("--duration", type=int, default=10, help="seconds per wrk run (default 10)")
    parser.add_argument("--runs", type=int, default=3, help="runs per endpoint; the median is reported (default 3)")
    parser.add_argument("--connections", type=int, default=8)
    parser.add_argument("--threads", type=int, default=1, help="wrk threads (default 1)")
    parser.add_argument("--only", help="comma-separated endpoint keys to measure (default: all)")
    parser.add_argument("--pg-url", default=os.environ.get("BENCH_DATABASE_URL", DEFAULT_PG_URL))
    parser.add_argument("--reference-dir", default=os.environ.get("BENCH_REFERENCE_DIR", str(DEFAULT_REFERENCE)))
    parser.add_argument("--reference-venv", default=os.environ.get("BENCH_REFERENCE_VENV", "/tmp/flaskref"))
    parser.add_argument("--no-reference", action="store_true", help="measure only this project")
    parser.add_argument(
        "--server",
        choices=["sync", "production"],
        default="sync",
        help="sync: --workers sync workers for every app (default); production: every app with the worker "
        "settings of gunicorn.conf.py (threaded workers, keep-alive), ours with the file itself",
    )
    parser.add_argument("--rebuild", action="store_true", help="rebuild the datasets even if they exist")
    args = parser.parse_args()

    if shutil.which("wrk") is None:
        raise SystemExit("wrk is not installed: apt-get install -y wrk")
    DATA.mkdir(parents=True, exist_ok=True)
    reference = Path(args.reference_dir)
    use_reference = not args.no_reference and (reference / "flask_original" / "app.py").exists()
    notes = []
    if not use_reference:
        notes.append(f"reference apps not measured (--no-reference, or none at {reference})")

    env, sqlite_path = prepare_ours(args)
    info = bench_setup(env, args.customers)
    if use_reference:
        ref_venv, ref_path = prepare_reference(args, reference)

    production = production_server_settings() if args.server == "production" else None
    servers = []
    try:
        ours = Server("ours", "crm_site.wsgi:application", args.workers, env, ROOT, GUNICORN, production=production)
        servers.append(ours)
        ours.wait_ready("/api/health")
        flask = ceiling = floor = None
        if use_reference:
            flask_env = {**os.environ, "SEED_DB": str(ref_path)}
            flask = Server(
                "flask",
                "app:app",
                args.workers,
                flask_env,
                reference / "flask_original",
                ref_venv / "bin" / "gunicorn",
                production=production,
            )
            servers.append(flask)
            flask.wait_ready("/api/health")
            if sqlite_path is not None:
                ceiling_env = {**os.environ, "CEILING_DB": str(sqlite_path), "CEILING_TABLE": "customers_customer"}
                ceiling_table = "customers_customer (this project's SQLite file)"
            else:
                ceiling_env = {**os.environ, "CEILING_DB": str(ref_path), "CEILING_TABLE": "customers"}
                ceiling_table = "customers (the reference's SQLite file; this run's data is on PostgreSQL)"
            ceiling = Server(
                "ceiling", "ceiling_app:app", args.workers, ceiling_env, reference, GUNICORN, production=production
            )
            servers.append(ceiling)
            ceiling.wait_ready(f"/api/customers/{info['unique_id']}")
            # The same file and table as the ceiling, under Django with nothing of its own (this project's Django).
            floor_env = {
                **os.environ,
                "FLOOR_DB": ceiling_env["CEILING_DB"],
                "FLOOR_TABLE": ceiling_env["CEILING_TABLE"],
                "DJANGO_SETTINGS_MODULE": "",
            }
            floor = Server(
                "floor", "django_floor:application", args.workers, floor_env, reference, GUNICORN, production=production
            )
            servers.append(floor)
            floor.wait_ready(f"/api/customers/{info['unique_id']}")

        plan = endpoints(info)
        if args.only:
            wanted = set(args.only.split(","))
            plan = [row for row in plan if row[0] in wanted]
        active = []
        for key, label, path, ref_path_url, method in plan:
            if method == "GET":
                status, _ = fetch_json(ours.base + path, info["token"])
                if status == 404:
                    notes.append(f"{label}: {path} does not exist in this build; skipped")
                    continue
                if status != 200:
                    raise SystemExit(f"{path} answered {status} before the benchmark")
            active.append((key, label, path, ref_path_url, method))
        skipped = {row[0] for row in plan} - {row[0] for row in active}

        samples = {key: {"ours": [], "reference": []} for key, *_ in active}
        ceiling_samples, floor_samples = [], []
        common = {"duration": args.duration, "connections": args.connections, "threads": args.threads}
        redis_pid = redis_server_pid() if env.get("REDIS_URL") else None
        for run_number in range(1, args.runs + 1):
            for key, label, path, ref_path_url, method in active:
                log(f"run {run_number}/{args.runs}: {label}")
                samples[key]["ours"].append(
                    wrk(
                        ours.base + path, token=info["token"], method=method, server=ours, redis_pid=redis_pid, **common
                    )
                )
                if flask and ref_path_url:
                    samples[key]["reference"].append(
                        wrk(flask.base + ref_path_url, method=method, server=flask, **common)
                    )
            if ceiling and any(key == "detail" for key, *_ in active):
                floor_url = f"{floor.base}/api/customers/{info['unique_id']}"
                floor_samples.append(wrk(floor_url, server=floor, **common))
                ceiling_url = f"{ceiling.base}/api/customers/{info['unique_id']}"
                ceiling_samples.append(wrk(ceiling_url, server=ceiling, **common))
    finally:
        for server in servers:
            server.stop()

    results = []
    for key, label, *_ in plan:
        if key in skipped:
            results.append({"key": key, "label": label, "ours": None, "reference": None, "note": "not in this build"})
            continue
        results.append(
            {
                "key": key,
                "label": label,
                "ours": summarise(samples[key]["ours"]),
                "reference": summarise(samples[key]["reference"]),
            }
        )
    meta = {
        "customers": info["total"],
        "database": args.db,
        "workers": args.workers,
        "threads": args.threads,
        "connections": args.connections,
        "duration": args.duration,
        "runs": args.runs,
        "commit": git_commit(),
        "started": datetime.now(UTC).strftime("%Y-%m-%d %H:%M UTC"),
        "load": os.getloadavg(),
        "server": args.server,
        "sqlite_synchronous": os.environ.get("DJANGO_SQLITE_SYNCHRONOUS") or "FULL",
    }
    if ceiling_samples:
        meta["ceiling"] = {**summarise(ceiling_samples), "table": ceiling_table}
        meta["floor"] = {**summarise(floor_samples), "table": ceiling_table}
    if production:
        meta["production"] = production
    notes.append("Flask lists return every row (no paging): its list and search figures are for the whole result")
    stamp = datetime.now(UTC).strftime("%Y%m%d-%H%M%S")
    stem = RESULTS / f"{stamp}-{args.db}-{args.customers}-{args.server}"
    # The raw figures first: they are kept even if the table cannot be made of them.
    stem.with_suffix(".json").write_text(json.dumps({"meta": meta, "results": results, "notes": notes}, indent=2))
    table = render_table(meta, results, notes)
    stem.with_suffix(".md").write_text(table + "\n")
    print(table)
    log(f"written {stem}.json and .md")


if __name__ == "__main__":
    main()
