import datetime

from django.conf import settings
from django.core.validators import MaxValueValidator
from django.db import models
from django.db.models import F, OuterRef, Subquery, Value
from django.db.models.functions import Coalesce
from django.utils import timezone
from django.utils.translation import gettext_lazy as _
from simple_history.utils import bulk_update_with_history

from core.dates import validate_record_date
from core.fields import created_by_field, external_id_field, external_id_unique
from core.history import CRMHistoricalRecords, current_history_user
from core.models import MAX_REMINDER_LEAD_MINUTES, RecordedModel, UserPreferences
from core.rowlocks import locking

from .windows import start_of


def date_only_due_at(day, zone):
    """The instant a task due on ``day`` at no particular time is stored as: 00:00 of that day in ``zone``
    (its assignee's), in UTC."""
    return start_of(day, zone).astimezone(datetime.UTC)


def zone_of(user_id):
    """The time zone of the user ``user_id`` (their preference, else the site's)."""
    preferences = UserPreferences.objects.filter(user_id=user_id).first() or UserPreferences()
    return preferences.zone


class TaskQuerySet(models.QuerySet):
    def with_reminder_lead(self):
        """Annotate ``reminder_lead``: minutes before ``due_at`` that a task's reminder fires.

        The one home of the rule: the task's own lead, else its assignee's preference, else the
        preference's default. Reminders fire by it; the calendar feed's alarms say it.
        """
        preference = UserPreferences.objects.filter(user=OuterRef("assignee")).values("reminder_lead_minutes")[:1]
        default = UserPreferences._meta.get_field("reminder_lead_minutes").default
        return self.annotate(reminder_lead=Coalesce(F("reminder_lead_minutes"), Subquery(preference), Value(default)))

    def keep_due_dates(self, *, old_zone, new_zone):
        """Re-store the date-only tasks among these, read in ``old_zone``, as 00:00 of the same dates in ``new_zone``.

        For the tasks of a user whose time zone changes: a task due on 11 December stays due on
        11 December. Written in bulk with their history and events; returns the number changed.
        """
        # As updates (``FOR NO KEY UPDATE``): their reminders being written go on.
        tasks = list(locking(self.filter(due_is_date_only=True, due_at__isnull=False)))
        now = timezone.now()
        moved = []
        for task in tasks:
            due_at = date_only_due_at(task.due_at.astimezone(old_zone).date(), new_zone)
            if due_at != task.due_at:
                task.due_at, task.updated_at = due_at, now
                moved.append(task)
        bulk_update_with_history(
            moved, Task, ["due_at", "updated_at"], batch_size=500, default_user=current_history_user()
        )
        for task in moved:
            task.remember_stored()
        return len(moved)


