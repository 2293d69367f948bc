"""The rep's day in the admin: overdue, today's and upcoming tasks, deals with no next step, stale deals.

``MyDay`` adds two URLs to the task admin: the page (``my_day``, where reps land
after signing in) and the one-click changes it posts (``my_day_act``): done,
snooze (a day later) and "log a call" (done, and a call logged with the customer).
Each POST carries the task's ``updated_at`` as it was shown: a task changed since
is left as it is and the user is told to look again (no lost update).
"""

from django.contrib import messages
from django.core.exceptions import PermissionDenied
from django.db import transaction
from django.http import HttpResponseRedirect
from django.template.response import TemplateResponse
from django.urls import path, reverse
from django.utils.translation import gettext_lazy as _
from django.views.decorators.http import require_POST
from rest_framework.exceptions import ValidationError

from core import access
from core.rowlocks import locking
from customers.models import Customer
from interactions.models import Interaction
from opportunities.models import Opportunity

from .reports import stale, without_next_step
from .services import TaskStateError, complete_task, hold_moved_parents, hold_parents, snooze_task
from .windows import condition, day_of

LIST_LENGTH = 20
# The one-click changes, with their buttons' labels.
ACTIONS = {"done": _("Done"), "snooze": _("Snooze a day"), "log_call": _("Log a call")}


def version_of(task):
    return task.updated_at.isoformat()


class MyDay:
    def get_urls(self):
        prefix = f"{self.opts.app_label}_{self.opts.model_name}"
        return [
            path("my-day/", self.admin_site.admin_view(self.my_day_view), name=f"{prefix}_my_day"),
            path(
                "my-day/act/",
                self.admin_site.admin_view(require_POST(self.my_day_act_view)),
                name=f"{prefix}_my_day_act",
            ),
            *super().get_urls(),
        ]

    def my_day_url(self):
        return reverse(f"{self.admin_site.name}:{self.opts.app_label}_{self.opts.model_name}_my_day")

    def my_day_view(self, request):
        if not self.has_view_permission(request):
            raise PermissionDenied
        day = day_of(request.user)
        mine = (
            self.get_queryset(request)
            .filter(assignee=request.user)
            .select_related("customer", "opportunity")
            .order_by("due_at", "id")
        )
        sections = [
            ("overdue", _("Overdue"), mine.filter(condition("overdue", day))),
            ("today", _("Today"), mine.filter(condition("today", day), done_at__isnull=True)),
            ("upcoming", _("Upcoming"), mine.filter(condition("upcoming", day), done_at__isnull=True)),
        ]
        deals = access.scope(Opportunity.objects.all(), request.user)
        context = {
            **self.admin_site.each_context(request),
            "title": _("My day"),
            "opts": self.opts,
            "day": day,
            "sections": [(key, label, list(rows[:LIST_LENGTH])) for key, label, rows in sections],
            "can_act": self.has_change_permission(request),
            "can_add": self.has_add_permission(request),
            "actions": list(ACTIONS.items()),
            "no_next_step": _stages_labelled(without_next_step(deals, LIST_LENGTH)),
            "stale": _stages_labelled(stale(deals, day.now, LIST_LENGTH)),
            "act_url": reverse(f"{self.admin_site.name}:{self.opts.app_label}_{self.opts.model_name}_my_day_act"),
        }
        return TemplateResponse(request, "admin/tasks/my_day.html", context)

    def my_day_act_view(self, request):
        back = HttpResponseRedirect(self.my_day_url())
        action = request.POST.get("action")
        task_id = request.POST.get("task", "")
        if action not in ACTIONS or not task_id.isdecimal():
            messages.error(request, _("Nothing was changed: the request was incomplete."))
            return back
        with transaction.atomic():
            tasks = self.get_queryset(request).filter(pk=int(task_id))
            # Its customer and deal before the task, as their deletes take them (``services.hold_parents``); then the
            # task as its save takes it (``FOR NO KEY UPDATE``, not the customer it is read joined to for a rep): the
            # records being added to either meanwhile go on.
            held = hold_parents(tasks)
            task = locking(tasks).first()
            if task is None:
                messages.error(request, _("That task no longer exists, or is not yours to see."))
                return back
            if not self.has_change_permission(request, task):
                raise PermissionDenied
            if request.POST.get("version") != version_of(task):
                messages.warning(
                    request, _("“%(task)s” was changed meanwhile: nothing was done; look again.") % {"task": task.title}
                )
                return back
            # Those it was moved to meanwhile too, if it was, before it is written (``services.hold_moved_parents``).
            hold_moved_parents(task, held)
            self._act(request, task, action)
        return back

    def _act(self, request, task, action):
        if action == "snooze":
            snooze_task(task)
            messages.success(request, _("“%(task)s” moved to a day later.") % {"task": task.title})
            return
        log = action == "log_call"
        if log and not access.scope(Customer.objects.filter(pk=task.customer_id), request.user).exists():
            messages.error(request, _("You cannot log a call with a customer outside your book."))
            return
        try:
            with transaction.atomic():
                complete_task(
                    task,
                    user=request.user,
                    log_interaction=log,
                    interaction_type=Interaction.Type.CALL if log else None,
                    request=request,
                )
        except (TaskStateError, ValidationError):
            messages.error(request, _("“%(task)s” could not be marked done.") % {"task": task.title})
            return
        if log:
            messages.success(request, _("“%(task)s” done, and the call logged.") % {"task": task.title})
        else:
            messages.success(request, _("“%(task)s” done.") % {"task": task.title})


def _stages_labelled(section):
    """A report section's deals (the API's rows, stage codes) with each stage's label, for the page."""
    labels = dict(Opportunity.Stage.choices)
    return {
        **section,
        "deals": [{**deal, "stage_label": labels.get(deal["stage"], deal["stage"])} for deal in section["deals"]],
    }
