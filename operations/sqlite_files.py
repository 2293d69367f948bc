"""Opening SQLite files that come from elsewhere (a backup to restore, the original CRM's database).

Such a file is untrusted: it may be damaged, truncated or built to do harm. It is
opened so that reading it can change nothing, here or in the file:

- ``immutable=1``: no journal or WAL of its own is replayed, no lock or side file created;
- ``query_only``: no statement may write, so none of its triggers can ever fire;
- ``trusted_schema = OFF``: its views and triggers may call no function with side effects;
- a bound on the size of any value read, so one huge row cannot exhaust memory.
"""

import sqlite3
from pathlib import Path

MAX_VALUE_BYTES = 1024 * 1024


def open_untrusted(path, max_value_bytes=MAX_VALUE_BYTES):
    connection = sqlite3.connect(f"{Path(path).resolve().as_uri()}?mode=ro&immutable=1", uri=True)
    try:
        connection.execute("PRAGMA query_only = ON")
        connection.execute("PRAGMA trusted_schema = OFF")
        if max_value_bytes:
            connection.setlimit(sqlite3.SQLITE_LIMIT_LENGTH, max_value_bytes)
    except sqlite3.Error:
        connection.close()
        raise
    return connection


def integrity_problem(connection):
    """The first complaint of ``PRAGMA integrity_check``, or None when the file is sound."""
    result = connection.execute("PRAGMA integrity_check(1)").fetchone()[0]
    return None if result == "ok" else result


def schema_objects(connection, *types):
    """``(type, name, sql)`` of the schema objects of the given types (view, trigger, ...)."""
    marks = ", ".join("?" for _ in types)
    return set(connection.execute(f"SELECT type, name, sql FROM sqlite_master WHERE type IN ({marks})", types))
