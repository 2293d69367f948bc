"""The SQLite backend's statement conversion (``core.sqlite.base``): Django's own, kept per statement text."""

import sqlite3

import pytest
from django.db.backends.sqlite3.base import SQLiteCursorWrapper as DjangoCursor

from core.sqlite.base import QMARK_CACHED_LENGTH, SQLiteCursorWrapper, qmark_query

STATEMENTS = [
    "SELECT 1",
    "SELECT * FROM t WHERE a = %s",
    "SELECT * FROM t WHERE a = %s AND b IN (%s, %s)",
    "SELECT '100%%' FROM t WHERE a LIKE %s ESCAPE '\\'",
    "SELECT %%s, %s, %%%s FROM t",
    "SELECT '%%%%' || %s",
    "UPDATE t SET a = %s WHERE b = %s",
    "SELECT %s%s%s",
    "SELECT 'a%s'",
    'SELECT "%%s" FROM "t"',
    "SELECT 1 -- %s",
    "SELECT * FROM t WHERE a = %(name)s",
    "SELECT %s FROM t WHERE x IN (" + ", ".join(["%s"] * 1500) + ")",
    "",
]


@pytest.fixture
def cursors():
    connection = sqlite3.connect(":memory:")
    yield connection.cursor(factory=SQLiteCursorWrapper), connection.cursor(factory=DjangoCursor)
    connection.close()


@pytest.mark.parametrize("statement", STATEMENTS)
def test_statements_are_converted_as_django_converts_them(cursors, statement):
    ours, django = cursors
    for _ in range(2):  # the first conversion and the one kept
        assert ours.convert_query(statement) == django.convert_query(statement)
    names = ["name", "other"]
    assert _outcome(ours, statement, names) == _outcome(django, statement, names)


def _outcome(cursor, statement, names):
    try:
        return cursor.convert_query(statement, param_names=names)
    except (TypeError, KeyError, ValueError) as exc:
        return type(exc), str(exc)


def test_a_long_statement_is_not_kept(cursors):
    ours, django = cursors
    statement = "SELECT %s" + " " * QMARK_CACHED_LENGTH
    assert ours.convert_query(statement) == django.convert_query(statement)
    before = qmark_query.cache_info().currsize
    ours.convert_query(statement + "x")
    assert qmark_query.cache_info().currsize == before
