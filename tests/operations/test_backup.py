"""``manage.py backup`` / ``restore``: consistent snapshots under concurrent writes, exact round trips.

The round trips run the real commands in subprocesses against a database of
their own (an SQLite file, or a scratch PostgreSQL database) while a writer
thread keeps inserting, as a serving application would.
"""

import os
import shutil
import sqlite3
import subprocess
import sys
import threading
import time
import uuid
from io import StringIO
from pathlib import Path

import pytest
from django.conf import settings
from django.core.management import CommandError, call_command
from django.db import connection

from customers.models import Customer
from tests.factories import CustomerFactory
from tests.migrated import OWN_SQLITE_FILE

BASE_DIR = Path(settings.BASE_DIR)
TABLES = ("customers_customer", "interactions_interaction", "opportunities_opportunity", "opportunities_stagechange")
INTERACTIONS_PER_CUSTOMER = 2
ON_POSTGRES = settings.DATABASES["default"]["ENGINE"] == "django.db.backends.postgresql"


def manage(database_url, *args):
    env = {**os.environ, "DATABASE_URL": database_url, "DJANGO_SETTINGS_MODULE": "crm_site.settings.test"}
    return subprocess.run(
        [sys.executable, "manage.py", *args],
        cwd=BASE_DIR,
        env=env,
        capture_output=True,
        text=True,
        timeout=300,
        stdin=subprocess.DEVNULL,
    )


def check(result):
    assert result.returncode == 0, result.stderr
    return result.stdout


class Writer(threading.Thread):
    """Inserts a customer with its interactions in one transaction, over and over, until stopped."""

    def __init__(self, connect, placeholder):
        super().__init__(daemon=True)
        self.connect, self.p = connect, placeholder
        self.stop = threading.Event()
        self.committed = 0
        self.error = None

    def run(self):
        try:
            db = self.connect()
            cursor = db.cursor()
            p = self.p
            while not self.stop.is_set():
                cursor.execute(
                    f"INSERT INTO customers_customer (name, email, status, created_at, updated_at) "
                    f"VALUES ({p}, {p}, 'active', CURRENT_TIMESTAMP, CURRENT_TIMESTAMP)",
                    (f"写入者 {self.committed}", f"w{self.committed}-{uuid.uuid4().hex[:6]}@example.com"),
                )
                cursor.execute("SELECT max(id) FROM customers_customer")
                customer_id = cursor.fetchone()[0]
                for n in range(INTERACTIONS_PER_CUSTOMER):
                    cursor.execute(
                        f"INSERT INTO interactions_interaction (customer_id, interaction_type, notes, occurred_at, created_at) "
                        f"VALUES ({p}, 'call', {p}, CURRENT_TIMESTAMP, CURRENT_TIMESTAMP)",
                        (customer_id, f"note {n}"),
                    )
                db.commit()
                self.committed += 1
            db.close()
        except Exception as exc:  # surfaced by the test
            self.error = exc

    def wait_for(self, count, timeout=60):
        deadline = time.monotonic() + timeout
        while self.committed < count and self.error is None:
            assert time.monotonic() < deadline, "the writer made no progress"
            time.sleep(0.01)


def assert_snapshot_consistent(rows):
    """Every customer complete with its interactions: the data of one moment, no half transaction."""
    customers = rows["customers_customer"]
    interactions = rows["interactions_interaction"]
    ids = sorted(row["id"] for row in customers)
    assert ids == list(range(ids[0], ids[0] + len(ids)))  # no gaps: a prefix of the writer's commits
    per_customer = {}
    for row in interactions:
        per_customer[row["customer_id"]] = per_customer.get(row["customer_id"], 0) + 1
    assert per_customer == dict.fromkeys(ids, INTERACTIONS_PER_CUSTOMER)
    return len(ids)


def table_rows(db):
    """Every row of the application's tables, as dicts, by id."""
    result = {}
    for table in TABLES:
        cursor = db.execute(f"SELECT * FROM {table} ORDER BY id")
        names = [column[0] for column in cursor.description]
        result[table] = [dict(zip(names, row, strict=True)) for row in cursor.fetchall()]
    return result


def sqlite_rows(path):
    db = sqlite3.connect(path)
    try:
        return table_rows(db)
    finally:
        db.close()


def seed_sqlite(path, customers):
    db = sqlite3.connect(path)
    for n in range(customers):
        db.execute(
            "INSERT INTO customers_customer (name, status, created_at, updated_at) VALUES (?, 'active', CURRENT_TIMESTAMP, CURRENT_TIMESTAMP)",
            (f"种子 {n}",),
        )
        customer_id = db.execute("SELECT max(id) FROM customers_customer").fetchone()[0]
        for _ in range(INTERACTIONS_PER_CUSTOMER):
            db.execute(
                "INSERT INTO interactions_interaction (customer_id, interaction_type, notes, occurred_at, created_at) "
                "VALUES (?, 'email', ?, CURRENT_TIMESTAMP, CURRENT_TIMESTAMP)",
                (customer_id, "x" * 500),
            )
    db.commit()
    db.close()


