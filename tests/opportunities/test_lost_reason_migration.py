"""The migrations that add ``lost_reason`` and its index: the deals there were get an empty reason, rows
written without the column (the demo seeding's) get one from the database, and backwards drops both."""

import pytest
from django.db import connection

from tests.companies.test_migration import migrate, to_latest

BEFORE = [("opportunities", "0014_stage_log_recorded")]
AFTER = [("opportunities", "0016_opportunity_lost_reason_idx")]
TABLE = "opportunities_opportunity"


@pytest.fixture
def at_0014(transactional_db):
    yield migrate(BEFORE)
    to_latest()


def columns_and_indexes():
    with connection.cursor() as cursor:
        columns = {column.name for column in connection.introspection.get_table_description(cursor, TABLE)}
        indexes = set(connection.introspection.get_constraints(cursor, TABLE))
    return columns, indexes


def test_deals_there_were_get_an_empty_reason_and_backwards_drops_it(at_0014):
    Customer = at_0014.get_model("customers", "Customer")
    Opportunity = at_0014.get_model("opportunities", "Opportunity")
    customer = Customer.objects.create(name="张三", status="active")
    Opportunity.objects.create(customer=customer, title="Lost before", value=10, stage="lost", probability=0)
    columns, indexes = columns_and_indexes()
    assert "lost_reason" not in columns and "opportunity_lost_reason_idx" not in indexes

    apps = migrate(AFTER)
    Opportunity = apps.get_model("opportunities", "Opportunity")
    assert list(Opportunity.objects.values_list("title", "lost_reason")) == [("Lost before", "")]
    columns, indexes = columns_and_indexes()
    assert "lost_reason" in columns and "opportunity_lost_reason_idx" in indexes
    with connection.cursor() as cursor:
        cursor.execute(
            f"INSERT INTO {TABLE} (customer_id, title, value, stage, probability, created_at, updated_at, "
            "custom_fields, tags) VALUES (%s, 'Seeded', 5, 'lost', 0, %s, %s, '{}', '[]')",
            [customer.pk, "2026-01-01 00:00:00+00:00", "2026-01-01 00:00:00+00:00"],
        )
    assert Opportunity.objects.get(title="Seeded").lost_reason == ""

    migrate(BEFORE)
    columns, indexes = columns_and_indexes()
    assert "lost_reason" not in columns and "opportunity_lost_reason_idx" not in indexes
