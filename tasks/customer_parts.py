"""What tasks add to their customer (``customers.parts``), registered by ``TasksConfig.ready()``.

Two timeline sources from the one table: a task's creation (at ``created_at``) and,
once done, its completion (at ``done_at``); and the deleter that removes a deleted
customer's tasks in bulk, with their history.
"""

from django.db.models import BigIntegerField, CharField, DateTimeField, F, TextField

from core import changesets
from core.history import delete_with_history, update_with_history
from customers import parts

from .models import Task

CREATED = "task_created"
COMPLETED = "task_completed"


def _columns(at):
    return {
        "at": (DateTimeField(), F(at)),
        "event_id": (BigIntegerField(), F("id")),
        "event_task_title": (CharField(), F("title")),
        "event_task_kind": (CharField(), F("kind")),
        "event_task_outcome": (TextField(), F("outcome")),
    }


def _entry(kind):
    def entry(row):
        task = {"id": row["event_id"], "title": row["event_task_title"], "kind": row["event_task_kind"]}
        if kind == COMPLETED:
            task["outcome"] = row["event_task_outcome"]
        return {"type": kind, "at": row["at"], "task": task}

    return entry


def delete_tasks(customer):
    return delete_with_history(Task.objects.filter(customer=customer))


def move_tasks(from_ids, survivor):
    return update_with_history(Task.objects.filter(customer_id__in=from_ids), customer=survivor)


def register():
    # What the mover sets, put back in bulk by the undo of a merge (core/changesets.py).
    changesets.restore_in_bulk(Task, "customer_id")
    parts.add_timeline_source(
        parts.TimelineSource(
            name=CREATED,
            rows=lambda: Task.objects.all(),
            customer="customer_id",
            columns=_columns("created_at"),
            entry=_entry(CREATED),
        )
    )
    parts.add_timeline_source(
        parts.TimelineSource(
            name=COMPLETED,
            rows=lambda: Task.objects.filter(done_at__isnull=False),
            customer="customer_id",
            columns=_columns("done_at"),
            entry=_entry(COMPLETED),
        )
    )
    parts.add_deleter("tasks", delete_tasks)
    parts.add_mover("tasks", move_tasks)
