"""The bulk paths that record changesets: admin actions, admin and command-line imports, reassigning."""

import io

import pytest
from django.contrib.auth.models import Group
from django.core.management import call_command
from django.test import Client
from django.urls import reverse

from core.changesets import Changeset, undo
from core.models import Tag
from customers.models import Customer
from customers.services import reassign_customers
from tests.core.admin.helpers import import_rows, preview_then_confirm
from tests.factories import CustomerFactory, ManagerFactory, UserFactory

pytestmark = pytest.mark.django_db

CUSTOMERS = "/admin/customers/customer/"


@pytest.fixture
def manager():
    return ManagerFactory(is_staff=True)


@pytest.fixture
def client(manager):
    client = Client()
    client.force_login(manager)
    return client


def act(client, action, records, **extra):
    data = {"action": action, "_selected_action": [r.pk for r in records], "index": "0", "post": "yes", **extra}
    return preview_then_confirm(client, CUSTOMERS, data, follow=True)


def test_a_status_action_is_one_changeset_and_undoes(client, manager):
    customers = CustomerFactory.create_batch(3, status=Customer.Status.ACTIVE)
    answer = act(client, "set_status_inactive", customers)
    changeset = Changeset.objects.get()
    assert changeset.kind == "action" and changeset.user == manager
    assert changeset.source == {"action": "set_status_inactive", "model": "customers.customer"}
    assert changeset.counts == {"customers.customer": {"created": 0, "updated": 3, "deleted": 0}}
    assert reverse("admin:core_changeset_change", args=[changeset.pk]) in answer.content.decode()
    undo(changeset, manager)
    assert set(Customer.objects.values_list("status", flat=True)) == {Customer.Status.ACTIVE}


def test_adding_a_tag_in_bulk_is_one_changeset(client, manager):
    tag = Tag.objects.create(name="VIP")
    customers = CustomerFactory.create_batch(2)
    act(client, "add_tag", customers, confirm="yes", tag=tag.pk)
    changeset = Changeset.objects.get()
    assert changeset.counts["customers.customer"]["updated"] == 2
    undo(changeset, manager)
    assert all(c.tags == [] and not c.tag_set.exists() for c in Customer.objects.all())


def test_the_delete_action_is_one_changeset_and_undo_brings_the_records_back(client, manager):
    customers = CustomerFactory.create_batch(2)
    act(client, "delete_selected", customers)
    assert not Customer.objects.exists()
    changeset = Changeset.objects.get()
    assert changeset.counts["customers.customer"]["deleted"] == 2
    undo(changeset, manager)
    assert set(Customer.objects.values_list("pk", flat=True)) == {c.pk for c in customers}


def test_an_action_that_changes_nothing_leaves_no_changeset(client):
    customers = CustomerFactory.create_batch(2, status=Customer.Status.INACTIVE)
    act(client, "set_status_inactive", customers)
    assert not Changeset.objects.exists()


def test_the_reassign_action_is_a_reassign_changeset(client, manager):
    rep = UserFactory(username="rep")
    rep.groups.add(Group.objects.get(name="Sales rep"))
    customers = CustomerFactory.create_batch(2, owner=manager)
    act(client, "reassign_customers", customers, confirm="yes", owner=rep.pk)
    changeset = Changeset.objects.get()
    assert changeset.kind == "reassign" and changeset.counts["customers.customer"]["updated"] == 2
    undo(changeset, manager)
    assert set(Customer.objects.values_list("owner", flat=True)) == {manager.pk}


def test_the_reassign_service_records_one_changeset(manager):
    other = ManagerFactory()
    CustomerFactory.create_batch(2, owner=manager)
    reassign_customers(Customer.objects.all(), other)
    changeset = Changeset.objects.get()
    assert changeset.kind == "reassign" and changeset.source == {"owner_id": other.pk}


def test_an_admin_import_is_one_changeset_with_the_file_and_its_hash(client, manager):
    existing = CustomerFactory(email="old@example.com", name="Old")
    answer = import_rows(client, CUSTOMERS, [["name", "email"], ["新客户", "new@example.com"]])
    assert answer.status_code in (200, 302)
    changeset = Changeset.objects.get()
    assert changeset.kind == "import" and changeset.label == "import.csv"
    assert changeset.source["file"] == "import.csv" and len(changeset.source["sha256"]) == 64
    assert changeset.counts["customers.customer"]["created"] == 1
    undo(changeset, manager)
    assert list(Customer.objects.values_list("pk", flat=True)) == [existing.pk]


def test_the_import_command_prints_the_changeset_and_its_dry_run_writes_none(tmp_path):
    path = tmp_path / "customers.csv"
    path.write_text("name,email\n王芳,wf@example.com\n", encoding="utf-8")
    out = io.StringIO()
    call_command("import_customers", str(path), "--dry-run", stdout=out, stderr=io.StringIO())
    assert "Would create 1" in out.getvalue() and not Changeset.objects.exists()
    out = io.StringIO()
    call_command("import_customers", str(path), stdout=out, stderr=io.StringIO())
    changeset = Changeset.objects.get()
    assert f"Changeset {changeset.pk}" in out.getvalue()
    assert changeset.source["file"] == "customers.csv" and changeset.user is None
    undo(changeset, None)
    assert not Customer.objects.exists()
