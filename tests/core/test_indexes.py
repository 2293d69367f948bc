"""Indexes added by migrations on tables that may be big are built without holding writes on PostgreSQL
(``CREATE INDEX CONCURRENTLY``, core/indexes.py) and plainly on SQLite."""

import io

import pytest
from django.core.management import call_command
from django.db import connection


def sql_of(*args):
    out = io.StringIO()
    call_command("sqlmigrate", *args, stdout=out)
    return out.getvalue()


@pytest.mark.parametrize("backwards", [False, True], ids=["forwards", "backwards"])
@pytest.mark.parametrize(
    ("app", "migration", "index"),
    [("tasks", "0006", "task_customer_sort_idx"), ("opportunities", "0016", "opportunity_lost_reason_idx")],
    ids=["task sort", "lost reasons"],
)
def test_indexes_on_big_tables_are_built_concurrently_on_postgresql_and_plainly_on_sqlite(
    transactional_db, backwards, app, migration, index
):
    sql = sql_of(app, migration, *(["--backwards"] if backwards else []))
    statement = "DROP INDEX" if backwards else "CREATE INDEX"
    assert index in sql
    if connection.vendor == "postgresql":
        assert f"{statement} CONCURRENTLY" in sql
        # Not in a transaction: PostgreSQL refuses to build an index concurrently inside one.
        assert "BEGIN;" not in sql
    else:
        assert statement in sql and "CONCURRENTLY" not in sql
