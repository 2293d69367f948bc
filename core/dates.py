"""Calendar arithmetic for reports (months, weeks, the bounds of whole days), and the years a record's dates may take."""

import datetime

from django.core.exceptions import ValidationError
from django.utils import timezone
from django.utils.translation import gettext_lazy as _

# The years a date typed into a record (when an interaction happened, when an
# opportunity should close) may fall in. Anything outside is a typo (9999 for
# 2025), and dates near the ends of what Python holds break date arithmetic
# once shifted between time zones.
FIRST_YEAR = 1900
LAST_YEAR = 2200


def validate_record_date(value):
    """Refuse a date, or a date and time (taken in the current time zone), outside FIRST_YEAR..LAST_YEAR."""
    try:
        if isinstance(value, datetime.datetime) and timezone.is_aware(value):
            value = timezone.localtime(value)
        year = value.year
    except OverflowError:
        year = None
    if year is None or not FIRST_YEAR <= year <= LAST_YEAR:
        raise ValidationError(
            _("Enter a date in the years %(first)d to %(last)d."),
            code="date_out_of_range",
            params={"first": FIRST_YEAR, "last": LAST_YEAR},
        )


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