@OWN_SQLITE_FILE
class TestSqliteRoundTrip:
    def test_backup_under_writes_is_a_snapshot_and_restore_brings_it_back(self, tmp_path, migrated_sqlite):
        live = tmp_path / "crm.db"
        url = migrated_sqlite(live)
        seed_sqlite(live, 3000)

        def connect():
            db = sqlite3.connect(live, timeout=30, isolation_level="DEFERRED")
            db.execute("PRAGMA journal_mode=WAL")
            return db

        writer = Writer(connect, "?")
        writer.start()
        writer.wait_for(20)
        before = writer.committed
        out = check(manage(url, "backup", str(tmp_path / "snap.sqlite3")))
        after = writer.committed
        writer.wait_for(after + 20)
        writer.stop.set()
        writer.join()
        assert writer.error is None
        assert "Backed up the sqlite database" in out

        backed_up = sqlite_rows(tmp_path / "snap.sqlite3")
        count = assert_snapshot_consistent(backed_up)
        assert 3000 + before <= count <= 3000 + after + 1
        live_rows = sqlite_rows(live)
        assert len(live_rows["customers_customer"]) > count  # writes went on after the backup

        refused = manage(url, "restore", str(tmp_path / "snap.sqlite3"))
        assert refused.returncode == 1
        assert "pass --yes to confirm" in refused.stderr
        assert sqlite_rows(live) == live_rows

        check(manage(url, "restore", str(tmp_path / "snap.sqlite3"), "--yes"))
        assert sqlite_rows(live) == backed_up
        # The restored database works for the application as it was.
        check(manage(url, "migrate", "--check"))


def _pg_settings():
    return settings.DATABASES["default"]


@pytest.fixture
def scratch_postgres():
    """A fresh PostgreSQL database beside the test database, dropped afterwards."""
    import psycopg

    conf = _pg_settings()
    name = f"{connection.settings_dict['NAME']}_backup_{uuid.uuid4().hex[:8]}"
    params = {
        "host": conf["HOST"] or None,
        "port": conf["PORT"] or None,
        "user": conf["USER"] or None,
        "password": conf["PASSWORD"] or None,
    }
    params = {k: v for k, v in params.items() if v}
    admin = psycopg.connect(dbname="postgres", autocommit=True, **params)
    admin.execute(f'CREATE DATABASE "{name}"')
    user = f"{conf['USER']}{':' + conf['PASSWORD'] if conf['PASSWORD'] else ''}@" if conf["USER"] else ""
    url = f"postgres://{user}{conf['HOST'] or '127.0.0.1'}:{conf['PORT'] or 5432}/{name}"
    try:
        yield url, lambda: psycopg.connect(dbname=name, **params)
    finally:
        admin.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
        admin.close()


def pg_rows(connect):
    with connect() as db:
        return table_rows(db)


@pytest.mark.skipif(not ON_POSTGRES, reason="runs when the suite runs on PostgreSQL")
@pytest.mark.skipif(shutil.which("pg_dump") is None, reason="pg_dump is not installed")
class TestPostgresRoundTrip:
    def test_backup_under_writes_is_a_snapshot_and_restore_is_exact(self, tmp_path, scratch_postgres):
        url, connect = scratch_postgres
        check(manage(url, "migrate", "--noinput"))
        writer = Writer(connect, "%s")
        writer.start()
        writer.wait_for(50)
        before = writer.committed
        check(manage(url, "backup", str(tmp_path / "snap.dump")))
        after = writer.committed
        writer.wait_for(after + 20)
        writer.stop.set()
        writer.join()
        assert writer.error is None

        check(manage(url, "restore", str(tmp_path / "snap.dump"), "--yes"))
        restored = pg_rows(connect)
        count = assert_snapshot_consistent(restored)
        assert before <= count <= after + 1

        # Exactly what was backed up: change everything, restore, compare.
        with connect() as db:
            db.execute("DELETE FROM interactions_interaction WHERE customer_id % 2 = 0")
            db.execute("UPDATE customers_customer SET name = 'changed'")
            db.execute(
                "INSERT INTO customers_customer (name, status, created_at, updated_at) VALUES ('new', 'lead', now(), now())"
            )
        check(manage(url, "restore", str(tmp_path / "snap.dump"), "--yes"))
        assert pg_rows(connect) == restored
        # Sequences come back too: the next row continues after the restored ones.
        with connect() as db:
            new_id = db.execute(
                "INSERT INTO customers_customer (name, status, created_at, updated_at) VALUES ('next', 'lead', now(), now()) RETURNING id"
            ).fetchone()[0]
        assert new_id > max(row["id"] for row in restored["customers_customer"])


