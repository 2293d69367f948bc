"""The SQLite backend's write lock (``core/sqlite``): writers queue on a file lock the kernel hands over.

Each test opens connections of the backend on a database file of its own (whichever database the
suite runs on), with SQLite's busy timeout at 0: a writer that reached SQLite's lock while another
held it would fail at once with "database is locked", so every write that lands here waited on the
file lock, not in SQLite's busy handler.
"""

import copy
import fcntl
import json
import os
import subprocess
import sys
import textwrap
import threading
import time
from contextlib import contextmanager

import pytest
from django.conf import settings
from django.db import OperationalError, connections, transaction

from core.sqlite.base import DatabaseWrapper, lock_path, writes


@pytest.fixture
def database(tmp_path, django_db_blocker):
    """Settings of an SQLite file (WAL, IMMEDIATE, as configured) with SQLite's busy wait off."""
    settings_dict = copy.deepcopy(connections.settings["default"])
    settings_dict.update(
        ENGINE="core.sqlite",
        NAME=str(tmp_path / "crm.db"),
        OPTIONS={
            "timeout": 0,
            "write_lock_timeout": 30,
            "transaction_mode": "IMMEDIATE",
            "init_command": "PRAGMA journal_mode=WAL; PRAGMA synchronous=FULL;",
        },
    )
    with django_db_blocker.unblock():
        first = DatabaseWrapper(settings_dict, "writelock")
        with first.cursor() as cursor:
            cursor.execute("CREATE TABLE entry (id INTEGER PRIMARY KEY, writer TEXT NOT NULL)")
        first.close()
        yield settings_dict


@contextmanager
def opened(settings_dict, **options):
    connection = DatabaseWrapper({**settings_dict, "OPTIONS": {**settings_dict["OPTIONS"], **options}}, "writelock")
    try:
        yield connection
    finally:
        connection.close()


@contextmanager
def atomic(connection):
    """``transaction.atomic()`` on a connection outside ``django.db.connections``."""
    connection.ensure_connection()
    connection.set_autocommit(False, force_begin_transaction_with_broken_autocommit=True)
    try:
        yield
    except BaseException:
        connection.rollback()
        raise
    else:
        connection.commit()
    finally:
        connection.set_autocommit(True)


def insert(connection, writer):
    with connection.cursor() as cursor:
        cursor.execute("INSERT INTO entry (writer) VALUES (%s)", [writer])


def writers(connection):
    with connection.cursor() as cursor:
        cursor.execute("SELECT writer FROM entry ORDER BY id")
        return [row[0] for row in cursor.fetchall()]


def lock_is_free(settings_dict):
    """Whether the write lock's file can be locked at once (by anyone: a connection, a process)."""
    fd = os.open(lock_path(settings_dict["NAME"]), os.O_RDONLY | os.O_CREAT)
    try:
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except BlockingIOError:
        return False
    finally:
        os.close(fd)
    return True


def waiting_for_the_lock(settings_dict):
    """Whether a writer waits for the write lock now: the kernel lists its ``flock()`` on the lock's file as
    blocked (``->``) in /proc/locks."""
    inode = str(os.stat(lock_path(settings_dict["NAME"])).st_ino)
    with open("/proc/locks") as locks:
        return any(line.split()[1] == "->" and line.split()[6].rpartition(":")[2] == inode for line in locks)


def test_the_settings_serve_sqlite_through_the_backend_with_the_lock():
    if connections["default"].vendor != "sqlite":
        pytest.skip("the suite runs on PostgreSQL")
    assert settings.DATABASES["default"]["ENGINE"] == "core.sqlite"
    assert isinstance(connections["default"], DatabaseWrapper)


