from django.apps import AppConfig
from django.db.models.signals import post_migrate
from django.utils.translation import gettext_lazy as _


def _done(changes):
    return "done_at" in changes and changes["done_at"]["new"] is not None and changes["done_at"]["old"] is None


def _reopened(changes):
    return "done_at" in changes and changes["done_at"]["new"] is None and changes["done_at"]["old"] is not None


def _heal_sqlite_search_index(sender, using, **kwargs):
    from . import customer_name
    from .search import SEARCH

    SEARCH.heal_after_migrate(using, "tasks", "0004_search_indexes")
    customer_name.heal_after_migrate(using, "0005_task_customer_name")


class TasksConfig(AppConfig):
    default_auto_field = "django.db.models.BigAutoField"
    name = "tasks"
    verbose_name = _("Tasks")

    def ready(self):
        from core import access, events
        from core.models import time_zone_changed

        from .customer_parts import register
        from .models import Task
        from .opportunity_parts import register as register_next_task
        from .serializers import TaskSerializer
        from .services import _time_zone_changed

        # A task is its customer's owner's; its assignee sees it too.
        access.register_owner_path(Task, "customer__owner", also_seen_by=["assignee"])
        post_migrate.connect(_heal_sqlite_search_index, sender=self)
        register()
        register_next_task()
        # A user's open date-only tasks keep their dates when the user's time zone changes.
        time_zone_changed.connect(_time_zone_changed, dispatch_uid="tasks.keep_due_dates")
        # Every create, update and delete writes an event with the change (core/events.py);
        # completing and reopening write task.completed / task.reopened as well.
        events.register(
            Task,
            name="task",
            serializer=TaskSerializer,
            also={"task.completed": _done, "task.reopened": _reopened},
        )
