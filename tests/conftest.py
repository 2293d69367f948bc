import importlib
import shutil
import uuid

import pytest
from django.apps import apps
from django.contrib.auth.models import Group
from django.db import transaction
from django.db.backends.postgresql.operations import DatabaseOperations
from django.test import Client
from django.utils import translation
from knox.models import get_token_model
from rest_framework.test import APIClient

from tests.concurrency import stop_started
from tests.factories import ManagerFactory, StaffFactory, member
from tests.flush import delete_sql_flush

DATABASE_FIXTURES = {
    "db",
    "transactional_db",
    "django_db_reset_sequences",
    "django_db_serialized_rollback",
    "live_server",
}
# The files that take longest, started first (longest processing time first). With `--dist loadfile` a
# file runs whole on one worker: a long one handed out last keeps that worker busy while the other has
# finished (xdist's own order, by number of tests, is turned off in pytest.ini: it put the schemathesis
# run, two tests and the longest file, last). Measured per file on both databases (docs/testing.md shows how);
# every other file follows in collection order.
LONGEST_FIRST = [
    "tests/live/test_schemathesis.py",
    "tests/core/admin/test_write_matrix.py",
    "tests/live/test_cluster.py",
    "tests/core/api/test_serializer_fields.py",
    "tests/live/test_worker.py",
    "tests/core/admin/test_lists_at_size.py",
    "tests/live/test_long_requests.py",
    "tests/crm_site/test_deployment.py",
    "tests/core/test_access_matrix.py",
    "tests/companies/test_migration.py",
    "tests/core/admin/test_not_found_and_technical.py",
    "tests/live/test_throttling_across_workers.py",
    "tests/operations/test_backup.py",
    "tests/live/test_markup.py",
    "tests/live/test_browser.py",
    "tests/live/test_browser_polish.py",
    "tests/core/api/test_query_counts.py",
    "tests/core/api/test_schema.py",
    "tests/live/test_api_races.py",
    "tests/live/test_reminder_race.py",
    "tests/core/api/test_sqlite_concurrency.py",
    "tests/webhooks/test_delivery.py",
    "tests/live/test_nginx.py",
    "tests/mailgateway/test_me_and_command.py",
]


@pytest.hookimpl(trylast=True)
def pytest_collection_modifyitems(items):
    # After pytest-django's own order (within a file), which a stable sort by file keeps.
    rank = {path: position for position, path in enumerate(LONGEST_FIRST)}
    items.sort(key=lambda item: rank.get(item.nodeid.partition("::")[0], len(rank)))


STAFF_GROUPS = importlib.import_module("customers.migrations.0003_staff_groups")
TASK_GRANTS = importlib.import_module("tasks.migrations.0002_staff_permissions")
TAG_GRANTS = importlib.import_module("core.migrations.0009_tags")
COMPANY_GRANTS = importlib.import_module("companies.migrations.0003_staff_group_permissions")


@pytest.fixture(autouse=True)
def _staff_groups(request, django_db_blocker):
    """The staff groups that a data migration creates, there for every test.

    A transactional test ends by emptying every table, groups included; under
    pytest-xdist such a test may run before others on the same worker.
    """
    uses_database = request.node.get_closest_marker("django_db") or DATABASE_FIXTURES & set(request.fixturenames)
    if not uses_database:
        return
    request.getfixturevalue("django_db_setup")
    with django_db_blocker.unblock():
        ensure_staff_groups()


def ensure_staff_groups():
    if Group.objects.filter(name__in=STAFF_GROUPS.GROUPS).count() < len(STAFF_GROUPS.GROUPS):
        STAFF_GROUPS.create_groups(apps, None)
        TASK_GRANTS.grant(apps, None)
        COMPANY_GRANTS.grant(apps, None)
        TAG_GRANTS.grant(apps, None)


