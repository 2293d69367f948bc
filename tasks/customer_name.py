"""Each task carries its customer's name (``Task.customer_name``), for the task list's sort by customer.

Sorting tasks by the customer's name through the join has no index to follow: PostgreSQL reads the
customers in name order and looks for tasks of each until a page is full, 0.7 to 1 s at a million
customers and 50,000 tasks. With the name on the task, ``task_customer_sort_idx`` serves the sort.

The database keeps the copy, whatever the writer (a save, a bulk ``update()``, a merge's
``update_with_history``, an import, an undo, raw SQL): triggers set a task's copy from its customer
on every insert and update of the task, and copy a customer's new name onto its tasks when it is
renamed. The copy is not the task's data: it is left out of the task's history, events, API and
exports, and a task instance holds what was read, not what the database set at its save.

SQLite remakes a table to alter it, which drops its triggers: ``heal_after_migrate`` creates them
again (and sets every copy again) after a migration that did so.
"""

from django.db import connections

_NAME_OF_CUSTOMER = "(SELECT c.name FROM customers_customer c WHERE c.id = {task}.customer_id)"

POSTGRES_CREATE = [
    f"""
    CREATE OR REPLACE FUNCTION tasks_task_customer_name_set() RETURNS trigger AS $$
    BEGIN
        NEW.customer_name := coalesce({_NAME_OF_CUSTOMER.format(task="NEW")}, '');
        RETURN NEW;
    END $$ LANGUAGE plpgsql
    """,
    """
    CREATE OR REPLACE FUNCTION tasks_task_customer_renamed() RETURNS trigger AS $$
    BEGIN
        UPDATE tasks_task SET customer_name = NEW.name WHERE customer_id = NEW.id;
        RETURN NULL;
    END $$ LANGUAGE plpgsql
    """,
    "CREATE TRIGGER tasks_task_customer_name BEFORE INSERT OR UPDATE ON tasks_task "
    "FOR EACH ROW EXECUTE FUNCTION tasks_task_customer_name_set()",
    "CREATE TRIGGER tasks_task_customer_renamed AFTER UPDATE OF name ON customers_customer "
    "FOR EACH ROW WHEN (OLD.name IS DISTINCT FROM NEW.name) EXECUTE FUNCTION tasks_task_customer_renamed()",
]

POSTGRES_DROP = [
    "DROP TRIGGER IF EXISTS tasks_task_customer_renamed ON customers_customer",
    "DROP TRIGGER IF EXISTS tasks_task_customer_name ON tasks_task",
    "DROP FUNCTION IF EXISTS tasks_task_customer_renamed()",
    "DROP FUNCTION IF EXISTS tasks_task_customer_name_set()",
]

# SQLite has no BEFORE trigger that may change the row: the task is set again after its write when its
# copy differs (a trigger's own UPDATE does not fire triggers again: recursive triggers are off).
_SQLITE_SET = (
    f"UPDATE tasks_task SET customer_name = coalesce({_NAME_OF_CUSTOMER.format(task='new')}, '') WHERE id = new.id; END"
)
SQLITE_TRIGGERS = {
    "tasks_task_customer_name_ai": f"CREATE TRIGGER IF NOT EXISTS tasks_task_customer_name_ai "
    f"AFTER INSERT ON tasks_task BEGIN {_SQLITE_SET}",
    "tasks_task_customer_name_au": "CREATE TRIGGER IF NOT EXISTS tasks_task_customer_name_au "
    "AFTER UPDATE ON tasks_task "
    f"WHEN new.customer_name IS NOT coalesce({_NAME_OF_CUSTOMER.format(task='new')}, '') BEGIN {_SQLITE_SET}",
    "tasks_task_customer_renamed": "CREATE TRIGGER IF NOT EXISTS tasks_task_customer_renamed "
    "AFTER UPDATE OF name ON customers_customer WHEN old.name IS NOT new.name "
    "BEGIN UPDATE tasks_task SET customer_name = new.name WHERE customer_id = new.id; END",
}

_CURRENT = f"coalesce({_NAME_OF_CUSTOMER.format(task='tasks_task')}, '')"
# Every task's copy set again where it differs.
FILL = {
    "postgresql": [f"UPDATE tasks_task SET customer_name = {_CURRENT} WHERE customer_name IS DISTINCT FROM {_CURRENT}"],
    "sqlite": [f"UPDATE tasks_task SET customer_name = {_CURRENT} WHERE customer_name IS NOT {_CURRENT}"],
}
CREATE = {"postgresql": POSTGRES_CREATE, "sqlite": list(SQLITE_TRIGGERS.values())}
DROP = {"postgresql": POSTGRES_DROP, "sqlite": [f"DROP TRIGGER IF EXISTS {name}" for name in SQLITE_TRIGGERS]}


def _execute(connection, *statements):
    """Run each ``{vendor: [SQL]}``'s statements for ``connection``'s database (none elsewhere)."""
    with connection.cursor() as cursor:
        for by_vendor in statements:
            for statement in by_vendor.get(connection.vendor, ()):
                cursor.execute(statement)


def install(connection):
    """Create the triggers and set every task's copy (a migration's, with its schema editor's connection)."""
    _execute(connection, CREATE, FILL)


def uninstall(connection):
    _execute(connection, DROP)


def heal_after_migrate(using, migration_name):
    """``post_migrate``: on SQLite, create the triggers a later migration's table remake dropped."""
    from django.db.migrations.recorder import MigrationRecorder

    connection = connections[using]
    if connection.vendor != "sqlite":
        return
    if ("tasks", migration_name) not in MigrationRecorder(connection).applied_migrations():
        return
    with connection.cursor() as cursor:
        cursor.execute(
            "SELECT name FROM sqlite_master WHERE type = 'trigger' AND name IN "
            f"({', '.join(['%s'] * len(SQLITE_TRIGGERS))})",
            list(SQLITE_TRIGGERS),
        )
        if len(cursor.fetchall()) == len(SQLITE_TRIGGERS):
            return
    install(connection)
