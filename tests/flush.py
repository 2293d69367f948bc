"""Emptying PostgreSQL after a transactional test: DELETE the rows rather than TRUNCATE the tables.

Django's flush, at the end of every ``transaction=True`` and ``live_server`` test, empties every table
with one TRUNCATE. On PostgreSQL that gives each table and index a new file: about 2 s for this schema on
the busy 2-core CI machine, against 25 ms to DELETE the few rows a test leaves (docs/testing.md). The
rows go with triggers and foreign-key checks off for that transaction (``session_replication_role =
replica``; TRUNCATE fires no row trigger either), which takes a superuser, as CI's ``postgres`` is.
Otherwise, and when sequences are reset or the flush cascades to tables outside the list, Django's
TRUNCATE runs. tests/core/test_flush.py proves both leave the same: every table empty.
"""

from django.db.backends.postgresql.operations import DatabaseOperations

TRUNCATE_SQL_FLUSH = DatabaseOperations.sql_flush


def delete_sql_flush(self, style, tables, *, reset_sequences=False, allow_cascade=False):
    if not tables or reset_sequences or allow_cascade or not _is_superuser(self.connection):
        return TRUNCATE_SQL_FLUSH(self, style, tables, reset_sequences=reset_sequences, allow_cascade=allow_cascade)
    return [
        "SET LOCAL session_replication_role = replica;",
        *(f"{style.SQL_KEYWORD('DELETE FROM')} {style.SQL_FIELD(self.quote_name(table))};" for table in tables),
        "SET LOCAL session_replication_role = origin;",
    ]


def _is_superuser(connection):
    with connection.cursor() as cursor:
        cursor.execute("SELECT current_setting('is_superuser') = 'on'")
        return cursor.fetchone()[0]
