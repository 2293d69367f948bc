"""Counting a list without counting a million rows: the one rule of the API's lists and the admin's."""

from django.core.exceptions import EmptyResultSet
from django.db import connections

# Lists count exactly up to this many rows; above it they say "more than" the cap.
COUNT_CAP = 10_000


def capped_count(queryset, cap=COUNT_CAP):
    """``(count, capped)``: the rows of ``queryset`` up to ``cap``, and whether there are more.

    Counts ``SELECT id ... LIMIT cap + 1``: at most ``cap + 1`` index entries are read,
    and annotations (a customer's summary figures) are not computed just to be counted.

    A queryset that filters nothing (a whole table, as the first page of a list shows it)
    is counted in one statement that first asks for its row ``cap + 1`` and counts the
    rows only if there is none: skipping rows costs a fraction of feeding each one to
    a count (on SQLite, a fifth at 100,000 customers), and a table of no more than
    ``cap`` rows is counted by the database's own count of a table. A filtered queryset
    is counted as above: there, when fewer than ``cap + 1`` rows match, the statement
    would look for them twice (and a locking one, to lock no more rows than before).
    Both give the same answer (tests/core/test_paging.py).
    """
    rows = queryset.order_by().values("pk")
    query = rows.query
    if not query.where and query.combinator is None and not query.select_for_update:
        counted = _probe_then_count(rows, cap)
        if counted is not None:
            return min(counted, cap), counted > cap
    counted = rows[: cap + 1].count()
    return min(counted, cap), counted > cap


def _probe_then_count(rows, cap):
    """The rows of ``rows`` (a ``values("pk")`` queryset), or ``cap + 1`` if there are more than ``cap``."""
    try:
        sql, params = rows.query.get_compiler(using=rows.db).as_sql()
    except EmptyResultSet:
        return None  # (the ORM answers 0 without asking the database)
    cap = int(cap)
    statement = (
        f"SELECT COALESCE((SELECT {cap + 1} FROM ({sql}) probe LIMIT 1 OFFSET {cap}), "
        f"(SELECT COUNT(*) FROM ({sql}) counted))"
    )
    with connections[rows.db].cursor() as cursor:
        cursor.execute(statement, [*params, *params])
        return cursor.fetchone()[0]
