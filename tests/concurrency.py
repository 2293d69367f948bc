"""Transactions on several connections at once (PostgreSQL), made to take their locks in a set order.

Each step starts once the one before it is where the test needs it (holding its rows, or waiting for a lock),
never after a pause: on a loaded machine a pause can end before a step got there, and the order flips. A step
that does not get there within ``PATIENCE`` seconds fails the test rather than letting it go on in another order.

Whatever a test does or fails at, its threads are ended before the next one starts (``stop_started``, from an
autouse fixture of ``tests/conftest.py``): a transaction left open would hold its locks into the next test, and
a step let go late would write into it.
"""

import contextlib
import threading
import time

from django.db import connection, connections, transaction

from core.rowlocks import lock_keys

# How long a step may take to get where the test needs it, or to end once let go: a busy machine can be slow.
PATIENCE = 60


def in_turn(first, *others, atomic=True):
    """Run ``first()`` in a transaction held open, then each of ``others`` in its own transaction on its
    own connection, each started once the one before it waits for a lock; then let ``first`` commit.
    Returns the errors of all.

    Each of ``others`` must wait for a lock (held by ``first`` or by a step before it): one that ends, or runs
    on for ``PATIENCE`` seconds, without waiting fails the test. Steps that fail stop the run: their errors
    are returned.

    ``atomic=False`` runs ``others`` outside a transaction of the helper's: each is a request, or opens
    its own, and commits (or rolls back) when it ends, not when the helper's would."""
    holder, steps = Held(first), []
    holder.start()
    try:
        assert holder.written.wait(PATIENCE), "the first step neither wrote nor failed"
        for number, step in enumerate(others, 2):
            if any(thread.error is not None for thread in (holder, *steps)):
                break
            steps.append(Thread(_in_a_transaction(step) if atomic else step))
            steps[-1].start()
            assert waits(steps[-1]) or steps[-1].error is not None, f"step {number} ended without waiting for a lock"
    finally:
        holder.release.set()
        ended(holder, *steps)
    return [thread.error for thread in (holder, *steps) if thread.error is not None]


def _in_a_transaction(step):
    def atomically():
        with transaction.atomic():
            return step()

    return atomically


def while_deleting(delete, record, *others):
    """``in_turn`` with ``delete(record)`` under way first (the record locked as a delete's request or page locks
    it, then deleted, not committed), while each of ``others`` starts: a request or a command, each in its own
    transactions. Returns the errors of all."""
    model = type(record)
    return in_turn(lambda: delete(model._base_manager.select_for_update().get(pk=record.pk)), *others, atomic=False)


def waits(thread):
    """Whether ``thread`` (a ``Thread``) comes to wait for a lock another session holds: True once it waits,
    False if it ends first. Fails the test if it does neither within ``PATIENCE`` seconds."""
    deadline = time.monotonic() + PATIENCE
    while time.monotonic() < deadline:
        if thread.session is not None and _blocked(thread.session):
            return True
        if not thread.is_alive():
            return False
        time.sleep(0.01)
    raise AssertionError(f"neither waited for a lock nor ended within {PATIENCE} s")


def _blocked(session):
    with connection.cursor() as cursor:
        cursor.execute("SELECT cardinality(pg_blocking_pids(%s)) > 0", [session])
        return cursor.fetchone()[0]


def a_session_waits():
    """Whether a session connected to the test database comes to wait for a lock within ``PATIENCE`` seconds."""
    deadline = time.monotonic() + PATIENCE
    while time.monotonic() < deadline:
        if sessions_waiting_for_a_lock():
            return True
        time.sleep(0.01)
    return False


def sessions_waiting_for_a_lock():
    """How many sessions connected to the test database wait for a lock now."""
    with connection.cursor() as cursor:
        # Inside a transaction PostgreSQL answers pg_stat_activity from the snapshot of its first reading:
        # cleared, each call sees the sessions as they are now.
        cursor.execute("SELECT pg_stat_clear_snapshot()")
        cursor.execute(
            "SELECT count(*) FROM pg_stat_activity WHERE datname = current_database() AND wait_event_type = 'Lock'"
        )
        return cursor.fetchone()[0]


def deadlocked(first, second, write):
    """Run ``write`` (which locks ``first``, then ``second``) while another transaction locks ``second``,
    then ``first`` once ``write`` waits for it: a deadlock, in which PostgreSQL aborts ``write``. Returns (what
    ``write`` returned or raised, the other transaction's errors).

    PostgreSQL looks for a deadlock in a waiting session once it has waited deadlock_timeout (1 s), and aborts
    the session that finds one. The other transaction sets its own deadlock_timeout far longer (30 s), and asks
    for ``first`` within moments of ``write`` waiting: ``write`` is the one to look, and to be aborted, however
    late a busy machine would run the other's look."""
    writer = Thread(write)

    def other():
        with transaction.atomic():
            with connection.cursor() as cursor:
                # A superuser's setting (the test database's user is one), for this transaction only.
                cursor.execute("SET LOCAL deadlock_timeout = '30s'")
            type(second)._base_manager.select_for_update().get(pk=second.pk)
            writer.start()
            assert waits(writer), "the write never waited for the other transaction"
            type(first)._base_manager.select_for_update().get(pk=first.pk)

    others = Thread(other)
    others.start()
    ended(others)
    if writer.ident is not None:  # started by the other transaction, once it held ``second``
        ended(writer)
    return writer.result if writer.error is None else writer.error, [others.error] if others.error else []


