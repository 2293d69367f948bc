"""Task reminders and the morning digest: found in the database, claimed once, then sent.

A reminder fires at ``due_at`` minus the lead time (the task's, else its
assignee's preference): a notification and, when the assignee has an address, an
email. ``send_due_reminders`` runs every minute (``reminders/tasks.py``); each
(task, remind_at) is claimed by inserting its :class:`ReminderDelivery` row in the
transaction that writes the notification, so that several workers, or a run after a
restart, never send one twice. A task rescheduled (snoozed) has a new remind_at and
so a new reminder; done tasks, date-only tasks (the digest lists them) and tasks
whose due time passed more than ``REMINDER_GRACE`` ago get none, nor does an assignee
who is deactivated or has no role any more (``core.access.users_with_a_role``).
"""

import dataclasses
import datetime
import logging

from django.conf import settings
from django.db import IntegrityError, transaction
from django.db.models import DateTimeField, F, Func, Value
from django.urls import NoReverseMatch, reverse
from django.utils import timezone
from django.utils.translation import gettext as _

from core import access
from core.models import UserPreferences
from core.rowlocks import locking
from notifications.services import notify, send_email
from tasks import windows
from tasks.models import Task

from .models import DigestDelivery, ReminderDelivery

logger = logging.getLogger("crm.reminders")

# A reminder missed by a stopped worker is still sent until this long after the task was due.
REMINDER_GRACE = datetime.timedelta(hours=1)
# Reminders handled per run; the next minute's run takes the rest.
REMINDER_BATCH = 500

# An email the mail server refused is tried again after these waits, then given up.
EMAIL_RETRY_WAITS = [datetime.timedelta(minutes=m) for m in (1, 5, 15, 60)]
MAX_EMAIL_ATTEMPTS = len(EMAIL_RETRY_WAITS) + 1
# How long a worker may take to send an email it claimed before another one sends it instead.
EMAIL_LEASE = datetime.timedelta(minutes=2)

# Why an email to retry was given up when its recipient lost their role or was deactivated since its claim.
NO_ROLE_ANY_MORE = "The recipient no longer has a role."

REMINDER_KIND = "task.reminder"
DIGEST_KIND = "task.digest"


class MinutesAfter(Func):
    """``expression`` plus ``minutes`` (an integer expression), as a date-time, on SQLite and PostgreSQL."""

    output_field = DateTimeField()

    def __init__(self, expression, minutes):
        super().__init__(expression, minutes)

    def as_sqlite(self, compiler, connection, **extra_context):
        # Django stores SQLite date-times as "YYYY-MM-DD HH:MM:SS.ffffff" text in UTC; %f keeps milliseconds.
        # Percent signs are doubled twice: once for this template, once for the query's parameters.
        return self.as_sql(
            compiler,
            connection,
            template="strftime('%%%%Y-%%%%m-%%%%d %%%%H:%%%%M:%%%%f', %(expressions)s || ' minutes')",
            arg_joiner=", '+' || ",
            **extra_context,
        )

    def as_postgresql(self, compiler, connection, **extra_context):
        return self.as_sql(
            compiler,
            connection,
            template="(%(expressions)s))",
            arg_joiner=" + make_interval(mins => ",
            **extra_context,
        )


def due_reminders(now):
    """Open timed tasks whose reminder time has come, each with ``reminder_lead`` (minutes) and ``remind_at``."""
    tasks = (
        Task.objects.filter(
            done_at__isnull=True,
            due_is_date_only=False,
            due_at__gt=now - REMINDER_GRACE,
            assignee__in=access.users_with_a_role().values("pk"),
        )
        .with_reminder_lead()
        # due_at - lead <= now, written as due_at <= now + lead so that the column stays bare.
        .filter(due_at__lte=MinutesAfter(Value(now, output_field=DateTimeField()), F("reminder_lead")))
        .select_related("assignee", "customer")
        .order_by("due_at", "id")
    )
    for task in tasks[:REMINDER_BATCH]:
        task.remind_at = task.due_at - datetime.timedelta(minutes=task.reminder_lead)
        yield task