@pytest.mark.parametrize(
    ("sql", "expected"),
    [
        ('SELECT "id" FROM "customers_customer" WHERE "id" = %s', False),
        ("  select 1", False),
        ("EXPLAIN QUERY PLAN SELECT 1", False),
        ("PRAGMA foreign_keys", False),
        ('SAVEPOINT "s1"', False),
        ('RELEASE SAVEPOINT "s1"', False),
        ("COMMIT", False),
        ("WITH n AS (SELECT 1) SELECT * FROM n", False),
        ('INSERT INTO "entry" ("writer") VALUES (%s)', True),
        ('UPDATE "entry" SET "writer" = %s', True),
        ('DELETE FROM "entry"', True),
        ("REPLACE INTO entry VALUES (1, 'a')", True),
        ("CREATE TABLE t (id INTEGER)", True),
        ("WITH gone AS (SELECT 1) DELETE FROM entry", True),
        ("BEGIN IMMEDIATE", True),
        ("VACUUM", True),
    ],
)
def test_statements_that_may_write_are_told_from_reads(sql, expected):
    assert writes(sql) is expected


@pytest.mark.parametrize(
    ("name", "expected"),
    [
        ("/srv/crm/crm.db", "/srv/crm/crm.db-writelock"),
        ("file:/srv/crm/my%20crm.db?mode=rwc", "/srv/crm/my crm.db-writelock"),
        (":memory:", None),
        ("file:memorydb_default?mode=memory&cache=shared", None),
    ],
)
def test_the_lock_file_lies_beside_the_database_and_an_in_memory_one_has_none(name, expected):
    assert lock_path(name) == expected


def test_concurrent_writers_all_land_without_sqlites_busy_wait(database):
    threads, writes_each, failures = 6, 40, []

    def write(number):
        with opened(database) as connection:
            try:
                for item in range(writes_each):
                    if item % 2:
                        insert(connection, f"{number}-{item}")  # autocommit: one statement
                    else:
                        with atomic(connection):
                            insert(connection, f"{number}-{item}")
                            insert(connection, f"{number}-{item}b")
            except Exception as exc:  # noqa: BLE001 - reported below
                failures.append(repr(exc))

    workers = [threading.Thread(target=write, args=(number,)) for number in range(threads)]
    # One connection stays open throughout, as a server's do: the first to open a WAL database
    # that none has open rebuilds its shared index, and with SQLite's busy wait at 0 the others
    # opening at that moment would be refused for that, which is not the write lock's to queue.
    with opened(database) as keeper:
        keeper.ensure_connection()
        for worker in workers:
            worker.start()
        for worker in workers:
            worker.join()
        stored = writers(keeper)

    assert failures == []
    expected = [f"{n}-{i}" for n in range(threads) for i in range(writes_each)]
    expected += [f"{n}-{i}b" for n in range(threads) for i in range(0, writes_each, 2)]
    assert sorted(stored) == sorted(expected)


WRITER_PROCESS = textwrap.dedent(
    """
    import json, sys
    import django
    django.setup()
    from core.sqlite.base import DatabaseWrapper
    settings_dict, name, count = json.loads(sys.argv[1]), sys.argv[2], int(sys.argv[3])
    connection = DatabaseWrapper(settings_dict, "writelock")
    connection.ensure_connection()
    print("ready", flush=True)
    sys.stdin.readline()  # all start together
    for number in range(count):
        connection.set_autocommit(False, force_begin_transaction_with_broken_autocommit=True)
        with connection.cursor() as cursor:
            cursor.execute("INSERT INTO entry (writer) VALUES (%s)", [f"{name}-{number}"])
        connection.commit()
        connection.set_autocommit(True)
    connection.close()
    """
)


