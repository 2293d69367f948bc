"""The flush that ends a transactional test on PostgreSQL (tests/flush.py) leaves what Django's does."""

import pytest
from django.core.management.color import no_style
from django.db import connection, transaction

from tests.factories import InteractionFactory, ManagerFactory, OpportunityFactory, TaskFactory
from tests.flush import TRUNCATE_SQL_FLUSH, delete_sql_flush

pytestmark = [
    pytest.mark.django_db,
    pytest.mark.skipif(connection.vendor != "postgresql", reason="the DELETE flush is PostgreSQL's only"),
]


def counts(tables):
    with connection.cursor() as cursor:
        result = {}
        for table in tables:
            cursor.execute(f"SELECT count(*) FROM {connection.ops.quote_name(table)}")
            result[table] = cursor.fetchone()[0]
        return result


def after_flush(sql_flush, tables, **options):
    """The row count of every table after ``sql_flush``'s statements, rolled back afterwards."""
    with transaction.atomic():
        # A flush runs after the test's transaction: no foreign-key check is left pending.
        connection.check_constraints()
        connection.ops.execute_sql_flush(sql_flush(connection.ops, no_style(), tables, **options))
        result = counts(tables)
        transaction.set_rollback(True)
    return result


def test_deleting_empties_every_table_as_truncating_does():
    # Rows in many tables, some of them written by triggers (the pipeline figures) and history.
    opportunity = OpportunityFactory(customer__owner=ManagerFactory())
    TaskFactory(customer=opportunity.customer, opportunity=opportunity)
    InteractionFactory(customer=opportunity.customer)
    tables = connection.introspection.django_table_names(only_existing=True, include_views=False)
    before = counts(tables)
    assert sum(1 for count in before.values() if count) >= 10

    assert after_flush(delete_sql_flush, tables) == after_flush(TRUNCATE_SQL_FLUSH, tables) == dict.fromkeys(tables, 0)
    # Rolled back, every row is there again.
    assert counts(tables) == before


@pytest.mark.parametrize("options", [{"reset_sequences": True}, {"allow_cascade": True}])
def test_a_flush_that_resets_sequences_or_cascades_is_djangos_truncate(options):
    tables = ["customers_customer"]

    assert delete_sql_flush(connection.ops, no_style(), tables, **options) == TRUNCATE_SQL_FLUSH(
        connection.ops, no_style(), tables, **options
    )
