#!/usr/bin/env python3
"""Peak resident memory of a gunicorn worker while it exports a whole table.

    DATABASE_URL=postgres://postgres@127.0.0.1:5432/crm_bench .venv/bin/python bench/export_memory.py
    DATABASE_URL=sqlite:////path/to/crm.db .venv/bin/python bench/export_memory.py --resource interactions

Serves the project under gunicorn (one sync worker, production settings) on the
database DATABASE_URL names (migrated and seeded, e.g. by ``bench/run.py`` or
``manage.py seed_demo``), creates a manager's token, downloads
``GET /api/<resource>/export?format=<format>`` to /dev/null and samples the
worker's resident set size (``VmRSS`` in ``/proc``) every 20 ms. Prints the
worker's memory before the request, its peak during it, the rows and bytes
received and the time taken.
"""

import argparse
import os
import sys
import threading
import time
import urllib.request
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

from run import GUNICORN, ROOT, Server, django_env, manage  # noqa: E402


def rss_mb(pid):
    with open(f"/proc/{pid}/status") as status:
        for line in status:
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) / 1024
    raise RuntimeError(f"no VmRSS for {pid}")


def worker_pid(server):
    children = server.worker_pids()
    if len(children) != 1:
        raise SystemExit(f"expected one gunicorn worker, found {children}")
    return children[0]


def main():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--resource", default="customers", choices=["customers", "interactions", "opportunities"])
    parser.add_argument("--format", default="csv", choices=["csv", "xlsx"])
    args = parser.parse_args()
    database_url = os.environ.get("DATABASE_URL")
    if not database_url:
        raise SystemExit("Set DATABASE_URL to the seeded database to export from.")

    env = django_env(database_url)
    script = (
        "from django.contrib.auth import get_user_model\n"
        "from django.contrib.auth.models import Group\n"
        "from knox.models import get_token_model\n"
        "user, _ = get_user_model().objects.get_or_create(username='bench-export')\n"
        "user.groups.add(Group.objects.get(name='Sales manager'))\n"
        "print(get_token_model().objects.create(user)[1])\n"
    )
    token = manage(env, "shell", "-c", script, capture=True).strip().splitlines()[-1]
    # A sync worker answering one long request is killed after gunicorn's timeout.
    server = Server("export-memory", "crm_site.wsgi:application", 1, env, ROOT, GUNICORN, timeout=3600)
    try:
        server.wait_ready("/api/schema/?format=json")
        pid = worker_pid(server)
        before = rss_mb(pid)
        peak = before
        done = threading.Event()

        def sample():
            nonlocal peak
            while not done.is_set():
                peak = max(peak, rss_mb(pid))
                time.sleep(0.02)

        sampler = threading.Thread(target=sample)
        sampler.start()
        began = time.perf_counter()
        request = urllib.request.Request(
            f"{server.base}/api/{args.resource}/export?format={args.format}",
            headers={"Authorization": f"Bearer {token}"},
        )
        size = lines = 0
        with urllib.request.urlopen(request, timeout=3600) as response:
            while chunk := response.read(1 << 20):
                size += len(chunk)
                lines += chunk.count(b"\n")
        elapsed = time.perf_counter() - began
        done.set()
        sampler.join()
    finally:
        server.stop()
    rows = f"{lines - 1:,} rows" if args.format == "csv" else "rows: see the file"
    print(
        f"{args.resource} export ({args.format}): {rows}, {size / 1e6:,.1f} MB in {elapsed:.1f} s; "
        f"worker RSS {before:.0f} MB before, peak {peak:.0f} MB"
    )


if __name__ == "__main__":
    main()