def test_writers_in_separate_processes_queue_on_the_lock(database):
    processes, count = 4, 150
    runs = [
        subprocess.Popen(
            [sys.executable, "-c", WRITER_PROCESS, json.dumps(database, default=str), f"p{n}", str(count)],
            cwd=settings.BASE_DIR,
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
        for n in range(processes)
    ]
    try:
        assert [run.stdout.readline().strip() for run in runs] == ["ready"] * processes
        for run in runs:
            run.stdin.write("go\n")
            run.stdin.flush()
        results = [(run.wait(timeout=120), run.stderr.read()) for run in runs]
    finally:
        for run in runs:
            if run.poll() is None:
                run.kill()
    assert [code for code, _ in results] == [0] * processes, [err for _, err in results]
    with opened(database) as connection:
        assert sorted(writers(connection)) == sorted(f"p{n}-{i}" for n in range(processes) for i in range(count))


def test_a_transaction_holds_the_lock_until_commit_rollback_or_close(database):
    with opened(database) as connection:
        with atomic(connection):
            insert(connection, "a")
            assert not lock_is_free(database)
        assert lock_is_free(database)

        with pytest.raises(RuntimeError), atomic(connection):
            insert(connection, "b")
            raise RuntimeError
        assert lock_is_free(database)

        connection.set_autocommit(False, force_begin_transaction_with_broken_autocommit=True)
        insert(connection, "c")
        assert not lock_is_free(database)
        connection.close()
        assert lock_is_free(database)
    with opened(database) as connection:
        assert writers(connection) == ["a"]


def test_an_autocommit_write_holds_the_lock_for_its_statement_only(database):
    with opened(database) as connection:
        insert(connection, "a")
        assert connection.write_lock is not None and not connection.write_lock.held
        assert lock_is_free(database)


def test_reads_outside_a_transaction_do_not_wait_for_the_writer(database):
    with opened(database) as writer, opened(database, write_lock_timeout=0) as reader:
        insert(writer, "before")
        with atomic(writer):
            insert(writer, "during")
            # The reader would fail at once if it waited for the lock (its timeout is 0).
            assert writers(reader) == ["before"]
        assert writers(reader) == ["before", "during"]


def test_a_writer_that_waits_past_its_timeout_gets_database_is_locked_and_the_lock_stays_usable(database):
    with opened(database) as holder, opened(database, write_lock_timeout=0.2) as waiter:
        with atomic(holder):
            insert(holder, "held")
            started = time.monotonic()
            with pytest.raises(OperationalError, match="database is locked"), atomic(waiter):
                insert(waiter, "late")
            assert 0.2 <= time.monotonic() - started < 5
            with pytest.raises(OperationalError, match="database is locked"):
                insert(waiter, "late too")  # an autocommit write waits the same way
        # The abandoned waits let go of the lock they got once the holder committed.
        deadline = time.monotonic() + 5
        while not lock_is_free(database) and time.monotonic() < deadline:
            time.sleep(0.01)
        assert lock_is_free(database)
        insert(waiter, "after")
        assert writers(waiter) == ["held", "after"]


def test_a_waiting_writer_is_woken_when_the_lock_is_let_go(database):
    order = []
    with opened(database) as holder:
        with atomic(holder):
            insert(holder, "first")

            def wait_and_write():
                with opened(database) as waiter, atomic(waiter):
                    insert(waiter, "second")
                    order.append("second")

            thread = threading.Thread(target=wait_and_write)
            thread.start()
            # It waits on the lock meanwhile (SQLite's busy wait is off: it would have failed).
            deadline = time.monotonic() + 60
            while not waiting_for_the_lock(database):
                assert thread.is_alive() and time.monotonic() < deadline, "the second writer never waited"
                time.sleep(0.01)
            order.append("first")
        thread.join(timeout=60)
        assert not thread.is_alive()
        assert order == ["first", "second"]
        assert writers(holder) == ["first", "second"]


def test_atomic_takes_the_lock_on_a_file_database_and_none_in_memory(database, db):
    with opened(database) as connection:
        with atomic(connection):
            assert connection.write_lock.held
        assert not connection.write_lock.held
    if connections["default"].vendor == "sqlite":
        # The suite's own database is in memory: nothing to lock beside, nothing taken.
        with transaction.atomic():
            assert connections["default"].write_lock is None
