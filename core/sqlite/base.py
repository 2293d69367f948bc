"""Django's SQLite backend, with every write transaction queued on the database's write lock.

A connection takes the lock (``writelock.py``) before SQLite's write lock and holds it for as
long as SQLite's transaction is open:

- an ``atomic()`` block, from before its ``BEGIN`` (``IMMEDIATE`` in our settings: the block may
  write) to its ``COMMIT`` or ``ROLLBACK``;
- a write statement run outside any transaction (autocommit), for that statement;
- any other transaction that a write statement begins (``set_autocommit(False)``), to its end.

Reads outside a transaction never take it: in WAL mode they run beside the writer. The lock's
wait is bounded by the connection's ``timeout`` option, as SQLite's busy timeout is, and ends in
the same ``OperationalError("database is locked")``. An in-memory database has no file to lock
beside, and only this process to share it with: it takes no lock.
"""

import re
from functools import lru_cache
from urllib.parse import parse_qs, unquote, urlsplit

from django.db.backends.sqlite3 import base as sqlite3

from .operations import DatabaseOperations
from .writelock import WriteLock, WriteLockTimeout

# Statements that never write (or that only end or mark the transaction a write began).
_NOT_WRITES = ("SELECT", "EXPLAIN", "PRAGMA", "SAVEPOINT", "RELEASE", "ROLLBACK", "COMMIT", "END")
_WRITE_IN_WITH = re.compile(r"\b(?:INSERT|UPDATE|DELETE|REPLACE)\b", re.IGNORECASE)


def writes(sql):
    """Whether ``sql`` may write (a statement that is not known to be a read is taken for a write)."""
    start = sql.lstrip()[:9].upper()
    if start.startswith(_NOT_WRITES):
        return False
    if start.startswith("WITH"):
        return _WRITE_IN_WITH.search(sql) is not None
    return True


def lock_path(name):
    """The write lock's file for the database ``name`` (a path or a ``file:`` URI), or None in memory."""
    name = str(name)
    if name.startswith("file:"):
        parts = urlsplit(name)
        if "memory" in parse_qs(parts.query).get("mode", ()):
            return None
        name = unquote(parts.path)
    if not name or name == ":memory:":
        return None
    return f"{name}-writelock"


# Statements longer than this (long IN lists) are converted each time rather than kept.
QMARK_CACHED_LENGTH = 4096


@lru_cache(maxsize=1024)
def qmark_query(query):
    """``query`` in SQLite's "qmark" style, as Django's cursor converts it from the "format" style."""
    return sqlite3.FORMAT_QMARK_REGEX.sub("?", query).replace("%%", "%")


class SQLiteCursorWrapper(sqlite3.SQLiteCursorWrapper):
    """Django's cursor, taking the write lock around a write that no transaction covers yet.

    A statement's conversion to the "qmark" style is kept for the next run of the same
    text (the compiled reads every request makes, the ORM's statements of a common shape):
    the regular expression cost as much as a short read.
    """

    write_lock = None

    def convert_query(self, query, *, param_names=None):
        if param_names is None and len(query) <= QMARK_CACHED_LENGTH:
            return qmark_query(query)
        return super().convert_query(query, param_names=param_names)

    def execute(self, query, params=None):
        if self.write_lock is None:
            return super().execute(query, params)
        return self._under_lock(super().execute, query, params)

    def executemany(self, query, param_list):
        if self.write_lock is None:
            return super().executemany(query, param_list)
        return self._under_lock(super().executemany, query, param_list)

    def _under_lock(self, run, query, params):
        lock = self.write_lock
        if not lock.held and not self.connection.in_transaction and writes(query):
            _acquire(lock)
        try:
            return run(query, params)
        finally:
            # SQLite's transaction has ended (an autocommitted statement, a COMMIT run as SQL, a
            # rollback by SQLite itself after an error): so has the need for the lock.
            if lock.held and not self.connection.in_transaction:
                lock.release()


def _acquire(lock):
    try:
        lock.acquire()
    except WriteLockTimeout as exc:
        raise sqlite3.Database.OperationalError(f"database is locked ({exc})") from exc


class DatabaseWrapper(sqlite3.DatabaseWrapper):
    ops_class = DatabaseOperations
    write_lock = None
    write_lock_timeout = None

    def get_connection_params(self):
        params = super().get_connection_params()
        # OPTIONS["write_lock_timeout"]: the longest wait for the write lock, in seconds; by default
        # the busy timeout (``timeout``, whose default in sqlite3.connect() is 5 s).
        self.write_lock_timeout = params.pop("write_lock_timeout", None)
        if self.write_lock_timeout is None:
            self.write_lock_timeout = params.get("timeout", 5.0)
        return params

    def get_new_connection(self, conn_params):
        connection = super().get_new_connection(conn_params)
        path = lock_path(conn_params["database"])
        self.write_lock = None if path is None else WriteLock(path, self.write_lock_timeout)
        return connection

    def create_cursor(self, name=None):
        cursor = self.connection.cursor(factory=SQLiteCursorWrapper)
        cursor.write_lock = self.write_lock
        return cursor

    def _start_transaction_under_autocommit(self):
        # atomic()'s BEGIN: the lock first, then SQLite's (IMMEDIATE takes it at once).
        lock = self.write_lock
        if lock is None:
            return super()._start_transaction_under_autocommit()
        with self.wrap_database_errors:
            _acquire(lock)
        try:
            super()._start_transaction_under_autocommit()
        finally:
            self._release_if_done()

    def _commit(self):
        try:
            super()._commit()
        finally:
            self._release_if_done()

    def _rollback(self):
        try:
            super()._rollback()
        finally:
            self._release_if_done()

    def _close(self):
        try:
            super()._close()
        finally:
            if self.write_lock is not None:
                self.write_lock.release()

    def _release_if_done(self):
        lock = self.write_lock
        if lock is not None and lock.held and not (self.connection is not None and self.connection.in_transaction):
            lock.release()
