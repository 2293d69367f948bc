"""``?search=`` over a few text columns of one table, with the indexes that make it fast.

The result is always exactly Django's ``icontains`` on the columns (OR-ed);
indexes narrow the rows it checks without changing it:

- PostgreSQL: trigram GIN indexes on ``UPPER(column)``, the expression that
  ``icontains`` compiles to (``UPPER(col::text) LIKE UPPER(%term%)``).
- SQLite: an FTS5 table with the trigram tokenizer over the columns, kept in
  step with the table by triggers. For terms of three characters or more it
  narrows the candidates to the few rows that contain the term; ``icontains``
  then checks them, so that FTS5's Unicode case folding (wider than SQLite's
  ASCII-only ``LIKE``) never adds a row. Shorter terms use ``LIKE`` alone.

With ``phone_field`` (the E.164 column) and ``phone_national_field`` (the national
significant number's), a term that reads as a phone number also finds the rows whose
number it is, however it is written (``core.phones.search_q``: equalities on those
indexed columns).

An app declares one :class:`TextSearch` per searched table and creates its
indexes from a migration (``create_indexes`` / ``drop_indexes``).
"""

import json
from functools import reduce
from operator import or_

from django.db import connection, connections
from django.db.models import Q
from django.db.models.expressions import RawSQL

from core import phones

TRIGRAM_MIN_LENGTH = 3


def estimated_rows(queryset):
    """The planner's estimate of the number of rows of ``queryset``, read without running it.

    PostgreSQL estimates a ``LIKE '%word%'`` from the statistics of the indexed expression
    (``UPPER(column)``); SQLite gives no such figure: None.
    """
    if connections[queryset.db].vendor != "postgresql":
        return None
    return json.loads(queryset.explain(format="json"))[0]["Plan"]["Plan Rows"]


