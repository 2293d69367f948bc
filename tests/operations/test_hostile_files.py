"""Hostile files given to the operator commands: a clear one-line error, and not one change to the data."""

import hashlib
import json
import sqlite3
from io import StringIO

import pytest
from django.conf import settings
from django.core.management import CommandError, call_command
from django.db import connection
from django.db.migrations.recorder import MigrationRecorder

from customers.models import Customer
from interactions.models import Interaction
from opportunities.models import Opportunity
from tests.factories import CustomerFactory, OpportunityFactory
from tests.operations.test_import_legacy import make_legacy

ON_POSTGRES = settings.DATABASES["default"]["ENGINE"] == "django.db.backends.postgresql"


def counts():
    return (Customer.objects.count(), Interaction.objects.count(), Opportunity.objects.count())


def refused(command, *args):
    """The one-line message of ``command`` refusing its input; the data is as it was."""
    before = counts()
    with pytest.raises(CommandError) as info:
        call_command(command, *map(str, args), stdout=StringIO(), stderr=StringIO())
    assert counts() == before
    message = str(info.value)
    assert message and "\n" not in message
    return message


def digest(path):
    return hashlib.sha256(path.read_bytes()).hexdigest()


@pytest.mark.django_db
class TestImportLegacy:
    @pytest.fixture(autouse=True)
    def existing(self):
        OpportunityFactory(customer=CustomerFactory(name="Here before"))

    def test_a_truncated_file_is_refused_before_anything_is_read(self, tmp_path):
        path = make_legacy(tmp_path / "crm.db")
        db = sqlite3.connect(path)
        db.executemany("INSERT INTO customers (id, name) VALUES (?, ?)", [(n, "x" * 500) for n in range(100, 2000)])
        db.commit()
        db.close()
        path.write_bytes(path.read_bytes()[: path.stat().st_size * 2 // 3])
        message = refused("import_legacy", path)
        assert "crm.db" in message and "damaged" in message

    def test_a_database_of_this_application_is_refused_pointing_at_restore(self, tmp_path):
        # A backup given to the wrong command: its 80 tables were listed, and no word of what the file was.
        path = tmp_path / "crm.backup"
        db = sqlite3.connect(path)
        db.executescript(
            "CREATE TABLE django_migrations (id INTEGER, app TEXT, name TEXT, applied TEXT);"
            + "".join(f"CREATE TABLE app_table_{n} (id INTEGER);" for n in range(80))
            + "CREATE TABLE customers_customer (id INTEGER, name TEXT);"
        )
        db.close()
        assert refused("import_legacy", path) == (
            f"{path} is a database of this application (a backup?), not the original CRM's: bring a backup "
            "back with 'manage.py restore'."
        )

    def test_triggers_and_views_of_the_file_run_against_nothing(self, tmp_path):
        path = make_legacy(tmp_path / "crm.db")
        db = sqlite3.connect(path)
        db.executescript(
            """
            CREATE TABLE log (what TEXT);
            CREATE TRIGGER on_read AFTER UPDATE ON customers BEGIN INSERT INTO log VALUES ('fired'); END;
            CREATE TRIGGER on_insert AFTER INSERT ON customers BEGIN DELETE FROM interactions; END;
            CREATE VIEW everyone AS SELECT * FROM customers;
            """
        )
        db.close()
        before, customers = digest(path), Customer.objects.count()
        call_command("import_legacy", str(path), stdout=StringIO(), stderr=StringIO())
        assert Customer.objects.count() > customers and Interaction.objects.exists()
        assert digest(path) == before
        assert sorted(p.name for p in tmp_path.iterdir()) == ["crm.db"]  # no journal, WAL or lock file

    def test_a_customers_view_is_not_a_customers_table(self, tmp_path):
        path = tmp_path / "crm.db"
        db = sqlite3.connect(path)
        db.executescript(
            "CREATE TABLE people (id INTEGER PRIMARY KEY, name TEXT);"
            "CREATE VIEW customers AS WITH RECURSIVE n(id) AS (SELECT 1 UNION ALL SELECT id + 1 FROM n) "
            "SELECT id, 'loop' AS name FROM n;"
        )
        db.close()
        assert "has no customers table" in refused("import_legacy", path)

    def test_a_huge_value_is_refused_and_nothing_is_imported(self, tmp_path):
        path = make_legacy(tmp_path / "crm.db")
        db = sqlite3.connect(path)
        db.execute("INSERT INTO interactions VALUES (900, 1, 'call', ?, NULL)", ("n" * (2 * 1024 * 1024),))
        db.commit()
        db.close()
        message = refused("import_legacy", path)
        assert "values larger than" in message and "Nothing was imported" in message

    @pytest.mark.parametrize("content", [b"\x00\xffgarbage" * 1000, b"SQLite format 3\x00" + b"\xff" * 4000])
    def test_binary_garbage(self, tmp_path, content):
        path = tmp_path / "crm.db"
        path.write_bytes(content)
        assert "crm.db" in refused("import_legacy", path)


@pytest.mark.django_db(transaction=True)
class TestRestore:
    @pytest.fixture
    def backup(self, tmp_path):
        CustomerFactory(name="In the backup")
        path = tmp_path / "good.backup"
        call_command("backup", str(path), stdout=StringIO())
        CustomerFactory(name="After the backup")
        return path

    def test_a_truncated_backup(self, backup):
        backup.write_bytes(backup.read_bytes()[: backup.stat().st_size // 2])
        refused("restore", backup, "--yes")
        assert Customer.objects.filter(name="After the backup").exists()

    @pytest.mark.skipif(ON_POSTGRES, reason="an SQLite backup's schema; PostgreSQL restores a dump")
    def test_a_backup_carrying_a_trigger_is_not_restored(self, backup):
        db = sqlite3.connect(backup)
        db.execute("CREATE TRIGGER promote AFTER UPDATE ON auth_user BEGIN UPDATE auth_user SET is_superuser = 1; END")
        db.commit()
        db.close()
        message = refused("restore", backup, "--yes")
        assert "trigger promote" in message
        assert Customer.objects.filter(name="After the backup").exists()

    @pytest.mark.skipif(ON_POSTGRES, reason="an SQLite backup's page size; PostgreSQL restores a dump")
    def test_a_backup_of_another_page_size_is_refused_clearly(self, backup, tmp_path):
        # A database made by an older SQLite (1,024-byte pages) or converted by hand: SQLite's backup API
        # cannot copy it into a database in WAL mode (or in memory), and failed with a traceback.
        other = tmp_path / "small-pages.backup"
        source, copy = sqlite3.connect(backup), sqlite3.connect(other)
        source.backup(copy)
        source.close()
        copy.execute("PRAGMA page_size = 1024")
        copy.execute("VACUUM")
        copy.close()
        message = refused("restore", other, "--yes")
        assert "has pages of 1024 bytes and this database of 4096" in message
        assert Customer.objects.filter(name="After the backup").exists()

    def test_a_backup_of_a_newer_version_is_not_restored(self, tmp_path):
        # Made by a version with a migration this code lacks: restored, the application would run on a schema
        # it does not know, and no migrate of this code brings it back.
        recorder = MigrationRecorder(connection)
        recorder.record_applied("customers", "9999_from_a_newer_version")
        path = tmp_path / "newer.backup"
        try:
            call_command("backup", str(path), stdout=StringIO())
        finally:
            recorder.record_unapplied("customers", "9999_from_a_newer_version")
        CustomerFactory(name="After the backup")
        message = refused("restore", path, "--yes")
        assert "newer version" in message and "customers.9999_from_a_newer_version" in message
        assert Customer.objects.filter(name="After the backup").exists()
        assert not recorder.migration_qs.filter(name="9999_from_a_newer_version").exists()

    @pytest.mark.skipif(ON_POSTGRES, reason="an SQLite backup's schema; PostgreSQL restores a dump")
    def test_another_applications_database_is_not_restored(self, tmp_path):
        CustomerFactory(name="Here")
        path = tmp_path / "other.backup"
        db = sqlite3.connect(path)
        db.executescript("CREATE TABLE django_migrations (id INTEGER); CREATE TABLE notes (body TEXT);")
        db.close()
        assert "is not a backup of this application" in refused("restore", path, "--yes")
        assert Customer.objects.filter(name="Here").exists()


@pytest.mark.django_db
class TestLoaddata:
    CUSTOMER = {
        "model": "customers.customer",
        "pk": 900,
        "fields": {"name": "Loaded", "created_at": "2024-01-01T00:00:00Z", "updated_at": "2024-01-01T00:00:00Z"},
    }

    @pytest.mark.parametrize(
        "content",
        [
            b"\xff\xfe not utf-8 \x00\x01",
            json.dumps([CUSTOMER])[:60].encode(),
            json.dumps([CUSTOMER, {"model": "customers.customer", "pk": 901, "fields": {"nosuch": 1}}]).encode(),
            json.dumps([CUSTOMER, {"model": "customers.customer", "pk": 902, "fields": {"name": None}}]).encode(),
        ],
        ids=["not-utf-8", "truncated", "unknown-field", "null-name"],
    )
    def test_a_fixture_that_cannot_load_whole_loads_nothing(self, tmp_path, content):
        CustomerFactory(name="Here before")
        path = tmp_path / "fixture.json"
        path.write_bytes(content)
        assert "Nothing was loaded" in refused("loaddata", path)
        assert not Customer.objects.filter(pk=900).exists()


@pytest.mark.skipif(not ON_POSTGRES, reason="a PostgreSQL dump")
@pytest.mark.django_db(transaction=True)
def test_a_postgres_dump_carrying_a_trigger_is_not_restored(tmp_path):
    CustomerFactory(name="In the backup")
    with connection.cursor() as cursor:
        cursor.execute(
            "CREATE FUNCTION promote() RETURNS trigger LANGUAGE plpgsql AS "
            "$$ BEGIN UPDATE auth_user SET is_superuser = true; RETURN NEW; END $$"
        )
        cursor.execute(
            "CREATE TRIGGER promote AFTER INSERT ON customers_customer FOR EACH ROW EXECUTE FUNCTION promote()"
        )
    path = tmp_path / "hostile.dump"
    try:
        call_command("backup", str(path), stdout=StringIO())
    finally:
        with connection.cursor() as cursor:
            cursor.execute("DROP TRIGGER promote ON customers_customer")
            cursor.execute("DROP FUNCTION promote()")
    CustomerFactory(name="After the backup")
    message = refused("restore", path, "--yes")
    assert "TRIGGER" in message and "FUNCTION" in message
    assert Customer.objects.filter(name="After the backup").exists()
