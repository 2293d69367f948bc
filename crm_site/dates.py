"""Calendar arithmetic for reports: months, weeks, and the bounds of whole days."""

import datetime

from django.utils import timezone


def add_months(day, months):
    """The first day of the month ``months`` after the month of ``day``."""
    index = day.year * 12 + day.month - 1 + months
    return datetime.date(index // 12, index % 12 + 1, 1)


def period_start(day, group_by):
    """The Monday of ``day``'s week, or the first of its month."""
    if group_by == "week":
        return day - datetime.timedelta(days=day.weekday())
    return day.replace(day=1)


def next_period(start, group_by):
    if group_by == "week":
        return start + datetime.timedelta(weeks=1)
    return add_months(start, 1)


def periods(first_day, last_day, group_by):
    """The start dates of every week or month touching ``first_day``..``last_day``."""
    start = period_start(first_day, group_by)
    while start <= last_day:
        yield start
        start = next_period(start, group_by)


def start_of_day(day):
    """Midnight at the start of ``day`` in the current time zone, as an aware datetime."""
    return timezone.make_aware(datetime.datetime.combine(day, datetime.time.min))


def day_bounds(first_day=None, last_day=None):
    """Aware ``[since, until)`` covering whole days ``first_day``..``last_day`` (either may be None)."""
    since = start_of_day(first_day) if first_day else None
    until = start_of_day(last_day + datetime.timedelta(days=1)) if last_day else None
    return since, until
