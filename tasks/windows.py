"""When a task is due, seen from one user's day: overdue, today, upcoming, none.

"Today" is the requesting user's day in their own time zone
(``core.UserPreferences.time_zone``). The windows do not overlap:

- ``overdue``: open, and past due: a task with a time once that time has passed;
  a date-only task once its date is before the user's today;
- ``today``: due within the user's today and not overdue (done tasks due today included);
  a date-only task whose date is the user's today;
- ``upcoming``: due after the user's today;
- ``none``: no due date.

A date-only task is stored as 00:00 of its date in its assignee's zone; its date is the
same for whoever looks. So it is compared with the bounds of the user's date in its
assignee's zone, not the user's: a manager in Los Angeles sees a Shanghai rep's task due
on the 10th as due on the 10th. The zones in use are read once per ``Day`` (one query
of the users' zones), or once for the days of many users (``Day.zones``: the morning
digest's recipients); while every user is in one zone, the condition is a plain range.
"""

import datetime
import functools
import operator
from collections import defaultdict
from dataclasses import dataclass, field

from django.contrib.auth import get_user_model
from django.db.models import Q
from django.utils import timezone

from core.models import UserPreferences, default_time_zone, zone_named

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
    # The zones the users are in (``assignee_zones()``), when read once for the days of several users; else
    # read on first use.
    zones: list | None = field(default=None, compare=False, repr=False)

    @functools.cached_property
    def assignee_zones(self):
        """[(zone, the ``Q`` of the tasks whose assignee is in it)]: every zone a user is in."""
        return self.zones if self.zones is not None else assignee_zones()

    def midnight(self, days, zone):
        """00:00 of the date ``days`` after this day's date, in ``zone``, in UTC."""
        return start_of(self.date + datetime.timedelta(days=days), zone).astimezone(datetime.UTC)


def assignee_zones():
    """[(zone, the ``Q`` of the tasks assigned to the users in it)] for each zone the users are in.

    Users without preferences are in the site's zone, as are those whose zone is no longer known. With one
    zone in use, its ``Q`` is empty: every task is assigned in it.
    """
    site = zone_named(default_time_zone())
    names = defaultdict(set)
    for name in get_user_model().objects.values_list("crm_preferences__time_zone", flat=True).distinct():
        zone = site if name is None else zone_named(name)
        names[zone.key].add(name)
    if len(names) <= 1:
        return [(zone_named(key), Q()) for key in names] or [(site, Q())]
    preferences = UserPreferences.objects.values("user_id")
    zones = []
    for key, group in names.items():
        named = sorted(name for name in group if name is not None)
        if key == site.key:  # ...and every user without preferences
            others = preferences.exclude(time_zone__in=named)
            zones.append((site, ~Q(assignee_id__in=others)))
        else:
            zones.append((zone_named(key), Q(assignee_id__in=preferences.filter(time_zone__in=named))))
    return zones


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


def dated(day, since=None, before=None):
    """The date-only tasks due from the date ``since`` days after ``day``'s and before the date ``before``
    days after it (either bound left open when None), each read in its assignee's zone."""
    parts = []
    for zone, assigned in day.assignee_zones:
        bounds = {}
        if since is not None:
            bounds["due_at__gte"] = day.midnight(since, zone)
        if before is not None:
            bounds["due_at__lt"] = day.midnight(before, zone)
        parts.append(assigned & Q(**bounds))
    return Q(due_is_date_only=True) & functools.reduce(operator.or_, parts)


def overdue(day):
    timed = Q(due_is_date_only=False, due_at__lt=day.now)
    return Q(done_at__isnull=True) & (timed | dated(day, before=0))


def condition(window, day):
    """The ``Q`` of the tasks in ``window`` (one of ``WINDOWS``) on ``day``."""
    timed = Q(due_is_date_only=False)
    if window == "overdue":
        return overdue(day)
    if window == "today":
        passed = Q(done_at__isnull=True, due_at__lt=day.now)
        return (timed & Q(due_at__gte=day.start, due_at__lt=day.end) & ~passed) | dated(day, since=0, before=1)
    if window == "upcoming":
        return (timed & Q(due_at__gte=day.end)) | dated(day, since=1)
    if window == "none":
        return Q(due_at__isnull=True)
    raise ValueError(window)


def window_of(task, day):
    """The window ``task`` falls in on ``day`` (the same rules as :func:`condition`, in Python).

    A date-only task's date is read in its assignee's zone (``Task.due_date``).
    """
    if task.due_at is None:
        return "none"
    if task.due_is_date_only:
        due = task.due_date
        if due < day.date:
            return "overdue" if task.done_at is None else "past"
        return "today" if due == day.date else "upcoming"
    if task.done_at is None and task.due_at < day.now:
        return "overdue"
    if task.due_at >= day.end:
        return "upcoming"
    return "today" if task.due_at >= day.start else "past"