class TextSearch:
    """Search of ``table``'s ``columns`` (``{model field: database column}``).

    ``index_prefix`` names the PostgreSQL indexes (``<prefix>_<column>_trgm_idx``);
    the SQLite index is the FTS5 table ``<table>_search``.
    """

    def __init__(self, *, table, columns, index_prefix, phone_field=None, phone_national_field=None):
        self.table = table
        # A term that reads as a phone number also finds the rows with that number, however written.
        self.phone_field = phone_field
        self.phone_national_field = phone_national_field
        self.columns = dict(columns)
        self.index_prefix = index_prefix
        self.fts_table = f"{table}_search"
        db_columns = list(self.columns.values())
        listed = ", ".join(db_columns)
        new = ", ".join(f"new.{column}" for column in db_columns)
        old = ", ".join(f"old.{column}" for column in db_columns)
        fts = self.fts_table
        self.sqlite_triggers = {
            f"{fts}_ai": (
                f"CREATE TRIGGER IF NOT EXISTS {fts}_ai AFTER INSERT ON {table} BEGIN "
                f"INSERT INTO {fts}(rowid, {listed}) VALUES (new.id, {new}); END"
            ),
            f"{fts}_ad": (
                f"CREATE TRIGGER IF NOT EXISTS {fts}_ad AFTER DELETE ON {table} BEGIN "
                f"INSERT INTO {fts}({fts}, rowid, {listed}) VALUES ('delete', old.id, {old}); END"
            ),
            f"{fts}_au": (
                f"CREATE TRIGGER IF NOT EXISTS {fts}_au AFTER UPDATE OF {listed} ON {table} BEGIN "
                f"INSERT INTO {fts}({fts}, rowid, {listed}) VALUES ('delete', old.id, {old}); "
                f"INSERT INTO {fts}(rowid, {listed}) VALUES (new.id, {new}); END"
            ),
        }

    def icontains_q(self, term, fields=None):
        return reduce(or_, (Q(**{f"{field}__icontains": term}) for field in fields or self.columns))

    def filter(self, queryset, term):
        return queryset.filter(self.condition(term))

    def condition(self, term, fields=None):
        """The ``Q`` of :meth:`filter`, to combine with others.

        ``fields`` narrows it to some of the columns (``icontains`` on those alone, through the
        same indexes), without the phone number match.
        """
        if fields is not None and not set(fields) <= set(self.columns):
            raise ValueError(f"{self.table} searches {list(self.columns)}, not {list(fields)}")
        condition = self.icontains_q(term, fields)
        if connection.vendor == "sqlite" and len(term) >= TRIGRAM_MIN_LENGTH:
            # Any column containing the term: a superset of the rows the icontains keeps.
            phrase = '"' + term.replace('"', '""') + '"'
            fts = self.fts_table
            condition &= Q(pk__in=RawSQL(f"SELECT rowid FROM {fts} WHERE {fts} MATCH %s", [phrase]))
        number = self.phone_q(term) if fields is None else None
        if number is not None:
            condition |= number
        return condition

    def phone_q(self, term):
        """The condition on the phone columns if ``term`` reads as a phone number (``core.phones.search_q``)."""
        if self.phone_field is None:
            return None
        return phones.search_q(term, self.phone_field, self.phone_national_field)

    # PostgreSQL

    def postgres_index_statements(self):
        statements = ["CREATE EXTENSION IF NOT EXISTS pg_trgm"]
        for column in self.columns.values():
            statements.append(
                f"CREATE INDEX IF NOT EXISTS {self.index_prefix}_{column}_trgm_idx "
                f"ON {self.table} USING gin (UPPER({column}) gin_trgm_ops)"
            )
        return statements

    def postgres_drop_statements(self):
        return [f"DROP INDEX IF EXISTS {self.index_prefix}_{column}_trgm_idx" for column in self.columns.values()]

    # SQLite

    def ensure_sqlite_index(self, cursor):
        """Create the FTS5 table and its triggers where missing; rebuild the index if anything was.

        Rebuilding from the table heals the index after a migration that remade
        the table (SQLite's way of altering a table drops its triggers).
        Returns True when it had to create something.
        """
        cursor.execute(
            "SELECT name FROM sqlite_master WHERE type IN ('table', 'trigger') AND name LIKE %s",
            [f"{self.fts_table}%"],
        )
        present = {row[0] for row in cursor.fetchall()}
        missing = [name for name in (self.fts_table, *self.sqlite_triggers) if name not in present]
        if not missing:
            return False
        listed = ", ".join(self.columns.values())
        cursor.execute(
            f"CREATE VIRTUAL TABLE IF NOT EXISTS {self.fts_table} USING fts5("
            f"{listed}, content='{self.table}', content_rowid='id', tokenize='trigram')"
        )
        for statement in self.sqlite_triggers.values():
            cursor.execute(statement)
        cursor.execute(f"INSERT INTO {self.fts_table}({self.fts_table}) VALUES ('rebuild')")
        return True

    def drop_sqlite_index(self, cursor):
        for name in self.sqlite_triggers:
            cursor.execute(f"DROP TRIGGER IF EXISTS {name}")
        cursor.execute(f"DROP TABLE IF EXISTS {self.fts_table}")

    # Migrations

    def create_indexes(self, schema_editor):
        connection_ = schema_editor.connection
        with connection_.cursor() as cursor:
            if connection_.vendor == "postgresql":
                for statement in self.postgres_index_statements():
                    cursor.execute(statement)
            elif connection_.vendor == "sqlite":
                self.ensure_sqlite_index(cursor)

    def drop_indexes(self, schema_editor):
        connection_ = schema_editor.connection
        with connection_.cursor() as cursor:
            if connection_.vendor == "postgresql":
                for statement in self.postgres_drop_statements():
                    cursor.execute(statement)
            elif connection_.vendor == "sqlite":
                self.drop_sqlite_index(cursor)

    def heal_after_migrate(self, using, app_label, migration_name):
        """``post_migrate``: recreate the SQLite triggers if a later migration remade the table."""
        from django.db import connections
        from django.db.migrations.recorder import MigrationRecorder

        connection_ = connections[using]
        if connection_.vendor != "sqlite":
            return
        if (app_label, migration_name) not in MigrationRecorder(connection_).applied_migrations():
            return
        with connection_.cursor() as cursor:
            self.ensure_sqlite_index(cursor)
