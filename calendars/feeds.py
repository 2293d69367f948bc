"""A user's open tasks as an iCalendar feed (RFC 5545), built with ``icalendar``.

Calendar apps poll the feed's URL; each open task with a due date is an event:
a timed task an event of half an hour at ``due_at`` (in UTC), a date-only task
an all-day event on its date in the user's time zone, with an alarm at the
task's reminder lead (the user's preference when the task names none).
"""

import hashlib
from datetime import timedelta

from django.urls import reverse
from django.utils import timezone
from icalendar import Alarm, Calendar, Event

from core.models import UserPreferences
from tasks.models import Task

from .models import CalendarFeed

# How far back overdue tasks still show, and how many events a feed holds at most.
OVERDUE_WINDOW = timedelta(days=180)
MAX_EVENTS = 2000
TIMED_TASK_LENGTH = timedelta(minutes=30)
PRIORITIES = {Task.Priority.HIGH: 1, Task.Priority.NORMAL: 5, Task.Priority.LOW: 9}
# RFC 5545 allows no control character in a TEXT value but the tab (line breaks are written escaped,
# as \n): those a title, note or name may hold from an import or the API are left out of the feed.
NOT_IN_TEXT = dict.fromkeys([*range(0x00, 0x09), 0x0B, 0x0C, *range(0x0E, 0x20), 0x7F])


def text(value):
    return value.translate(NOT_IN_TEXT)


def feed_path(feed):
    return reverse("calendar-feed", kwargs={"token": feed.token})


def feed_url_for(user, request):
    """The absolute URL of ``user``'s feed, or ``None`` when they have not turned it on."""
    feed = CalendarFeed.objects.filter(user=user).only("token").first()
    return request.build_absolute_uri(feed_path(feed)) if feed else None


def feed_tasks(user):
    """The open tasks assigned to ``user`` with a due date, soonest first, within the feed's bounds."""
    since = timezone.now() - OVERDUE_WINDOW
    return (
        Task.objects.filter(assignee=user, done_at__isnull=True, due_at__gte=since)
        .with_reminder_lead()
        .select_related("customer", "opportunity")
        .order_by("due_at", "id")[:MAX_EVENTS]
    )


def build_calendar(user, tasks, *, link_for):
    """The feed's bytes for ``tasks``; ``link_for(task)`` is the absolute URL of a task's page."""
    preferences = UserPreferences.for_user(user)
    zone = preferences.zone
    calendar = Calendar()
    calendar.add("prodid", "-//CRM//Tasks//EN")
    calendar.add("version", "2.0")
    calendar.add("calscale", "GREGORIAN")
    calendar.add("method", "PUBLISH")
    calendar.add("x-wr-calname", f"CRM tasks: {user.get_username()}")
    calendar.add("x-wr-timezone", zone.key)  # the zone its days are in: the site's for a name no longer known
    for task in tasks:
        calendar.add_component(task_event(task, zone, link_for(task)))
    return calendar.to_ical()


def task_event(task, zone, link):
    event = Event()
    event.add("uid", f"task-{task.pk}@crm")
    event.add("dtstamp", task.updated_at)
    event.add("last-modified", task.updated_at)
    event.add("created", task.created_at)
    event.add("summary", text(f"{task.title} ({task.customer.name})"))
    if task.due_is_date_only:
        day = timezone.localtime(task.due_at, zone).date()
        event.add("dtstart", day)
        event.add("dtend", day + timedelta(days=1))
        event.add("transp", "TRANSPARENT")
    else:
        event.add("dtstart", task.due_at)
        event.add("dtend", task.due_at + TIMED_TASK_LENGTH)
    event.add("priority", PRIORITIES.get(task.priority, 5))
    event.add("categories", [task.get_kind_display()])
    event.add("description", text(describe(task, link)))
    event.add("url", link)
    alarm = Alarm()
    alarm.add("action", "DISPLAY")
    alarm.add("description", text(task.title))
    alarm.add("trigger", timedelta(minutes=-task.reminder_lead))
    event.add_component(alarm)
    return event


def describe(task, link):
    lines = [f"{task.get_kind_display()}: {task.customer.name}"]
    if task.opportunity_id:
        lines.append(f"{task.opportunity._meta.verbose_name.capitalize()}: {task.opportunity.title}")
    if task.notes:
        lines.extend(["", task.notes])
    lines.extend(["", link])
    return "\n".join(lines)


def etag_of(body):
    return '"' + hashlib.sha256(body).hexdigest()[:32] + '"'
