"""The index behind the task list's sort by customer, built without holding writes to the tasks on
PostgreSQL (``core.indexes.AddIndexConcurrently``; plainly on SQLite)."""

from django.db import migrations, models

from core.indexes import AddIndexConcurrently


class Migration(migrations.Migration):
    atomic = False

    dependencies = [("tasks", "0005_task_customer_name")]

    operations = [
        AddIndexConcurrently(
            model_name="task",
            index=models.Index(fields=["customer_name", "done_at", "due_at", "id"], name="task_customer_sort_idx"),
        ),
    ]