class Task(RecordedModel):
    """A follow-up to do for a customer (and, optionally, one of its opportunities).

    ``due_at`` is an instant. A date-only task (``due_is_date_only``) is stored as the
    start of that day (00:00) in its assignee's time zone: the date is read back in that
    zone (``due_date``), and such a task is overdue once that day has passed, not from
    00:00 on (see ``tasks/windows.py``). The date is what the user set, whoever holds the
    task: a save that gives the task to another assignee re-stores it as 00:00 of the same
    date in the new assignee's zone (``save``), and a change of a user's time zone does the
    same for their open date-only tasks (``TaskQuerySet.keep_due_dates``, called by
    ``tasks.services.keep_due_dates_of``).
    """

    class Kind(models.TextChoices):
        CALL = "call", _("Call")
        EMAIL = "email", _("Email")
        MEETING = "meeting", _("Meeting")
        TODO = "todo", _("To-do")

    class Priority(models.TextChoices):
        LOW = "low", _("Low")
        NORMAL = "normal", _("Normal")
        HIGH = "high", _("High")

    title = models.CharField(_("title"), max_length=200)
    kind = models.CharField(_("kind"), max_length=16, choices=Kind.choices, default=Kind.TODO)
    due_at = models.DateTimeField(_("due at"), null=True, blank=True, validators=[validate_record_date])
    due_is_date_only = models.BooleanField(
        _("date only"), default=False, help_text=_("Due on that day, at no particular time.")
    )
    # Deactivate users rather than delete them: a user with tasks cannot be deleted.
    assignee = models.ForeignKey(
        settings.AUTH_USER_MODEL,
        verbose_name=_("assignee"),
        on_delete=models.PROTECT,
        related_name="crm_tasks",
    )
    customer = models.ForeignKey(
        "customers.Customer",
        verbose_name=_("customer"),
        on_delete=models.CASCADE,
        related_name="tasks",
    )
    # The customer's name, kept by the database (tasks/customer_name.py): the list's sort by customer.
    customer_name = models.CharField(_("customer name"), max_length=200, default="", db_default="", editable=False)
    # One of the customer's opportunities; a task outlives the opportunity's deletion.
    opportunity = models.ForeignKey(
        "opportunities.Opportunity",
        verbose_name=_("opportunity"),
        on_delete=models.SET_NULL,
        null=True,
        blank=True,
        related_name="tasks",
    )
    notes = models.TextField(_("notes"), blank=True, default="")
    priority = models.CharField(_("priority"), max_length=8, choices=Priority.choices, default=Priority.NORMAL)
    # Minutes before due_at that the reminder fires; empty: the assignee's preference.
    reminder_lead_minutes = models.PositiveIntegerField(
        _("reminder lead (minutes)"),
        null=True,
        blank=True,
        validators=[MaxValueValidator(MAX_REMINDER_LEAD_MINUTES)],
        help_text=_("Left empty, the assignee's preference is used."),
    )
    done_at = models.DateTimeField(_("done at"), null=True, blank=True)
    # What came of it, given when the task is completed.
    outcome = models.TextField(_("outcome"), blank=True, default="")
    created_at = models.DateTimeField(_("created at"), auto_now_add=True)
    updated_at = models.DateTimeField(_("updated at"), auto_now=True)
    external_id = external_id_field()
    created_by = created_by_field()
    # Who changed what and when; updated_at is left out: history_date says it.
    history = CRMHistoricalRecords(excluded_fields=["updated_at", "customer_name"])

    objects = TaskQuerySet.as_manager()

    class Meta:
        ordering = ["-created_at", "-id"]
        verbose_name = _("task")
        verbose_name_plural = _("tasks")
        constraints = [
            models.CheckConstraint(condition=~models.Q(title=""), name="task_title_not_blank"),
            external_id_unique("task"),
        ]
        indexes = [
            models.Index(fields=["-created_at", "-id"], name="task_newest_idx"),
            models.Index(fields=["customer", "-created_at"], name="task_customer_idx"),
            models.Index(fields=["assignee", "due_at"], name="task_assignee_due_idx"),
            models.Index(
                fields=["opportunity", "due_at", "id"],
                name="task_opportunity_open_idx",
                condition=models.Q(done_at__isnull=True),
            ),
            models.Index(fields=["due_at"], name="task_open_due_idx", condition=models.Q(done_at__isnull=True)),
            # Behind the admin list's order (open first, then by due date) and its sorts: the column, then
            # that order.
            models.Index(fields=["done_at", "due_at", "id"], name="task_list_idx"),
            models.Index(fields=["title", "done_at", "due_at", "id"], name="task_title_sort_idx"),
            models.Index(fields=["kind", "done_at", "due_at", "id"], name="task_kind_sort_idx"),
            models.Index(fields=["assignee", "done_at", "due_at", "id"], name="task_assignee_sort_idx"),
            models.Index(fields=["due_at", "done_at", "id"], name="task_due_sort_idx"),
            models.Index(fields=["priority", "done_at", "due_at", "id"], name="task_priority_sort_idx"),
            models.Index(fields=["customer_name", "done_at", "due_at", "id"], name="task_customer_sort_idx"),
        ]

    def __str__(self):
        return self.title

    @classmethod
    def from_db(cls, db, field_names, values):
        task = super().from_db(db, field_names, values)
        task.remember_stored()
        return task

    def refresh_from_db(self, *args, **kwargs):
        super().refresh_from_db(*args, **kwargs)
        self.remember_stored()

    def save(self, *args, **kwargs):
        update_fields = kwargs.get("update_fields")
        if self.keep_due_date() and update_fields is not None and "due_at" not in update_fields:
            kwargs["update_fields"] = [*update_fields, "due_at"]
        super().save(*args, **kwargs)
        self.remember_stored()

    def remember_stored(self):
        """Note the assignee and due date as stored (``keep_due_date`` compares with them)."""
        self._stored_due = (self.__dict__.get("assignee_id"), self.__dict__.get("due_at"))

    def keep_due_date(self):
        """Re-store a date-only task given to another assignee as 00:00 of its date in their time zone.

        The date is the one the task was due on for its previous assignee; a due date set in the
        same write (already in the new assignee's zone: the API's serializer) is left as it is.
        Returns whether ``due_at`` changed.
        """
        stored_assignee_id, stored_due_at = getattr(self, "_stored_due", (None, None))
        if (
            not self.due_is_date_only
            or self.due_at is None
            or stored_assignee_id is None
            or self.assignee_id == stored_assignee_id
            or self.due_at != stored_due_at
        ):
            return False
        day = self.due_at.astimezone(zone_of(stored_assignee_id)).date()
        due_at = date_only_due_at(day, zone_of(self.assignee_id))
        changed = due_at != self.due_at
        self.due_at = due_at
        return changed

    @property
    def zone(self):
        """The assignee's time zone, in which a date-only task's date is read."""
        return UserPreferences.for_user(self.assignee).zone

    @property
    def due_date(self):
        """The day a date-only task is due on (in its assignee's time zone); None for a timed or undated task."""
        if not self.due_is_date_only or self.due_at is None:
            return None
        return self.due_at.astimezone(self.zone).date()

    @property
    def is_done(self):
        return self.done_at is not None
