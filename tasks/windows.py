"""When a task is due, seen from one user's day: overdue, today, upcoming, none.

"Today" is the requesting user's day in their own time zone
(``core.UserPreferences.time_zone``). The windows do not overlap:

- ``overdue``: open, and past due: a task with a time once that time has passed;
  a date-only task (stored as 00:00 of its day in its assignee's zone) once its day
  has ended;
- ``today``: due within the user's today and not overdue (done tasks due today included);
- ``upcoming``: due after the user's today;
- ``none``: no due date.
"""

import datetime
from dataclasses import dataclass

from django.db.models import Q
from django.utils import timezone

from core.models import UserPreferences

WINDOWS = ("overdue", "today", "upcoming", "none")


@dataclass(frozen=True)
class Day:
    """A user's today: ``now``, its date in their zone, and the bounds of that day (in UTC: subtracting
    two datetimes of one zone ignores a change of offset between them)."""

    now: datetime.datetime
    date: datetime.date
    start: datetime.datetime
    end: datetime.datetime
    zone: datetime.tzinfo


def start_of(day, zone):
    return datetime.datetime.combine(day, datetime.time.min, tzinfo=zone)


def day_of(user, now=None):
    """``user``'s today (their time zone's), at ``now``."""
    zone = UserPreferences.for_user(user).zone
    now = now or timezone.now()
    local = now.astimezone(zone).date()
    return Day(
        now=now,
        date=local,
        start=start_of(local, zone).astimezone(datetime.UTC),
        end=start_of(local + datetime.timedelta(days=1), zone).astimezone(datetime.UTC),
        zone=zone,
    )


def overdue(day):
    timed = Q(due_is_date_only=False, due_at__lt=day.now)
    dated = Q(due_is_date_only=True, due_at__lt=day.start)
    return Q(done_at__isnull=True) & (timed | dated)


def condition(window, day):
    """The ``Q`` of the tasks in ``window`` (one of ``WINDOWS``) on ``day``."""
    if window == "overdue":
        return overdue(day)
    if window == "today":
        return Q(due_at__gte=day.start, due_at__lt=day.end) & ~overdue(day)
    if window == "upcoming":
        return Q(due_at__gte=day.end)
    if window == "none":
        return Q(due_at__isnull=True)
    raise ValueError(window)


def window_of(task, day):
    """The window ``task`` falls in on ``day`` (the same rules as :func:`condition`, in Python)."""
    if task.due_at is None:
        return "none"
    if task.done_at is None:
        if (task.due_is_date_only and task.due_at < day.start) or (not task.due_is_date_only and task.due_at < day.now):
            return "overdue"
    if task.due_at >= day.end:
        return "upcoming"
    return "today" if task.due_at >= day.start else "past"
