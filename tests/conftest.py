import importlib
import uuid

import pytest
from django.apps import apps
from django.contrib.auth.models import Group
from django.test import Client
from django.utils import translation
from knox.models import get_token_model
from rest_framework.test import APIClient

from tests.factories import ManagerFactory, StaffFactory, member

DATABASE_FIXTURES = {
    "db",
    "transactional_db",
    "django_db_reset_sequences",
    "django_db_serialized_rollback",
    "live_server",
}
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
        if Group.objects.filter(name__in=STAFF_GROUPS.GROUPS).count() < len(STAFF_GROUPS.GROUPS):
            STAFF_GROUPS.create_groups(apps, None)
            TASK_GRANTS.grant(apps, None)
            COMPANY_GRANTS.grant(apps, None)
            TAG_GRANTS.grant(apps, None)


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
