#!/usr/bin/env python3
"""Time merging two customers with many records each through the API, and count its queries.

    DATABASE_URL=sqlite:////tmp/merge.db .venv/bin/python bench/merge_customers.py --interactions 10000
    DATABASE_URL=postgres://postgres@127.0.0.1:5432/crm_bench .venv/bin/python bench/merge_customers.py

Works on the database DATABASE_URL names (migrated; other data may be there):
adds two customers with ``--interactions`` interactions, ``--opportunities``
opportunities and as many tasks each (bulk-written, with their "created" history),
then sends ``POST /api/customers/merge`` in process through the full request
stack and reports the wall time and the SQL statements it ran. The moved records
are written in bulk with their history (``core.history.update_with_history``), so
the query count does not grow with them. Repeats ``--runs`` times; prints the median.
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


def main():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--interactions", type=int, default=10_000)
    parser.add_argument("--opportunities", type=int, default=500)
    parser.add_argument("--runs", type=int, default=3)
    args = parser.parse_args()

    import django

    django.setup()
    from django.contrib.auth import get_user_model
    from django.contrib.auth.models import Group
    from django.db import connection
    from django.test import Client
    from django.test.utils import CaptureQueriesContext
    from knox.models import get_token_model

    from core.history import record_creation
    from customers.models import Customer
    from interactions.models import Interaction
    from opportunities.models import Opportunity
    from tasks.models import Task

    user, _ = get_user_model().objects.get_or_create(username="bench-merge")
    user.groups.add(Group.objects.get(name="Sales manager"))
    _, token = get_token_model().objects.create(user)
    client = Client(HTTP_AUTHORIZATION=f"Bearer {token}", HTTP_HOST="127.0.0.1")

    def customer_with_records(name):
        customer = Customer.objects.create(name=name)
        for model, rows in [
            (
                Interaction,
                [
                    Interaction(customer=customer, interaction_type="call", notes=f"n{n}")
                    for n in range(args.interactions)
                ],
            ),
            (
                Opportunity,
                [
                    Opportunity(customer=customer, title=f"Deal {n}", value=100, probability=10)
                    for n in range(args.opportunities)
                ],
            ),
            (
                Task,
                [
                    Task(customer=customer, title=f"Task {n}", kind="call", assignee=user)
                    for n in range(args.opportunities)
                ],
            ),
        ]:
            record_creation(model, model.objects.bulk_create(rows, batch_size=1000))
        return customer

    timings, query_counts = [], []
    for run in range(args.runs):
        survivor, other = customer_with_records(f"bench-merge-{run}-a"), customer_with_records(f"bench-merge-{run}-b")
        body = {"survivor_id": survivor.pk, "merged_ids": [other.pk]}
        with CaptureQueriesContext(connection) as captured:
            began = time.perf_counter()
            response = client.post("/api/customers/merge", body, content_type="application/json")
            elapsed = time.perf_counter() - began
        assert response.status_code == 200, response.content
        moved = response.json()["data"]["moved"]
        assert moved["interactions"] == args.interactions, moved
        timings.append(elapsed)
        query_counts.append(len(captured))
        print(f"run {run + 1}: {elapsed * 1000:.0f} ms, {len(captured)} queries, moved {moved}")
    print(
        f"{connection.vendor}: merge a customer with {args.interactions:,} interactions, {args.opportunities} "
        f"opportunities and {args.opportunities} tasks into another: median {statistics.median(timings) * 1000:.0f} ms, "
        f"{max(query_counts)} queries"
    )


if __name__ == "__main__":
    main()
