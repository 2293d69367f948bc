#!/usr/bin/env python3
"""Concurrent writers on SQLite through the API: no "database is locked", no lost write.

    .venv/bin/python bench/sqlite_writers.py --threads 8 --writes 500 --workers 4

Starts the project under gunicorn (production settings, ``--workers`` sync
workers) on a fresh SQLite file, then ``--threads`` client threads each send
``--writes`` writes over keep-alive connections: alternately a new customer
and an interaction for it. Afterwards every acknowledged write must be in the
database, exactly once, and the server log must hold no "database is locked".
Exits non-zero otherwise. A smaller run of the same check is part of the test
suite (tests/core/api/test_sqlite_concurrency.py).
"""

import argparse
import http.client
import json
import sys
import threading
import time
from collections import Counter
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

from run import DATA, Server, django_env, log, manage  # noqa: E402

ROOT = Path(__file__).resolve().parent.parent


def writer(port, token, thread_number, writes, statuses, latencies, acknowledged):
    connection = http.client.HTTPConnection("127.0.0.1", port, timeout=60)
    headers = {"Authorization": f"Bearer {token}", "Content-Type": "application/json"}
    customer_id = None
    for number in range(writes):
        if customer_id is None or number % 2 == 0:
            path = "/api/customers"
            body = {"name": f"Writer {thread_number}-{number}", "email": f"w{thread_number}-{number}@example.com"}
        else:
            path = "/api/interactions"
            body = {"customer_id": customer_id, "interaction_type": "call", "notes": f"{thread_number}-{number}"}
        started = time.perf_counter()
        connection.request("POST", path, json.dumps(body), headers)
        response = connection.getresponse()
        payload = response.read()
        latencies.append(time.perf_counter() - started)
        statuses[response.status] += 1
        if response.status == 201:
            data = json.loads(payload)["data"]
            if path == "/api/customers":
                customer_id = data["id"]
                acknowledged["customers"].add(data["id"])
            else:
                acknowledged["interactions"].add(data["id"])
    connection.close()


def main():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--threads", type=int, default=8)
    parser.add_argument("--writes", type=int, default=500, help="writes per thread")
    parser.add_argument("--workers", type=int, default=4, help="gunicorn sync workers")
    args = parser.parse_args()

    DATA.mkdir(parents=True, exist_ok=True)
    path = DATA / "writers.db"
    for suffix in ("", "-wal", "-shm"):
        Path(f"{path}{suffix}").unlink(missing_ok=True)
    env = django_env(f"sqlite:///{path}")
    manage(env, "migrate", "--noinput", "-v0")
    script = (
        "from django.contrib.auth import get_user_model\nfrom knox.models import get_token_model\n"
        "from django.contrib.auth.models import Group\n"
        "user = get_user_model().objects.create_user('writer')\n"
        "user.groups.add(Group.objects.get(name='Sales manager'))\n"
        "print(get_token_model().objects.create(user)[1])\n"
    )
    token = manage(env, "shell", "-c", script, capture=True).strip().splitlines()[-1]

    server = Server(
        "writers", "crm_site.wsgi:application", args.workers, env, ROOT, ROOT / ".venv" / "bin" / "gunicorn"
    )
    statuses, latencies = Counter(), []
    acknowledged = {"customers": set(), "interactions": set()}
    try:
        server.wait_ready("/api/health")
        threads = [
            threading.Thread(
                target=writer, args=(server.port, token, number, args.writes, statuses, latencies, acknowledged)
            )
            for number in range(args.threads)
        ]
        started = time.perf_counter()
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join()
        elapsed = time.perf_counter() - started
    finally:
        server.stop()

    check = (
        "import json\nfrom customers.models import Customer\nfrom interactions.models import Interaction\n"
        "print(json.dumps({'customers': list(Customer.objects.values_list('id', flat=True)),"
        " 'interactions': list(Interaction.objects.values_list('id', flat=True))}))\n"
    )
    stored = json.loads(manage(env, "shell", "-c", check, capture=True).strip().splitlines()[-1])
    locked = server.log_path.read_text().count("database is locked")
    total = args.threads * args.writes
    lost = {kind: len(acknowledged[kind] - set(stored[kind])) for kind in acknowledged}
    extra = {kind: len(set(stored[kind]) - acknowledged[kind]) for kind in acknowledged}
    latencies.sort()
    print(
        f"{args.threads} threads x {args.writes} writes, gunicorn {args.workers} workers, SQLite WAL: "
        f"{total} writes in {elapsed:.1f} s ({total / elapsed:,.0f} writes/s); "
        f"p50 {latencies[len(latencies) // 2] * 1000:.1f} ms, p99 {latencies[int(len(latencies) * 0.99)] * 1000:.1f} ms"
    )
    print(
        f"statuses: {dict(statuses)}; 'database is locked' in the log: {locked}; lost: {lost}; unacknowledged: {extra}"
    )
    ok = statuses == Counter({201: total}) and not locked and not any(lost.values()) and not any(extra.values())
    log("OK" if ok else "FAILED")
    sys.exit(0 if ok else 1)


if __name__ == "__main__":
    main()
