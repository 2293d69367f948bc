"""Each task carries its customer's name (tasks/customer_name.py), kept by the database on every write
path, so that the task list sorts by customer through an index; the order is the one the join gives."""

import pytest
from django.db import connection

from customers.models import Customer
from customers.services import merge_customers
from tasks import customer_name
from tasks.models import Task
from tests.core.admin.helpers import import_rows
from tests.factories import CustomerFactory, TaskFactory
from tests.tasks.conftest import member

pytestmark = pytest.mark.django_db

TASKS = "/admin/tasks/task/"
# The "customer" column of the list (title, customer, ...): ?o=2 sorts by it.
BY_CUSTOMER = {"o": "2"}


def copies():
    """Each task's copy beside its customer's name, as stored."""
    return sorted(Task.objects.values_list("pk", "customer_name", "customer__name"))


def assert_kept():
    for pk, copy, name in copies():
        assert copy == name, pk


def sorted_by_customer(client):
    return [task.pk for task in client.get(TASKS, BY_CUSTOMER).context["cl"].result_list]


def by_the_join():
    return list(Task.objects.order_by("customer__name", "done_at", "due_at", "id").values_list("pk", flat=True))


@pytest.fixture
def tasks():
    names = ["Mia", "Carl", "Zoe", "Ann"]
    customers = [CustomerFactory(name=name) for name in names]
    return [TaskFactory(customer=customer, title=f"Call {customer.name}") for customer in customers for _ in range(2)]


def test_a_new_task_carries_its_customers_name(tasks):
    assert_kept()
    assert Task.objects.get(pk=tasks[0].pk).customer_name == "Mia"


def test_the_list_sorted_by_customer_is_the_order_of_the_join(admin_client, tasks):
    """The twin of the sort through the join: the same rows in the same order."""
    tasks[0].done_at = tasks[0].created_at
    tasks[0].save()
    assert sorted_by_customer(admin_client) == by_the_join()
    assert [Task.objects.get(pk=pk).customer.name for pk in sorted_by_customer(admin_client)][::2] == [
        "Ann",
        "Carl",
        "Mia",
        "Zoe",
    ]


def test_a_renamed_customer_moves_its_tasks_in_the_sort(admin_client, tasks):
    zoe = Customer.objects.get(name="Zoe")
    zoe.name = "Aaron"
    zoe.save()
    assert_kept()
    first = admin_client.get(TASKS, BY_CUSTOMER).context["cl"].result_list[0]
    assert first.customer.name == "Aaron"
    assert sorted_by_customer(admin_client) == by_the_join()


def test_bulk_renames_and_moves_keep_the_names(tasks):
    Customer.objects.filter(name__in=["Mia", "Carl"]).update(name="Bulk")
    assert_kept()
    ann = Customer.objects.get(name="Ann")
    Task.objects.filter(pk=tasks[0].pk).update(customer=ann)
    assert Task.objects.get(pk=tasks[0].pk).customer_name == "Ann"
    # A write that names the copy cannot make it wrong.
    Task.objects.filter(pk=tasks[1].pk).update(customer_name="Wrong")
    task = Task.objects.get(pk=tasks[2].pk)
    task.customer_name = "Wrong too"
    task.save()
    assert_kept()


def test_a_merge_moves_the_tasks_under_the_survivors_name(tasks):
    manager = member("boss", "Sales manager")
    survivor = Customer.objects.get(name="Ann")
    merge_customers(survivor, [Customer.objects.get(name="Zoe")], user=manager)
    assert Task.objects.filter(customer_name="Ann").count() == 4
    assert_kept()


def test_imported_tasks_carry_their_customers_name(admin_client):
    customer = CustomerFactory(name="Imported Customer", email="imported@example.com")
    import_rows(admin_client, TASKS, [["customer", "title"], [str(customer.pk), "Imported call"]])
    task = Task.objects.get(title="Imported call")
    assert task.customer_name == "Imported Customer"


def test_the_copy_is_not_the_tasks_history_nor_its_event(tasks):
    from core.models import Event

    task = Task.objects.get(pk=tasks[0].pk)
    assert not hasattr(task.history.first(), "customer_name")
    task_events = Event.objects.filter(type__startswith="task.")
    before = task_events.count()
    customer = task.customer
    customer.name = "Renamed"
    customer.save()
    # The rename is the customer's change: no task history entry nor task event.
    assert task.history.count() == 1
    assert task_events.count() == before


def test_triggers_a_table_remake_dropped_are_made_again_after_migrate(tasks):
    """SQLite drops a table's triggers when a migration remakes it; post_migrate makes them again."""
    customer_name.uninstall(connection)
    Customer.objects.filter(name="Ann").update(name="Stale")
    assert Task.objects.filter(customer_name="Ann").exists()
    customer_name.heal_after_migrate("default", "0005_task_customer_name")
    if connection.vendor == "sqlite":
        assert_kept()
        Customer.objects.filter(name="Stale").update(name="Fresh")
        assert_kept()
    else:
        # PostgreSQL keeps its triggers through migrations: nothing to heal (the test removed them).
        customer_name.install(connection)
        assert_kept()


def test_a_task_written_in_sql_without_the_copy_carries_the_name(tasks):
    columns = (
        "title, kind, due_is_date_only, notes, priority, outcome, created_at, updated_at, assignee_id, customer_id"
    )
    with connection.cursor() as cursor:
        cursor.execute(
            f"INSERT INTO tasks_task ({columns}) SELECT {columns} FROM tasks_task WHERE id = %s", [tasks[0].pk]
        )
    assert Task.objects.filter(customer_name="Mia").count() == 3
    assert_kept()