def ended(*threads):
    """Wait for ``threads`` to end; fails the test if one runs on for ``PATIENCE`` seconds."""
    for thread in threads:
        thread.join(PATIENCE)
    assert not any(thread.is_alive() for thread in threads), "still running"


# The threads started by the test under way, for ``stop_started``.
_started = []


def stop_started():
    """End every thread the test started that is still running, however the test ended: a ``Held`` is let go,
    and the session of one that does not end within ``PATIENCE`` seconds is ended by the server (its transaction
    rolled back, its locks freed). The threads still running after that (stuck outside the database)."""
    threads = [thread for thread in _started if thread.is_alive()]
    _started.clear()
    for thread in threads:
        if isinstance(thread, Held):
            thread.abandoned = True
            thread.release.set()
    deadline = time.monotonic() + PATIENCE
    for thread in threads:
        thread.join(max(0, deadline - time.monotonic()))
    stuck = [thread for thread in threads if thread.is_alive()]
    sessions = [thread.session for thread in stuck if thread.session is not None]
    if sessions:
        # On a connection of its own: the test's may be in a transaction that failed.
        other = connection.copy()
        try:
            with other.cursor() as cursor:
                cursor.execute("SELECT pg_terminate_backend(pid) FROM unnest(%s) AS pid", [sessions])
        finally:
            other.close()
        for thread in stuck:
            thread.join(PATIENCE)
    return [thread for thread in stuck if thread.is_alive()]


class Thread(threading.Thread):
    """``work()`` on a connection of its own (this thread's); its result or error kept, and its session's
    process id (``session``, on PostgreSQL) for ``waits``. Ended with the test (``stop_started``)."""

    def __init__(self, work):
        super().__init__(daemon=True)
        self.work, self.result, self.error, self.session = work, None, None, None

    def start(self):
        _started.append(self)
        super().start()

    def run(self):
        try:
            if connection.vendor == "postgresql":
                connection.ensure_connection()
                self.session = connection.connection.info.backend_pid
            self.result = self.do()
        except Exception as exc:  # reported by the test
            self.error = exc
        finally:
            connections.close_all()

    def do(self):
        return self.work()

    def answer(self):
        ended(self)
        assert self.error is None, repr(self.error)
        return self.result


class Held(Thread):
    """Someone else's write (``work()``: a request, an admin post) in a transaction held open until ``commit()``:
    caught between its write and its commit, with its rows locked."""

    def __init__(self, work):
        super().__init__(work)
        self.written, self.release = threading.Event(), threading.Event()
        # Let go by ``stop_started`` rather than the test: rolled back.
        self.abandoned = False

    def run(self):
        super().run()
        self.written.set()  # also when ``work()`` failed: its error is kept by now

    def do(self):
        with transaction.atomic():
            result = self.work()
            self.written.set()
            # Let go by the test, or rolled back once it ended without doing so (``stop_started``).
            assert self.release.wait(10 * PATIENCE), "held open for too long"
            transaction.set_rollback(self.abandoned)
        return result

    def __enter__(self):
        self.start()
        if not self.written.wait(PATIENCE) or self.error is not None:
            self.abandoned = True  # rolled back, if it ever wrote
            self.__exit__()  # not called by ``with`` when this fails
            raise AssertionError(repr(self.error) if self.error else "the held write neither wrote nor failed")
        return self

    def __exit__(self, *exc):
        self.release.set()
        self.join(PATIENCE)

    def commit(self):
        self.release.set()
        return self.answer()


def pointed_at(*records):
    """``Held``: another transaction holding ``records`` ``FOR KEY SHARE``, in the order given, as a write pointing a
    new record at each does (its foreign key's check), until ``commit()``."""
    return Held(lambda: lock_keys(*(type(record)._base_manager.filter(pk=record.pk) for record in records)))


@contextlib.contextmanager
def no_waiting_on_locks():
    """This connection's statements give up on a lock held by another at once (after 2 s): a write that would
    wait for someone else's rows fails rather than waits."""
    with connection.cursor() as cursor:
        cursor.execute("SET lock_timeout = '2s'")
    try:
        yield
    finally:
        with connection.cursor() as cursor:
            cursor.execute("SET lock_timeout = 0")
