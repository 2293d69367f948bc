#!/usr/bin/env python3
"""Events per second one worker delivers to a local webhook receiver.

    DATABASE_URL=sqlite:////tmp/hooks.db CRM_QUEUE_FILE=/tmp/hooks-queue.db \
        .venv/bin/python bench/webhook_throughput.py --events 1000 --runs 3
    DATABASE_URL=postgres://postgres@127.0.0.1:5432/crm_bench REDIS_URL=redis://127.0.0.1:6379/3 \
        CRM_QUEUE_NAME=bench-hooks .venv/bin/python bench/webhook_throughput.py --events 1000 --runs 3

Works on the database DATABASE_URL names (migrated here; other data may be
there) and the queue the settings name (an SQLite file, or Redis with
REDIS_URL). It starts a receiver (a threaded HTTP server in this process that
answers 204 at once), registers one endpoint for it, starts one
``manage.py worker`` process (its default threads, CRM_WORKER_THREADS) and waits
for it. Each run then writes ``--events`` customers in one transaction (one
``customer.created`` event each, as a bulk import would) and times from the
commit to the receiver's last request: the dispatch job, the fan-out into
deliveries, and the signed POSTs one after the other (deliveries to one endpoint
go in order, so one endpoint is one sender at a time). Prints the median rate of
``--runs`` runs and the load average before and after.
"""

import argparse
import os
import statistics
import subprocess
import sys
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
os.environ.setdefault("DJANGO_SETTINGS_MODULE", "crm_site.settings.local")
os.environ.setdefault("DJANGO_LOG_LEVEL", "WARNING")
os.environ["DJANGO_WEBHOOKS_ALLOW_PRIVATE"] = "true"


class Receiver:
    def __init__(self):
        self.count = 0
        self.last = None
        self.lock = threading.Lock()
        receiver = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def do_POST(self):
                self.rfile.read(int(self.headers.get("Content-Length", 0)))
                self.send_response(204)
                self.send_header("Content-Length", "0")
                self.end_headers()
                with receiver.lock:
                    receiver.count += 1
                    receiver.last = time.perf_counter()

            def log_message(self, *args):
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.server.daemon_threads = True
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}/hook"
        threading.Thread(target=self.server.serve_forever, daemon=True).start()


def start_worker(log_path):
    log = log_path.open("w")
    process = subprocess.Popen(
        [sys.executable, "manage.py", "worker"],
        cwd=ROOT,
        env=os.environ.copy(),
        stdout=log,
        stderr=subprocess.STDOUT,
        start_new_session=True,
    )
    deadline = time.monotonic() + 120
    while "consumer started" not in log_path.read_text().lower():
        if process.poll() is not None or time.monotonic() > deadline:
            raise SystemExit(f"the worker did not start:\n{log_path.read_text()}")
        time.sleep(0.2)
    return process


def main():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--events", type=int, default=1000)
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument("--timeout", type=float, default=600, help="seconds a run may take")
    args = parser.parse_args()

    import django

    django.setup()
    from django.core.management import call_command
    from django.db import connection, transaction

    from customers.models import Customer
    from webhooks.models import Endpoint

    call_command("migrate", verbosity=0)
    receiver = Receiver()
    Endpoint.objects.filter(url__startswith="http://127.0.0.1:").update(is_active=False)
    endpoint = Endpoint.objects.create(url=receiver.url, description="bench", event_types=["customer.created"])
    load_before = os.getloadavg()
    worker = start_worker(Path(os.environ.get("TMPDIR", "/tmp")) / f"bench-worker-{os.getpid()}.log")
    rates = []
    try:
        for run in range(args.runs):
            expected = receiver.count + args.events
            with transaction.atomic():
                for n in range(args.events):
                    Customer.objects.create(name=f"Hook bench {run}-{n}")
            committed = time.perf_counter()
            deadline = time.monotonic() + args.timeout
            while receiver.count < expected:
                if time.monotonic() > deadline or worker.poll() is not None:
                    raise SystemExit(f"run {run}: {receiver.count - expected + args.events} of {args.events} arrived")
                time.sleep(0.05)
            elapsed = receiver.last - committed
            rates.append(args.events / elapsed)
            print(f"  run {run + 1}: {args.events} events in {elapsed:.2f} s = {rates[-1]:.0f} events/s")
    finally:
        worker.terminate()
        try:
            worker.wait(30)
        except subprocess.TimeoutExpired:
            worker.kill()
        Endpoint.objects.filter(pk=endpoint.pk).update(is_active=False)
    queue = "Redis" if os.environ.get("REDIS_URL") else "SQLite file"
    print(f"{connection.vendor}, {queue} queue: {args.events} events x {args.runs} runs, one worker, one endpoint")
    print(f"  median {statistics.median(rates):.0f} events/s delivered")
    print(f"  load average before {load_before[0]:.2f}, after {os.getloadavg()[0]:.2f} (1 min)")


if __name__ == "__main__":
    main()
