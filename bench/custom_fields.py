#!/usr/bin/env python3
"""Time a custom-field filter on PostgreSQL with and without the GIN index on ``custom_fields``.

    DATABASE_URL=postgres://postgres@127.0.0.1:5432/crm_bench .venv/bin/python bench/custom_fields.py \\
        --customers 1000000 --runs 5

Works on the PostgreSQL database DATABASE_URL names (migrated here if need be;
other data may be there). It defines two custom fields of customers, ``region``
(text, 1,000 values) and ``seats`` (number, 0-499), and fills the table up to
``--customers`` customers named ``cf-bench-N`` (``INSERT ... SELECT`` from
``generate_series``, ``--batch`` rows a statement; a second run reuses them).
Then it times, through the API's own filter code (``core.customfields.apply_filters``),
the first page (50 rows, newest first) and the count of

- ``?cf_region=r7`` (equality: ``custom_fields @> '{"region": "r7"}'``, 0.1% of the rows),
- ``?cf_region=nowhere`` (no row),
- ``?cf_seats__gte=495`` (a range: not answered by the GIN index),

first with the index ``customer_custom_fields_gin`` (``jsonb_path_ops``), then
without it (dropped, then created again at the end, whatever happens), and
prints the medians of ``--runs`` and each query plan's first line.
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

QUERIES = [
    ("cf_region=r7", "equality, 0.1%"),
    ("cf_region=nowhere", "equality, no row"),
    ("cf_seats__gte=495", "range"),
]
INDEX = "customer_custom_fields_gin"


def fill(connection, wanted, batch):
    with connection.cursor() as cursor:
        cursor.execute("SELECT count(*) FROM customers_customer WHERE name LIKE 'cf-bench-%%'")
        have = cursor.fetchone()[0]
        while have < wanted:
            upto = min(wanted, have + batch)
            started = time.perf_counter()
            cursor.execute(
                """
                INSERT INTO customers_customer (name, status, created_at, updated_at, custom_fields)
                SELECT 'cf-bench-' || g, 'active', now() - (g || ' seconds')::interval, now(),
                       jsonb_build_object('region', 'r' || (g %% 1000), 'seats', g %% 500)
                FROM generate_series(%s, %s) AS g
                """,
                [have + 1, upto],
            )
            print(f"  inserted customers {have + 1}-{upto} in {time.perf_counter() - started:.1f}s", flush=True)
            have = upto
        cursor.execute("ANALYZE customers_customer")
    return have


def measure(params, runs):
    from django.http import QueryDict

    from core import customfields
    from customers.models import Customer

    page_times, count_times = [], []
    for _ in range(runs):
        queryset, errors = customfields.apply_filters(Customer.objects.all(), "customers", QueryDict(params))
        assert not errors, errors
        started = time.perf_counter()
        rows = list(queryset.order_by("-created_at", "-id")[:50])
        page_times.append(time.perf_counter() - started)
        started = time.perf_counter()
        count = queryset.count()
        count_times.append(time.perf_counter() - started)
    plan = queryset.order_by("-created_at", "-id")[:50].explain().splitlines()
    scan = next((line.strip() for line in plan if "Scan" in line), plan[0])
    return statistics.median(page_times) * 1000, statistics.median(count_times) * 1000, count, len(rows), scan


def report(label, runs):
    print(f"\n{label}")
    print(f"  {'query':<22} {'page ms':>9} {'count ms':>9} {'rows':>8}  plan")
    for params, what in QUERIES:
        page_ms, count_ms, count, _rows, scan = measure(params, runs)
        print(f"  ?{params:<21} {page_ms:9.1f} {count_ms:9.1f} {count:8d}  {scan}  ({what})")


def main():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--customers", type=int, default=1_000_000)
    parser.add_argument("--runs", type=int, default=5)
    parser.add_argument("--batch", type=int, default=100_000)
    args = parser.parse_args()

    import django

    django.setup()
    from django.core.management import call_command
    from django.db import connection

    from core.fields import custom_fields_index_sql
    from core.models import CustomField

    if connection.vendor != "postgresql":
        sys.exit("This benchmark measures PostgreSQL's GIN index: set DATABASE_URL=postgres://...")
    call_command("migrate", verbosity=0)
    CustomField.objects.get_or_create(model="customers", key="region", defaults={"label": "Region"})
    CustomField.objects.get_or_create(
        model="customers", key="seats", defaults={"label": "Seats", "field_type": CustomField.Type.NUMBER}
    )
    print(f"Filling up to {args.customers} bench customers...", flush=True)
    total = fill(connection, args.customers, args.batch)
    with connection.cursor() as cursor:
        cursor.execute("SELECT count(*) FROM customers_customer")
        print(f"{total} bench customers, {cursor.fetchone()[0]} customers in all")
    create, drop = custom_fields_index_sql("customers_customer", INDEX)
    with connection.cursor() as cursor:
        cursor.execute(create)
        cursor.execute("ANALYZE customers_customer")
    report("With the GIN index (jsonb_path_ops)", args.runs)
    try:
        with connection.cursor() as cursor:
            cursor.execute(drop)
            cursor.execute("ANALYZE customers_customer")
        report("Without it", args.runs)
    finally:
        started = time.perf_counter()
        with connection.cursor() as cursor:
            cursor.execute(create)
        print(f"\nIndex created again in {time.perf_counter() - started:.1f}s")


if __name__ == "__main__":
    main()
