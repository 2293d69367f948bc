#!/usr/bin/env python3
"""Time deleting one customer with many interactions through the API, and count its queries.

    DATABASE_URL=sqlite:////tmp/del.db .venv/bin/python bench/delete_customer.py --interactions 50000
    DATABASE_URL=postgres://postgres@127.0.0.1:5432/crm_bench .venv/bin/python bench/delete_customer.py

Works on the database DATABASE_URL names (migrated; other data may be there):
adds one customer with ``--interactions`` interactions and ``--opportunities``
opportunities (bulk-written), then sends ``DELETE /api/customers/<id>`` in
process through the full request stack and reports the wall time and the SQL
statements it ran. Repeats ``--runs`` times and prints the median.
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


def _row(columns, values):
    """A row for the seeding writer: ``values`` (column -> value) in the order of ``columns``."""
    return tuple(values[column] for column in columns)


def main():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--interactions", type=int, default=50_000)
    parser.add_argument("--opportunities", type=int, default=100)
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

    from operations.seeding import (
        CUSTOMER_COLUMNS,
        INTERACTION_COLUMNS,
        OPPORTUNITY_COLUMNS,
        STAGE_CHANGE_COLUMNS,
        BulkWriter,
        StartIds,
        generate,
    )

    user, _ = get_user_model().objects.get_or_create(username="bench-delete")
    user.groups.add(Group.objects.get(name="Sales manager"))
    _, token = get_token_model().objects.create(user)
    client = Client(HTTP_AUTHORIZATION=f"Bearer {token}", HTTP_HOST="127.0.0.1")
    timings, query_counts = [], []
    for run in range(args.runs):
        start = StartIds.after_existing()
        writer = BulkWriter()
        for batch in generate(1, seed=run, interactions_per=0, opportunities_per=0, start=start):
            customer = dict(zip(CUSTOMER_COLUMNS, batch.customers[0], strict=True))
            # No email: the one generated customer must not clash with earlier runs.
            customer["email"] = None
            batch.customers = [_row(CUSTOMER_COLUMNS, customer)]
            created = customer["created_at"]
            batch.interactions = [
                _row(
                    INTERACTION_COLUMNS,
                    {
                        "id": start.interaction + n,
                        "customer_id": start.customer,
                        "interaction_type": "call",
                        "notes": f"note {n}",
                        "occurred_at": created,
                        "created_at": created,
                    },
                )
                for n in range(args.interactions)
            ]
            batch.opportunities = [
                _row(
                    OPPORTUNITY_COLUMNS,
                    {
                        "id": start.opportunity + n,
                        "customer_id": start.customer,
                        "title": f"Deal {n}",
                        "value": 100,
                        "stage": "lead",
                        "probability": 10,
                        "expected_close_date": None,
                        "closed_at": None,
                        "created_at": created,
                        "updated_at": created,
                        "company_id": customer["company_id"],
                    },
                )
                for n in range(args.opportunities)
            ]
            batch.stage_changes = [
                _row(
                    STAGE_CHANGE_COLUMNS,
                    {
                        "id": start.stage_change + n,
                        "opportunity_id": start.opportunity + n,
                        "from_stage": None,
                        "to_stage": "lead",
                        "changed_at": created,
                    },
                )
                for n in range(args.opportunities)
            ]
            writer.write(batch)
        writer.finish()
        with CaptureQueriesContext(connection) as captured:
            began = time.perf_counter()
            response = client.delete(f"/api/customers/{start.customer}")
            elapsed = time.perf_counter() - began
        assert response.status_code == 200, response.content
        deleted = response.json()["data"]["deleted"]
        assert deleted["interactions"] == args.interactions, deleted
        timings.append(elapsed)
        query_counts.append(len(captured))
        print(f"run {run + 1}: {elapsed * 1000:.0f} ms, {len(captured)} queries, deleted {deleted}")
    print(
        f"{connection.vendor}: delete a customer with {args.interactions:,} interactions and "
        f"{args.opportunities} opportunities: median {statistics.median(timings) * 1000:.0f} ms, "
        f"{max(query_counts)} queries"
    )
    for query in captured.captured_queries:
        print("   ", query["sql"][:160])


if __name__ == "__main__":
    main()
