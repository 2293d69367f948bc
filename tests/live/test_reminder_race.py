"""Reminders with two real worker processes racing, mail to a real SMTP server: each arrives once.

Both workers schedule the minute's reminder job (each with two threads), on one
Redis queue and one database, as several production workers would; the SMTP
server (aiosmtpd) runs in this process. Then one worker is stopped and another
started in its place: what was sent is not sent again, and a new reminder is.
"""

import json
import uuid

import pytest
from huey import RedisHuey

from tests.smtp import SMTPServer

from .conftest import REDIS_URL, kill_process_group, manage
from .test_worker import fetch, start_worker, wait_for  # noqa: F401  (start_worker is a fixture)

pytestmark = pytest.mark.live

TASKS = 12


def create_due_tasks(database_url, prefix, count):
    """``count`` open tasks of a sales rep, due in ten minutes (the default lead is 15: their reminders are due now)."""
    script = (
        "import json, sys, datetime\n"
        "from django.contrib.auth import get_user_model\n"
        "from django.utils import timezone\n"
        "from customers.models import Customer\n"
        "from tasks.models import Task\n"
        "prefix, count = json.loads(sys.stdin.read())\n"
        "from django.contrib.auth.models import Group\n"
        "user, _ = get_user_model().objects.get_or_create(username=prefix, defaults={'email': prefix + '@example.com'})\n"
        "user.groups.add(Group.objects.get(name='Sales rep'))\n"
        "customer = Customer.objects.create(name=prefix + ' customer', owner=user)\n"
        "due = timezone.now() + datetime.timedelta(minutes=10)\n"
        "ids = [Task.objects.create(title=f'{prefix} task {n}', assignee=user, customer=customer, due_at=due).pk\n"
        "       for n in range(count)]\n"
        "print(json.dumps(ids))\n"
    )
    output = manage(database_url, "shell", "--no-imports", "-c", script, stdin=json.dumps([prefix, count]))
    return json.loads(output.strip().splitlines()[-1])


@pytest.fixture
def smtp():
    server = SMTPServer().start()
    try:
        yield server
    finally:
        server.stop()


@pytest.fixture
def redis_queue():
    name = f"crm-test-{uuid.uuid4().hex}"
    yield {"REDIS_URL": REDIS_URL, "CRM_QUEUE_NAME": name, "DJANGO_CACHE_KEY_PREFIX": name}
    RedisHuey(name, url=REDIS_URL).storage.flush_all()


def deliveries(database_url, ids):
    marks = ",".join("?" * len(ids))
    return fetch(
        database_url,
        f"SELECT task_id, emailed_at FROM reminders_reminderdelivery WHERE task_id IN ({marks})",
        tuple(ids),
    )


def test_two_workers_send_each_reminder_once_and_a_restart_sends_nothing_again(
    request, live_database_url, smtp, redis_queue
):
    launch = request.getfixturevalue("start_worker")
    prefix = f"race{uuid.uuid4().hex[:8]}"
    ids = create_due_tasks(live_database_url, prefix, TASKS)
    mail_env = {"DJANGO_EMAIL_HOST": "127.0.0.1", "DJANGO_EMAIL_PORT": smtp.port, **redis_queue}
    first, _ = launch(**mail_env)
    launch(**mail_env)

    # Each worker's scheduler enqueues the minute's job as it starts, then once a minute.
    wait_for(lambda: len(smtp.inbox.messages) >= TASKS, 100, "the reminders")
    wait_for(lambda: all(row[1] for row in deliveries(live_database_url, ids)) or None, 20, "the delivery log")
    subjects = smtp.inbox.subjects()
    assert len(subjects) == TASKS, subjects
    assert len(set(subjects)) == TASKS
    assert sorted(row[0] for row in deliveries(live_database_url, ids)) == sorted(ids)

    # A restart: the first worker stops, a new task falls due, and a new worker starts (and at once
    # enqueues the minute's job, beside the other worker's next).
    kill_process_group(first)
    [late] = create_due_tasks(live_database_url, prefix + "late", 1)
    launch(**mail_env)
    wait_for(lambda: len(smtp.inbox.messages) > TASKS, 100, "the new reminder")
    wait_for(lambda: all(row[1] for row in deliveries(live_database_url, [late])) or None, 20, "its delivery log")
    subjects = smtp.inbox.subjects()
    assert len(subjects) == TASKS + 1, subjects
    assert len(set(subjects)) == TASKS + 1
    assert [row[0] for row in deliveries(live_database_url, [late])] == [late]