@pytest.fixture(scope="module")
def module_data(django_db_setup, django_db_blocker):
    """Build data once for a whole test module: ``module_data(build)`` runs ``build()`` in a transaction
    that stays open until the module's last test and is then rolled back.

    Each test's own transaction is a savepoint inside it: what a test writes is rolled back after it, and
    the next test finds the data as built. A test gets the data through ``fresh()``, read anew from the
    database, so that no instance a test changed in memory reaches the next one. For a matrix of
    hundreds of tests over one world of records this takes out some 40% of the queries (docs/testing.md).
    """
    atomic = transaction.atomic()
    built = []

    def build_once(build):
        if not built:
            with django_db_blocker.unblock():
                atomic.__enter__()
                try:
                    ensure_staff_groups()
                    built.append(build())
                except BaseException as error:
                    # Nothing of a failed build stays open for the tests after it.
                    atomic.__exit__(type(error), error, error.__traceback__)
                    raise
        return built[0]

    yield build_once
    if built:
        with django_db_blocker.unblock():
            transaction.set_rollback(True)
            atomic.__exit__(None, None, None)


@pytest.fixture(scope="session", autouse=True)
def _delete_sql_flush():
    """Transactional tests on PostgreSQL end by deleting rows rather than truncating tables (tests/flush.py)."""
    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(DatabaseOperations, "sql_flush", delete_sql_flush)
        yield


@pytest.fixture(autouse=True)
def _import_upload_dir(settings, tmp_path_factory):
    """Admin uploads awaiting confirmation go to a folder of the test run, not the machine's temp folder."""
    # One folder per test, created only when a test uploads.
    settings.IMPORT_UPLOAD_DIR = tmp_path_factory.getbasetemp() / "import-uploads" / uuid.uuid4().hex


@pytest.fixture(autouse=True)
def _fresh_custom_field_definitions():
    """Custom field definitions are kept for a moment outside requests (core/customfields.py): a test
    starts without those of the test before, whose rows its rollback removed."""
    from core import customfields

    customfields.forget()


@pytest.fixture(autouse=True)
def _threads_ended(django_db_blocker):
    """The threads a test started (tests/concurrency.py) end with it, before its tables are emptied, whatever it
    failed at: none holds a transaction's locks, or writes, into the test after it."""
    yield
    with django_db_blocker.unblock():
        stuck = stop_started()
    assert not stuck, f"still running, their sessions ended: {stuck}"


@pytest.fixture(autouse=True)
def _default_language():
    """A request in Chinese leaves its language active in the thread: the next test starts without it."""
    yield
    translation.deactivate()


@pytest.fixture
def user(db):
    """A sales manager (not a superuser): sees and changes everything, like the API's first clients."""
    return ManagerFactory()


@pytest.fixture
def staff_user(db):
    return StaffFactory(username="staff")


def browser(user):
    """A Django test client logged in as ``user`` (the admin's pages)."""
    client = Client()
    client.force_login(user)
    return client


# A member of each role who may open the admin (``tests/tasks`` has its own reps, without the admin).
@pytest.fixture
def rep(db):
    return member("rep", "Sales rep", is_staff=True)


@pytest.fixture
def other_rep(db):
    return member("other", "Sales rep", is_staff=True)


@pytest.fixture
def manager(db):
    return member("boss", "Sales manager", is_staff=True)


@pytest.fixture
def token(user):
    _, raw = get_token_model().objects.create(user)
    return raw


@pytest.fixture
def anon_client():
    return APIClient()


@pytest.fixture
def api(token):
    """An API client that sends a real bearer token, as integrations do."""
    client = APIClient()
    client.credentials(HTTP_AUTHORIZATION=f"Bearer {token}")
    return client


@pytest.fixture
def smtp_server(settings):
    """A real SMTP server (aiosmtpd) in this process; the CRM's email backend points at it."""
    from tests.smtp import SMTPServer

    server = SMTPServer().start()
    settings.EMAIL_BACKEND = "django.core.mail.backends.smtp.EmailBackend"
    settings.EMAIL_HOST, settings.EMAIL_PORT, settings.EMAIL_USE_TLS = "127.0.0.1", server.port, False
    try:
        yield server
    finally:
        server.stop()


@pytest.fixture(scope="session")
def migrated_sqlite(tmp_path_factory):
    """``migrated_sqlite(path)`` makes an SQLite file at ``path`` with every migration applied, and
    returns its ``DATABASE_URL``.

    A migrate of a new file takes some 10 s of CPU; this runs it once per test session (and xdist
    worker), the first time it is asked for, and copies the result: the same file a migrate would leave.
    """
    from tests.migrated import migrated_template

    template = []

    def make(path):
        if not template:
            template.append(migrated_template(tmp_path_factory.mktemp("migrated") / "template.db"))
        shutil.copyfile(template[0], path)
        return f"sqlite:///{path}"

    return make
