"""Two transactions on two connections (PostgreSQL), one made to wait for the other's locks."""

import threading

from django.db import connection, connections, transaction


def second_waits_for_first(first, second):
    """Run ``first()`` in a transaction held open until ``second()``, in its own transaction on another
    connection, waits for one of its locks (or for a few seconds, if it never does), then let it commit.
    Returns the errors of both."""
    done_first, release, errors = threading.Event(), threading.Event(), []

    def run(step, before=None, after=None):
        try:
            if before is not None:
                before.wait(10)
            with transaction.atomic():
                step()
                if after is not None:
                    after.set()
                    release.wait(10)
        except Exception as exc:  # pragma: no cover - reported below
            errors.append(exc)
        finally:
            done_first.set()
            connections.close_all()

    threads = [
        threading.Thread(target=run, args=(first, None, done_first)),
        threading.Thread(target=run, args=(second, done_first)),
    ]
    for thread in threads:
        thread.start()
    done_first.wait(10)
    with connection.cursor() as cursor:
        for _ in range(60):
            cursor.execute(
                "SELECT count(*) FROM pg_stat_activity WHERE datname = current_database() AND wait_event_type = 'Lock'"
            )
            if cursor.fetchone()[0]:
                break
            threading.Event().wait(0.05)
    release.set()
    for thread in threads:
        thread.join(20)
    return errors