def admin_link(task):
    try:
        return reverse("admin:tasks_task_change", args=[task.pk])
    except NoReverseMatch:
        return ""


def local(moment, user):
    return timezone.localtime(moment, UserPreferences.for_user(user).zone)


def reminder_text(task):
    due = local(task.due_at, task.assignee)
    title = _("Reminder: %(title)s at %(time)s") % {"title": task.title, "time": f"{due:%H:%M}"}
    lines = [
        _("%(title)s is due %(when)s.") % {"title": task.title, "when": f"{due:%Y-%m-%d %H:%M} ({due.tzname()})"},
        _("Customer: %(name)s") % {"name": task.customer.name},
    ]
    if task.notes:
        lines += ["", task.notes]
    return title, "\n".join(lines)


def claim_reminder(task, now=None):
    """Claim the reminder of ``task`` at ``task.remind_at`` and notify: its delivery row, or None if another
    run claimed it first, or if the task changed since ``due_reminders`` found it (done, due at another time or
    lead, given to another assignee: a new time of its own comes round again)."""
    try:
        with transaction.atomic():
            # Locked, then read again: a change under way is waited for, and the reminder is of the task it leaves.
            current = locking(Task.objects.filter(pk=task.pk)).select_related("assignee", "customer").first()
            if current is None or _reminded_of(current) != _reminded_of(task):
                return None
            title, body = reminder_text(current)
            delivery = ReminderDelivery.objects.create(
                task=current,
                remind_at=task.remind_at,
                recipient=current.assignee,
                **email_fields(current.assignee, title, body, now),
            )
            notify(current.assignee, REMINDER_KIND, title, body, url=admin_link(current))
    except IntegrityError:
        return None
    return delivery


def _reminded_of(task):
    """What a reminder of ``task`` is due by: open, timed, when, how long before, to whom."""
    return (task.done_at, task.due_is_date_only, task.due_at, task.reminder_lead_minutes, task.assignee_id)


def email_fields(user, title, body, now=None):
    """The email a claimed row keeps until it is sent; leased to the claiming worker for ``EMAIL_LEASE``."""
    if not user.email:
        return {}
    now = now or timezone.now()
    return {
        "email_to": user.email,
        "email_subject": title[:255],
        "email_body": body,
        "next_email_at": now + EMAIL_LEASE,
    }


def _email(delivery, now=None):
    """Send the email of a claimed row and record the outcome: sent, a retry's time, or given up."""
    if not delivery.email_to:
        return False
    now = now or timezone.now()
    attempts = delivery.email_attempts + 1
    try:
        send_email([delivery.email_to], delivery.email_subject, delivery.email_body, raise_errors=True)
    except Exception as exc:  # the mail server's refusal is recorded, not raised: the claim stands
        error = f"{type(exc).__name__}: {exc}"[:500]
        retry_at = now + EMAIL_RETRY_WAITS[attempts - 1] if attempts < MAX_EMAIL_ATTEMPTS else None
        type(delivery).objects.filter(pk=delivery.pk).update(
            email_error=error, email_attempts=attempts, next_email_at=retry_at
        )
        return False
    type(delivery).objects.filter(pk=delivery.pk).update(
        emailed_at=timezone.now(), email_error="", email_attempts=attempts, next_email_at=None
    )
    return True


def retry_emails(now=None):
    """Send the emails of claimed rows whose time came: refused before, or left by a stopped worker.

    Each row is taken by a compare-and-set on ``next_email_at`` (a new lease), so that
    two workers never send the same retry; a row whose recipient has no role any more
    (``core.access.users_with_a_role``) is given up instead. Returns the number sent.
    """
    now = now or timezone.now()
    sent = 0
    for model in (ReminderDelivery, DigestDelivery):
        due = model.objects.filter(emailed_at__isnull=True, next_email_at__lte=now)
        # A recipient deactivated or without a role since the claim is told nothing more: given up.
        due.exclude(recipient__in=access.users_with_a_role().values("pk")).update(
            next_email_at=None, email_error=NO_ROLE_ANY_MORE
        )
        due = due.order_by("next_email_at")
        for delivery in due[:REMINDER_BATCH]:
            taken = model.objects.filter(pk=delivery.pk, next_email_at=delivery.next_email_at).update(
                next_email_at=now + EMAIL_LEASE
            )
            if taken and _email(delivery, now):
                sent += 1
    return sent


