"""Queries spent deleting a customer with N interactions and N opportunities, history included.

Compares django-simple-history's default (one INSERT per deleted row, from its
post_delete signal) with the batched deletion history the admin and the API use.

    DATABASE_URL=sqlite:///:memory: python bench/delete_history_queries.py
    DATABASE_URL=postgres://postgres@127.0.0.1:5432/crm_bench python bench/delete_history_queries.py

The database is migrated first; everything the script creates is rolled back.
"""

import os
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
os.environ.setdefault("DJANGO_SETTINGS_MODULE", "crm_site.settings.test")
os.environ.setdefault("DATABASE_URL", "sqlite:///:memory:")

import django  # noqa: E402

django.setup()

from django.core.management import call_command  # noqa: E402
from django.db import connection, transaction  # noqa: E402
from django.test.utils import CaptureQueriesContext  # noqa: E402

from core.history import batched_delete_history  # noqa: E402
from tests.factories import CustomerFactory, InteractionFactory, OpportunityFactory  # noqa: E402


class Rollback(Exception):
    pass


def measure(children, batched):
    try:
        with transaction.atomic():
            customer = CustomerFactory()
            InteractionFactory.create_batch(children, customer=customer)
            OpportunityFactory.create_batch(children, customer=customer)
            started = time.perf_counter()
            with CaptureQueriesContext(connection) as queries:
                if batched:
                    with batched_delete_history():
                        customer.delete()
                else:
                    customer.delete()
            elapsed = time.perf_counter() - started
            raise Rollback((len(queries), elapsed))
    except Rollback as result:
        return result.args[0]


def main():
    call_command("migrate", verbosity=0)
    print(f"database: {connection.vendor}")
    print(f"{'children':>9} {'default queries':>16} {'batched queries':>16} {'default ms':>11} {'batched ms':>11}")
    for children in (0, 10, 100, 500):
        default_queries, default_time = measure(children, batched=False)
        batched_queries, batched_time = measure(children, batched=True)
        print(
            f"{2 * children:>9} {default_queries:>16} {batched_queries:>16} "
            f"{default_time * 1000:>11.1f} {batched_time * 1000:>11.1f}"
        )


if __name__ == "__main__":
    main()
