"""Whether another session of this test database waits for a lock (PostgreSQL), for tests of concurrent writes."""

from django.db import connection


def waiting_for_a_lock():
    """Whether a session connected to the test database waits for a lock now."""
    with connection.cursor() as cursor:
        # Inside a transaction PostgreSQL answers pg_stat_activity from the snapshot of its first reading:
        # cleared, each call sees the sessions as they are now.
        cursor.execute("SELECT pg_stat_clear_snapshot()")
        cursor.execute(
            "SELECT count(*) FROM pg_stat_activity WHERE datname = current_database() AND wait_event_type = 'Lock'"
        )
        return cursor.fetchone()[0] > 0