@pytest.mark.django_db(transaction=True)
class TestCommandErrors:
    def test_backup_refuses_to_overwrite(self, tmp_path):
        target = tmp_path / "exists.backup"
        target.write_text("keep me")
        with pytest.raises(CommandError, match="exists already; choose another name or pass --force"):
            call_command("backup", str(target), stdout=StringIO())
        assert target.read_text() == "keep me"

    @pytest.mark.parametrize("force", [False, True])
    def test_backup_to_a_folder_is_refused_clearly(self, tmp_path, force):
        folder = tmp_path / "backups"
        folder.mkdir()
        (folder / "old.backup").write_text("keep me")
        args = ["--force"] if force else []
        with pytest.raises(CommandError, match="backups is a folder; give the name of the file to write"):
            call_command("backup", str(folder), *args, stdout=StringIO())
        assert [p.name for p in tmp_path.iterdir()] == ["backups"]
        assert (folder / "old.backup").read_text() == "keep me"

    @pytest.mark.parametrize("target", ["crm.db", "crm.db-wal"])
    def test_backup_onto_the_database_itself_is_refused(self, tmp_path, target):
        # With --force, the copy was renamed over the live database file (or its WAL): every process
        # that had it open went on writing to the replaced file, and what it wrote after was lost.
        live = tmp_path / "crm.db"
        sqlite3.connect(live).execute("CREATE TABLE kept (x)").connection.close()
        result = manage(f"sqlite:///{live}", "backup", str(tmp_path / target), "--force")
        assert result.returncode == 1
        assert f"{tmp_path / target} is a file of the database itself" in result.stderr
        assert sqlite3.connect(live).execute("SELECT name FROM sqlite_master").fetchall() == [("kept",)]

    def test_backup_is_written_whatever_an_interrupted_one_left_behind(self, tmp_path):
        # A backup killed midway leaves its temporary file; the next one, to the same name, failed with a
        # traceback ("file is not a database") when it wrote its copy into that file.
        CustomerFactory(name="Backed up")
        target = tmp_path / "crm.backup"
        (tmp_path / "crm.backup.partial").write_bytes(b"half of an earlier backup" * 100)
        call_command("backup", str(target), stdout=StringIO())
        assert target.read_bytes().startswith(b"PGDMP" if ON_POSTGRES else b"SQLite format 3\x00")
        assert sorted(path.name for path in tmp_path.iterdir()) == ["crm.backup", "crm.backup.partial"]
        # Every customer's personal data: readable by the operator's account only.
        assert target.stat().st_mode & 0o777 == 0o600

    def test_restore_from_the_database_itself_is_refused(self, tmp_path):
        # Opened as a backup (immutable), the live file is read without its WAL: "restoring" it put back the
        # database as of its last checkpoint, losing what the server wrote since.
        live = tmp_path / "crm.db"
        sqlite3.connect(live).execute("CREATE TABLE kept (x)").connection.close()
        result = manage(f"sqlite:///{live}", "restore", str(live), "--yes")
        assert result.returncode == 1
        assert f"{live} is a file of the database itself" in result.stderr
        assert sqlite3.connect(live).execute("SELECT name FROM sqlite_master").fetchall() == [("kept",)]

    def test_backup_into_missing_folder(self, tmp_path):
        with pytest.raises(CommandError, match="does not exist"):
            call_command("backup", str(tmp_path / "nope" / "x.backup"), stdout=StringIO())

    def test_restore_refuses_without_yes(self, tmp_path):
        CustomerFactory()
        backup = tmp_path / "b.backup"
        call_command("backup", str(backup), stdout=StringIO())
        with pytest.raises(CommandError, match="pass --yes to confirm"):
            call_command("restore", str(backup), stdout=StringIO())
        assert Customer.objects.count() == 1

    @pytest.mark.parametrize("content", [b"", b"not a backup at all", b"SQLite format 3\x00" + b"\x00" * 100])
    def test_restore_refuses_files_that_are_not_backups(self, tmp_path, content):
        path = tmp_path / "junk.backup"
        path.write_bytes(content)
        with pytest.raises(CommandError):
            call_command("restore", str(path), "--yes", stdout=StringIO())

    @pytest.mark.django_db
    def test_refuses_to_run_inside_a_transaction(self, tmp_path):
        with pytest.raises(CommandError, match="cannot run inside a transaction"):
            call_command("backup", str(tmp_path / "x.backup"), stdout=StringIO())

    def test_restore_missing_file(self, tmp_path):
        with pytest.raises(CommandError, match="does not exist"):
            call_command("restore", str(tmp_path / "missing"), "--yes", stdout=StringIO())

    def test_restore_refuses_a_backup_of_the_other_engine(self, tmp_path):
        path = tmp_path / "other.backup"
        path.write_bytes(b"SQLite format 3\x00" if ON_POSTGRES else b"PGDMP\x01\x0e")
        with pytest.raises(CommandError, match="backup, but this database is"):
            call_command("restore", str(path), "--yes", stdout=StringIO())

    @pytest.mark.skipif(not ON_POSTGRES, reason="pg_dump is only used on PostgreSQL")
    def test_missing_pg_dump_is_a_clear_error(self, tmp_path, monkeypatch):
        monkeypatch.setenv("PATH", str(tmp_path))
        with pytest.raises(CommandError, match="pg_dump is not on PATH"):
            call_command("backup", str(tmp_path / "x.dump"), stdout=StringIO())
        assert not (tmp_path / "x.dump").exists()
