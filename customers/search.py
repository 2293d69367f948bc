"""Customer search: ``?search=`` matches name, company or email, case-insensitively.

The result is always exactly Django's ``icontains`` on those three columns
(``tests/customers/test_search.py`` holds the two side by side). Indexes make
it fast without changing it:

- PostgreSQL: trigram GIN indexes on ``UPPER(column)``, the expression that
  ``icontains`` compiles to (``UPPER(col::text) LIKE UPPER(%term%)``), created by
  migration ``customers.0004_search_indexes``.
- SQLite: an FTS5 table with the trigram tokenizer over the three columns, kept
  in step with the table by triggers. For terms of three characters or more it
  narrows the candidates to the few rows that contain the term; ``icontains``
  then checks them, so that FTS5's Unicode case folding (wider than SQLite's
  ASCII-only ``LIKE``) never adds a row. Shorter terms use ``LIKE`` alone.
"""

from django.db import connection
from django.db.models import Q
from django.db.models.expressions import RawSQL

FTS_TABLE = "customers_customer_search"
SEARCH_COLUMNS = ("name", "company", "email")
TRIGRAM_MIN_LENGTH = 3


def icontains_q(term):
    return Q(name__icontains=term) | Q(company__icontains=term) | Q(email__icontains=term)


def search_customers(queryset, term):
    condition = icontains_q(term)
    if connection.vendor == "sqlite" and len(term) >= TRIGRAM_MIN_LENGTH:
        phrase = '"' + term.replace('"', '""') + '"'
        candidates = RawSQL(f"SELECT rowid FROM {FTS_TABLE} WHERE {FTS_TABLE} MATCH %s", [phrase])
        condition &= Q(pk__in=candidates)
    return queryset.filter(condition)


# --------------------------------------------------------------------------- PostgreSQL


def postgres_index_statements():
    statements = ["CREATE EXTENSION IF NOT EXISTS pg_trgm"]
    for column in SEARCH_COLUMNS:
        statements.append(
            f"CREATE INDEX IF NOT EXISTS customer_{column}_trgm_idx "
            f"ON customers_customer USING gin (UPPER({column}) gin_trgm_ops)"
        )
    return statements


def postgres_drop_statements():
    return [f"DROP INDEX IF EXISTS customer_{column}_trgm_idx" for column in SEARCH_COLUMNS]


# --------------------------------------------------------------------------- SQLite

_COLUMNS = ", ".join(SEARCH_COLUMNS)
_NEW = ", ".join(f"new.{column}" for column in SEARCH_COLUMNS)
_OLD = ", ".join(f"old.{column}" for column in SEARCH_COLUMNS)

SQLITE_TRIGGERS = {
    f"{FTS_TABLE}_ai": (
        f"CREATE TRIGGER IF NOT EXISTS {FTS_TABLE}_ai AFTER INSERT ON customers_customer BEGIN "
        f"INSERT INTO {FTS_TABLE}(rowid, {_COLUMNS}) VALUES (new.id, {_NEW}); END"
    ),
    f"{FTS_TABLE}_ad": (
        f"CREATE TRIGGER IF NOT EXISTS {FTS_TABLE}_ad AFTER DELETE ON customers_customer BEGIN "
        f"INSERT INTO {FTS_TABLE}({FTS_TABLE}, rowid, {_COLUMNS}) VALUES ('delete', old.id, {_OLD}); END"
    ),
    f"{FTS_TABLE}_au": (
        f"CREATE TRIGGER IF NOT EXISTS {FTS_TABLE}_au AFTER UPDATE OF {_COLUMNS} ON customers_customer BEGIN "
        f"INSERT INTO {FTS_TABLE}({FTS_TABLE}, rowid, {_COLUMNS}) VALUES ('delete', old.id, {_OLD}); "
        f"INSERT INTO {FTS_TABLE}(rowid, {_COLUMNS}) VALUES (new.id, {_NEW}); END"
    ),
}


def ensure_sqlite_search_index(cursor):
    """Create the FTS5 table and its triggers where missing; rebuild the index if anything was.

    Rebuilding from the table heals the index after a migration that remade
    ``customers_customer`` (SQLite's way of altering a table drops its triggers).
    Returns True when it had to create something.
    """
    cursor.execute(
        "SELECT name FROM sqlite_master WHERE type IN ('table', 'trigger') AND name LIKE %s", [f"{FTS_TABLE}%"]
    )
    present = {row[0] for row in cursor.fetchall()}
    missing = [name for name in (FTS_TABLE, *SQLITE_TRIGGERS) if name not in present]
    if not missing:
        return False
    cursor.execute(
        f"CREATE VIRTUAL TABLE IF NOT EXISTS {FTS_TABLE} USING fts5("
        f"{_COLUMNS}, content='customers_customer', content_rowid='id', tokenize='trigram')"
    )
    for statement in SQLITE_TRIGGERS.values():
        cursor.execute(statement)
    cursor.execute(f"INSERT INTO {FTS_TABLE}({FTS_TABLE}) VALUES ('rebuild')")
    return True


def drop_sqlite_search_index(cursor):
    for name in SQLITE_TRIGGERS:
        cursor.execute(f"DROP TRIGGER IF EXISTS {name}")
    cursor.execute(f"DROP TABLE IF EXISTS {FTS_TABLE}")