def send_due_reminders(now=None):
    """Send every reminder whose time has come and that no run has sent yet; the number sent by this run."""
    now = now or timezone.now()
    sent = 0
    for task in due_reminders(now):
        if ReminderDelivery.objects.filter(task=task, remind_at=task.remind_at).exists():
            continue
        delivery = claim_reminder(task, now)
        if delivery is None:
            continue
        _email(delivery, now)
        sent += 1
    return sent


# ---- The morning digest ---------------------------------------------------------------------------


def digest_hour():
    return settings.CRM_DIGEST_HOUR


def digest_tasks(user, day):
    """The user's open tasks overdue or due on their today (``tasks.windows``), oldest first."""
    due = windows.condition("overdue", day) | windows.condition("today", day)
    tasks = list(
        Task.objects.filter(due, assignee=user, done_at__isnull=True)
        .select_related("customer")
        .order_by("due_at", "id")
    )
    for task in tasks:
        task.assignee = user  # a date-only task's date is read in their zone (Task.due_date)
    return tasks


def digest_text(user, day, tasks):
    title = _("Your tasks for %(day)s: %(count)d") % {"day": day.date.isoformat(), "count": len(tasks)}
    lines = []
    for window, heading in (("overdue", _("Overdue")), ("today", _("Today"))):
        group = [task for task in tasks if windows.window_of(task, day) == window]
        if group:
            lines.append(f"{heading}:")
            for task in group:
                when = task.due_at.astimezone(day.zone)
                stamp = f"{task.due_date:%Y-%m-%d}" if task.due_is_date_only else f"{when:%Y-%m-%d %H:%M}"
                lines.append(f"- {stamp} {task.title} ({task.customer.name})")
            lines.append("")
    return title, "\n".join(lines).strip()


def send_digests(now=None):
    """Each user who asked for the digest gets it once a day, from ``CRM_DIGEST_HOUR`` in their time zone."""
    now = now or timezone.now()
    preferences = list(
        UserPreferences.objects.filter(
            daily_digest=True, user__in=access.users_with_a_role().values("pk")
        ).select_related("user")
    )
    due = []
    for preference in preferences:
        user = preference.user
        user._crm_preferences_cache = preference
        day = windows.day_of(user, now)
        if now.astimezone(day.zone).hour >= digest_hour():
            due.append((user, day))
    if not due:
        return 0
    done = set(
        DigestDelivery.objects.filter(
            recipient__in=[user for user, _ in due], local_date__in={day.date for _, day in due}
        ).values_list("recipient_id", "local_date")
    )
    due = [(user, day) for user, day in due if (user.pk, day.date) not in done]
    if not due:
        return 0
    # The zones the users are in, read once for every recipient's day rather than once each.
    zones = windows.assignee_zones()
    sent = 0
    for user, day in due:
        day = dataclasses.replace(day, zones=zones)
        tasks = digest_tasks(user, day)
        title, body = digest_text(user, day, tasks)
        try:
            with transaction.atomic():
                delivery = DigestDelivery.objects.create(
                    recipient=user,
                    local_date=day.date,
                    task_count=len(tasks),
                    **(email_fields(user, title, body, now) if tasks else {}),
                )
                if tasks:
                    notify(user, DIGEST_KIND, title, body)
        except IntegrityError:
            continue
        # A day with nothing due is recorded, and sends nothing.
        if tasks:
            _email(delivery, now)
            sent += 1
    return sent
