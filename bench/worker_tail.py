#!/usr/bin/env python3
"""One client's view of the production workers: each request's latency, and each worker's memory.

    .venv/bin/python bench/worker_tail.py --customers 10000 --requests 8000
    .venv/bin/python bench/worker_tail.py --customers 10000 --requests 3000 --new-connections

Serves the project as ``gunicorn.conf.py`` does (``bench/run.py --server production``: preloaded,
threaded workers, keep-alive, workers recycled after ``GUNICORN_MAX_REQUESTS``; set ``GUNICORN_*``
in the environment to change one) on ``bench/run.py``'s SQLite dataset, and asks for one customer's
detail ``--requests`` times, one request at a time, timing each one in this process (``wrk``'s own
latency accounting does not always add up: docs/benchmarks.md, "Recycled workers"). By default the
requests share one kept-alive connection, as a browser or an API client does, and follow it when
a recycled worker closes it; ``--new-connections`` opens one per request, so that every worker
serves some. Prints the percentiles, every request slower than ``--slow`` ms with when it started,
and, at the end, each process's memory (``/proc/<pid>/smaps_rollup``: what it shares with the
others and what is its own).
"""

import argparse
import http.client
import sys
import time
from pathlib import Path
from types import SimpleNamespace

sys.path.insert(0, str(Path(__file__).resolve().parent))

import run  # noqa: E402 - bench/run.py, beside this file


def memory(pid):
    """Megabytes of ``pid``'s memory by kind (resident, proportional share, shared and private dirty pages)."""
    kinds = {}
    with open(f"/proc/{pid}/smaps_rollup") as rollup:
        for line in rollup:
            name, *values = line.split()
            if name in ("Rss:", "Pss:", "Shared_Dirty:", "Private_Dirty:"):
                kinds[name[:-1]] = int(values[0]) / 1024
    return kinds


def main():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--customers", type=int, default=10000)
    parser.add_argument("--requests", type=int, default=8000)
    parser.add_argument("--warm-up", type=int, default=500, help="requests before the timed ones (default 500)")
    parser.add_argument("--slow", type=float, default=10.0, help="list requests slower than this, in ms")
    parser.add_argument("--new-connections", action="store_true", help="a new connection for every request")
    args = parser.parse_args()
    if args.requests < 1 or args.warm_up < 0:
        parser.error("--requests must be at least 1 and --warm-up at least 0")

    env, _ = run.prepare_ours(SimpleNamespace(db="sqlite", customers=args.customers, rebuild=False, pg_url=None))
    info = run.bench_setup(env, args.customers)
    production = run.production_server_settings()
    server = run.Server(
        "ours",
        "crm_site.wsgi:application",
        0,
        env,
        run.ROOT,
        run.GUNICORN,
        production=production,
        log_name="worker-tail",
    )
    try:
        server.wait_ready("/api/health")
        headers = {"Authorization": f"Bearer {info['token']}", "Accept": "application/json"}
        if args.new_connections:
            headers["Connection"] = "close"
        path = f"/api/customers/{info['unique_id']}"
        connection = None
        timings, reconnects = [], 0
        started = time.perf_counter()
        for number in range(args.warm_up + args.requests):
            if connection is None:
                connection = http.client.HTTPConnection("127.0.0.1", server.port, timeout=30)
            began = time.perf_counter()
            connection.request("GET", path, headers=headers)
            response = connection.getresponse()
            response.read()
            took = time.perf_counter() - began
            if response.status != 200:
                raise SystemExit(f"answer {response.status} to request {number}")
            if response.getheader("Connection", "").lower() == "close":
                # The answer's worker is recycled (or the client asked): the next request opens a connection.
                connection.close()
                connection = None
                reconnects += not args.new_connections
            if number >= args.warm_up:
                timings.append((began - started, took * 1000))
        processes = [server.pid, *server.worker_pids()]
        sizes = {}
        for pid in processes:
            try:
                kinds = memory(pid)
            except OSError:
                continue  # a worker that was being recycled
            if "Pss" in kinds:
                sizes[pid] = kinds
    finally:
        server.stop()

    ordered = sorted(took for _, took in timings)

    def percentile(share):
        return ordered[min(len(ordered) - 1, int(len(ordered) * share))]

    print(
        f"{len(ordered)} requests, one at a time ({'a new connection each' if args.new_connections else 'kept alive'}, "
        f"{reconnects} reconnections after a recycled worker's last answer): p50 {percentile(0.5):.2f} ms, "
        f"p90 {percentile(0.9):.2f} ms, p99 {percentile(0.99):.2f} ms, p99.9 {percentile(0.999):.2f} ms, "
        f"max {ordered[-1]:.1f} ms"
    )
    slow = [f"{at:.3f} s: {took:.1f} ms" for at, took in timings if took > args.slow]
    print(f"over {args.slow:g} ms: {len(slow)}" + (f" ({'; '.join(slow)})" if slow else ""))
    for pid, kinds in sizes.items():
        role = "master" if pid == server.pid else "worker"
        print(f"{role} {pid}: " + ", ".join(f"{name} {size:.0f} MB" for name, size in kinds.items()))
    workers = [kinds for pid, kinds in sizes.items() if pid != server.pid]
    if workers:
        print(
            f"all {len(sizes)} processes: Pss {sum(kinds['Pss'] for kinds in sizes.values()):.0f} MB; "
            f"a worker's own (Private_Dirty) {min(kinds['Private_Dirty'] for kinds in workers):.0f} to "
            f"{max(kinds['Private_Dirty'] for kinds in workers):.0f} MB"
        )


if __name__ == "__main__":
    main()
