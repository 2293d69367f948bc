#!/usr/bin/env python3
"""What writing an event costs a create: POST /api/customers with the event log on and off.

    DATABASE_URL=sqlite:////tmp/events.db .venv/bin/python bench/event_cost.py --creates 500
    DATABASE_URL=postgres://postgres@127.0.0.1:5432/crm_bench .venv/bin/python bench/event_cost.py

Works on the database DATABASE_URL names (migrated; other data may be there).
Sends ``--creates`` creates in process through the full request stack (token,
idempotency-free POST, history, summary read-back), first with the customer's
event hooks disconnected, then connected: the event row in the transaction and,
after the commit, the dispatch job put on the queue (the SQLite queue file, or
Redis with REDIS_URL; no worker runs, so nothing is dispatched meanwhile).
Alternates the two modes ``--runs`` times and prints the median time per create
and the SQL statements of one create in each mode.
"""

import argparse
import os
import statistics
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
os.environ.setdefault("DJANGO_SETTINGS_MODULE", "crm_site.settings.local")
# Measure the write, not the rate limit or the access log.
os.environ.setdefault("DJANGO_THROTTLE_USER", "100000000/minute")
os.environ.setdefault("DJANGO_LOG_LEVEL", "WARNING")


def main():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--creates", type=int, default=500)
    parser.add_argument("--runs", type=int, default=3)
    args = parser.parse_args()

    import django

    django.setup()
    from django.contrib.auth import get_user_model
    from django.contrib.auth.models import Group
    from django.db import connection
    from django.db.models.signals import post_delete, post_save
    from django.test import Client
    from django.test.utils import CaptureQueriesContext
    from knox.models import get_token_model

    from core import events
    from customers.models import Customer

    user, _ = get_user_model().objects.get_or_create(username="bench-events")
    user.groups.add(Group.objects.get(name="Sales manager"))
    _, token = get_token_model().objects.create(user)
    client = Client(HTTP_AUTHORIZATION=f"Bearer {token}", HTTP_HOST="127.0.0.1")
    uid = f"events:{Customer._meta.label_lower}"

    def set_events(on):
        if on:
            events.register(Customer, name="customer", serializer=events.source_for(Customer).serializer)
        else:
            post_save.disconnect(sender=Customer, dispatch_uid=uid)
            post_delete.disconnect(sender=Customer, dispatch_uid=uid)

    def create(n):
        response = client.post("/api/customers", {"name": f"Bench {n}"}, content_type="application/json")
        assert response.status_code == 201, response.content

    results = {False: [], True: []}
    queries = {}
    for _ in range(args.runs):
        for on in (False, True):
            set_events(on)
            with CaptureQueriesContext(connection) as captured:
                create(-1)
            queries[on] = len(captured)
            started = time.perf_counter()
            for n in range(args.creates):
                create(n)
            results[on].append((time.perf_counter() - started) / args.creates * 1000)
    set_events(True)
    vendor = connection.vendor
    off, on = statistics.median(results[False]), statistics.median(results[True])
    print(f"{vendor}: {args.creates} creates x {args.runs} runs (median)")
    print(f"  events off: {off:.2f} ms per create, {queries[False]} queries")
    print(f"  events on:  {on:.2f} ms per create, {queries[True]} queries")
    print(f"  cost of the event: {on - off:+.2f} ms ({(on - off) / off:+.0%})")


if __name__ == "__main__":
    main()
