"""Reminders and digests, sent through a real SMTP server (aiosmtpd) in this process."""

import datetime

import pytest
from django.contrib.auth.models import Group
from django.db import connection
from django.test.utils import CaptureQueriesContext
from django.utils import timezone

from core.models import UserPreferences
from notifications.models import Notification
from reminders import services
from reminders.models import DigestDelivery, ReminderDelivery
from tasks.models import Task
from tests.factories import CustomerFactory, UserFactory

pytestmark = pytest.mark.django_db

NOW = datetime.datetime(2026, 3, 10, 9, 0, tzinfo=datetime.UTC)


def rep(username="rep", **preferences):
    user = UserFactory(username=username)
    user.groups.add(Group.objects.get(name="Sales rep"))
    if preferences:
        UserPreferences.objects.create(user=user, **preferences)
    return user


def task(assignee, due_at, **fields):
    customer = fields.pop("customer", None) or CustomerFactory(owner=assignee, name="Acme")
    return Task.objects.create(
        title=fields.pop("title", "Call back"), assignee=assignee, customer=customer, due_at=due_at, **fields
    )


def minutes(n):
    return datetime.timedelta(minutes=n)


def test_a_reminder_fires_at_due_minus_the_lead_once(smtp_server):
    user = rep()
    due = NOW + minutes(30)
    item = task(user, due, reminder_lead_minutes=30)

    assert services.send_due_reminders(NOW - minutes(1)) == 0
    assert services.send_due_reminders(NOW) == 1
    assert services.send_due_reminders(NOW + minutes(1)) == 0

    delivery = ReminderDelivery.objects.get()
    assert (delivery.task, delivery.remind_at, delivery.recipient) == (item, NOW, user)
    assert delivery.emailed_at is not None and delivery.email_error == ""
    [(recipients, message)] = smtp_server.inbox.messages
    assert recipients == [user.email]
    assert str(message["Subject"]) == "Reminder: Call back at 09:30"
    assert "Customer: Acme" in message.get_content()
    notification = Notification.objects.get()
    assert (notification.recipient, notification.kind) == (user, "task.reminder")


@pytest.mark.parametrize(
    "change",
    [{"done_at": NOW}, {"due_at": NOW + minutes(75)}, {"reminder_lead_minutes": 5}, {"assignee": None}],
    ids=["done", "snoozed", "lead", "reassigned"],
)
def test_a_task_changed_after_it_was_found_due_is_not_reminded_of_then(smtp_server, change):
    user = rep()
    item = task(user, NOW + minutes(15))
    [found] = services.due_reminders(NOW)
    Task.objects.filter(pk=item.pk).update(**{"assignee": rep("other")} if "assignee" in change else change)

    assert services.claim_reminder(found, NOW) is None
    assert not ReminderDelivery.objects.exists() and not Notification.objects.exists()
    assert smtp_server.inbox.messages == []


def test_a_task_renamed_after_it_was_found_due_is_reminded_of_by_its_new_title(smtp_server):
    item = task(rep(), NOW + minutes(15))
    [found] = services.due_reminders(NOW)
    Task.objects.filter(pk=item.pk).update(title="Call back about the renewal")

    services._email(services.claim_reminder(found, NOW), NOW)

    assert Notification.objects.get().title == "Reminder: Call back about the renewal at 09:15"
    [(_recipients, message)] = smtp_server.inbox.messages
    assert str(message["Subject"]) == "Reminder: Call back about the renewal at 09:15"


def test_the_lead_comes_from_the_task_else_the_preference_else_the_default(smtp_server):
    with_preference = rep("pref", reminder_lead_minutes=60)
    without = rep("plain")
    task(with_preference, NOW + minutes(60), title="By preference")
    task(without, NOW + minutes(15), title="By default")
    task(without, NOW + minutes(20), title="Not yet")

    assert services.send_due_reminders(NOW) == 2
    assert sorted(ReminderDelivery.objects.values_list("task__title", flat=True)) == ["By default", "By preference"]


def test_a_snoozed_task_gets_a_new_reminder_and_a_done_task_none(smtp_server):
    user = rep()
    item = task(user, NOW + minutes(15))
    done = task(user, NOW + minutes(15), title="Done", done_at=NOW - minutes(5))
    assert services.send_due_reminders(NOW) == 1

    item.due_at = NOW + minutes(75)
    item.save()
    assert services.send_due_reminders(NOW + minutes(30)) == 0
    assert services.send_due_reminders(NOW + minutes(60)) == 1

    assert list(
        ReminderDelivery.objects.filter(task=item).order_by("remind_at").values_list("remind_at", flat=True)
    ) == [
        NOW,
        NOW + minutes(60),
    ]
    assert not ReminderDelivery.objects.filter(task=done).exists()
    assert len(smtp_server.inbox.messages) == 2


def test_a_worker_down_for_a_while_still_sends_then_gives_up(smtp_server):
    user = rep()
    task(user, NOW + minutes(15), title="Missed by 40 minutes")
    task(user, NOW - minutes(120), title="Long past")

    assert services.send_due_reminders(NOW + minutes(40)) == 1
    assert ReminderDelivery.objects.get().task.title == "Missed by 40 minutes"


def test_date_only_tasks_and_inactive_assignees_get_no_reminder(smtp_server):
    user, gone = rep(), rep("gone")
    gone.is_active = False
    gone.save()
    task(user, NOW + minutes(5), due_is_date_only=True)
    task(gone, NOW + minutes(5))

    assert services.send_due_reminders(NOW) == 0


def test_a_user_who_lost_their_role_gets_neither_reminders_nor_digests(smtp_server):
    user = rep(time_zone="Asia/Shanghai", daily_digest=True)
    task(user, NOW + minutes(5), title="Call about the contract")
    user.groups.clear()

    assert services.send_due_reminders(NOW) == 0
    assert services.send_digests(NOW) == 0
    assert not Notification.objects.exists()
    assert smtp_server.inbox.messages == []

    # Given a role again, they are told again.
    user.groups.add(Group.objects.get(name="Sales manager"))
    assert services.send_due_reminders(NOW) == 1
    assert services.send_digests(NOW) == 1


def test_a_claimed_reminder_is_not_sent_again_even_when_a_run_overlaps(smtp_server):
    user = rep()
    item = task(user, NOW + minutes(15))
    [found] = services.due_reminders(NOW)
    # Another worker claimed it between this run's read and its claim.
    ReminderDelivery.objects.create(task=item, remind_at=found.remind_at, recipient=user)

    assert services.claim_reminder(found) is None
    assert services.send_due_reminders(NOW) == 0
    assert smtp_server.inbox.messages == []
    assert not Notification.objects.exists()


def test_a_title_with_line_breaks_still_gets_its_reminder_email(smtp_server):
    # The API takes a title with line breaks; put in the subject as they were, Django refused every
    # try of the email ("Header values can't contain newlines") and the assignee never got it.
    user = rep()
    task(user, NOW + minutes(15), title="Call back\r\nabout the quote\nBcc: someone@example.com")

    assert services.send_due_reminders(NOW) == 1
    delivery = ReminderDelivery.objects.get()
    assert delivery.emailed_at is not None and delivery.email_error == ""
    [(recipients, message)] = smtp_server.inbox.messages
    assert recipients == [user.email] and message["Bcc"] is None
    assert str(message["Subject"]) == "Reminder: Call back about the quote Bcc: someone@example.com at 09:15"
    assert "Call back\r\nabout the quote" in Notification.objects.get().title


def test_a_refusing_mail_server_is_recorded_and_the_notification_stays(settings):
    settings.EMAIL_BACKEND = "django.core.mail.backends.smtp.EmailBackend"
    settings.EMAIL_HOST, settings.EMAIL_PORT, settings.EMAIL_TIMEOUT = "127.0.0.1", 9, 2
    user = rep()
    task(user, NOW + minutes(15))

    assert services.send_due_reminders(NOW) == 1
    delivery = ReminderDelivery.objects.get()
    assert delivery.emailed_at is None and "ConnectionRefusedError" in delivery.email_error
    assert Notification.objects.count() == 1
    assert services.send_due_reminders(NOW) == 0


def test_the_reminder_speaks_the_assignees_time_zone(smtp_server):
    user = rep(time_zone="Asia/Shanghai")
    task(user, NOW + minutes(15))
    services.send_due_reminders(NOW)
    [(_, message)] = smtp_server.inbox.messages
    assert str(message["Subject"]) == "Reminder: Call back at 17:15"
    assert "2026-03-10 17:15 (CST)" in message.get_content()


def test_the_digest_lists_today_and_overdue_in_the_users_day_once(smtp_server, settings):
    settings.CRM_DIGEST_HOUR = 7
    # 09:00 UTC is 17:00 in Shanghai: past the digest hour there; 02:00 in Chicago (CDT): not yet.
    shanghai = rep("sh", time_zone="Asia/Shanghai", daily_digest=True)
    chicago = rep("chi", time_zone="America/Chicago", daily_digest=True)
    rep("nodigest", time_zone="Asia/Shanghai", daily_digest=False)
    task(shanghai, NOW - datetime.timedelta(days=2), title="Overdue one")
    task(shanghai, NOW + minutes(120), title="Tonight")
    task(shanghai, NOW + datetime.timedelta(days=1), title="Tomorrow")
    task(shanghai, NOW + minutes(60), title="Already done", done_at=NOW)
    task(chicago, NOW, title="Chicago's")

    assert services.send_digests(NOW) == 1
    assert services.send_digests(NOW + minutes(1)) == 0
    [(recipients, message)] = smtp_server.inbox.messages
    assert recipients == [shanghai.email]
    assert str(message["Subject"]) == "Your tasks for 2026-03-10: 2"
    body = message.get_content().replace("\r\n", "\n")
    assert "Overdue:\n- 2026-03-08 17:00 Overdue one (Acme)" in body
    assert "Today:\n- 2026-03-10 19:00 Tonight (Acme)" in body
    assert "Tomorrow" not in body and "Already done" not in body
    assert DigestDelivery.objects.get().local_date == datetime.date(2026, 3, 10)

    # Chicago's morning: 13:00 UTC is 08:00 CDT.
    assert services.send_digests(NOW + datetime.timedelta(hours=4)) == 1
    assert DigestDelivery.objects.filter(recipient=chicago, local_date=datetime.date(2026, 3, 10)).exists()
    # The next day in Shanghai, a new digest.
    assert services.send_digests(NOW + datetime.timedelta(days=1)) == 1


def test_a_digest_run_reads_the_users_time_zones_once_however_many_recipients(smtp_server, settings):
    settings.CRM_DIGEST_HOUR = 7
    zones = ["Asia/Shanghai", "Europe/Berlin", "America/Sao_Paulo"]  # 19:00, 12:00 and 08:00 at 11:00 UTC

    def recipients(numbers):
        for n in numbers:
            user = rep(f"rep{n}", time_zone=zones[n % len(zones)], daily_digest=True)
            task(user, NOW - datetime.timedelta(hours=1), title=f"Call {n}")

    def reads(at, sent):
        """A run's reads besides each recipient's own tasks (one query each), and how many of those."""
        with CaptureQueriesContext(connection) as run:
            assert services.send_digests(at) == sent
        selects = [q["sql"] for q in run.captured_queries if q["sql"].startswith("SELECT")]
        own = [sql for sql in selects if 'FROM "tasks_task"' in sql]
        return [sql for sql in selects if sql not in own], len(own)

    recipients(range(2))
    few, tasks_read = reads(NOW + datetime.timedelta(hours=2), sent=2)
    assert tasks_read == 2
    recipients(range(2, 6))
    many, tasks_read = reads(NOW + datetime.timedelta(days=1, hours=2), sent=6)
    assert tasks_read == 6

    assert len(many) == len(few)
    # A run once everyone has theirs (every minute after that, all day) reads the preferences and the
    # deliveries, not the zones.
    with CaptureQueriesContext(connection) as again:
        assert services.send_digests(NOW + datetime.timedelta(days=1, hours=3)) == 0
    assert len(again) == 2
    # What each received is as before: their overdue task, once a day.
    received = {(d.recipient.username, d.local_date.day, d.task_count) for d in DigestDelivery.objects.all()}
    assert received == {(f"rep{n}", 10, 1) for n in range(2)} | {(f"rep{n}", 11, 1) for n in range(6)}
    assert len(smtp_server.inbox.messages) == 8


def test_a_day_with_nothing_due_sends_no_digest(smtp_server):
    rep("sh", time_zone="Asia/Shanghai", daily_digest=True)
    assert services.send_digests(NOW) == 0
    assert DigestDelivery.objects.get().task_count == 0
    assert smtp_server.inbox.messages == []


@pytest.mark.parametrize("tasks", [1, 20])
def test_a_run_with_nothing_due_costs_the_same_queries(django_assert_num_queries, tasks):
    user = rep()
    for number in range(tasks):
        task(user, NOW + datetime.timedelta(days=2, minutes=number))
    with django_assert_num_queries(1):
        assert services.send_due_reminders(NOW) == 0
    assert timezone.now()


def test_a_refused_email_is_tried_again_until_the_mail_server_takes_it(settings):
    from tests.smtp import SMTPServer

    settings.EMAIL_BACKEND = "django.core.mail.backends.smtp.EmailBackend"
    settings.EMAIL_HOST, settings.EMAIL_PORT, settings.EMAIL_TIMEOUT = "127.0.0.1", 9, 2
    user = rep()
    task(user, NOW + minutes(15))
    assert services.send_due_reminders(NOW) == 1
    delivery = ReminderDelivery.objects.get()
    assert (delivery.email_attempts, delivery.next_email_at) == (1, NOW + minutes(1))

    # Still down a minute later: the next try waits longer.
    assert services.retry_emails(NOW + minutes(1)) == 0
    delivery.refresh_from_db()
    assert (delivery.email_attempts, delivery.next_email_at) == (2, NOW + minutes(6))
    assert services.retry_emails(NOW + minutes(5)) == 0  # not yet

    server = SMTPServer().start()
    try:
        settings.EMAIL_PORT = server.port
        assert services.retry_emails(NOW + minutes(6)) == 1
        assert services.retry_emails(NOW + minutes(60)) == 0
        [(recipients, message)] = server.inbox.messages
    finally:
        server.stop()
    assert recipients == [user.email] and str(message["Subject"]) == "Reminder: Call back at 09:15"
    delivery.refresh_from_db()
    assert delivery.emailed_at is not None and delivery.next_email_at is None and delivery.email_error == ""
    assert delivery.email_attempts == 3
    assert Notification.objects.count() == 1  # the notification was never repeated


def test_a_refused_email_is_given_up_after_the_last_try(settings):
    settings.EMAIL_BACKEND = "django.core.mail.backends.smtp.EmailBackend"
    settings.EMAIL_HOST, settings.EMAIL_PORT, settings.EMAIL_TIMEOUT = "127.0.0.1", 9, 2
    task(rep(), NOW + minutes(15))
    services.send_due_reminders(NOW)
    later = NOW
    for wait in services.EMAIL_RETRY_WAITS:
        later += wait
        assert services.retry_emails(later) == 0

    delivery = ReminderDelivery.objects.get()
    assert delivery.email_attempts == services.MAX_EMAIL_ATTEMPTS
    assert delivery.next_email_at is None and delivery.emailed_at is None
    assert "ConnectionRefusedError" in delivery.email_error
    assert services.retry_emails(later + minutes(600)) == 0


def test_an_email_left_by_a_stopped_worker_is_sent_once_after_its_lease(smtp_server):
    user = rep()
    item = task(user, NOW + minutes(15))
    item.remind_at = NOW
    # A worker claimed the reminder (notification written) and stopped before emailing.
    services.claim_reminder(item, NOW)
    delivery = ReminderDelivery.objects.get()
    assert delivery.next_email_at == NOW + services.EMAIL_LEASE

    assert services.retry_emails(NOW + minutes(1)) == 0  # its worker may still be sending it
    assert services.retry_emails(NOW + services.EMAIL_LEASE) == 1
    assert services.retry_emails(NOW + minutes(30)) == 0
    assert len(smtp_server.inbox.messages) == 1


@pytest.mark.parametrize("change", ["deactivated", "role taken away"])
def test_an_email_to_retry_is_given_up_once_its_recipient_has_no_role(smtp_server, change):
    user = rep()
    item = task(user, NOW + minutes(15))
    item.remind_at = NOW
    # A worker claimed the reminder (notification written) and stopped before emailing.
    services.claim_reminder(item, NOW)
    if change == "deactivated":
        user.is_active = False
        user.save()
    else:
        user.groups.clear()

    assert services.retry_emails(NOW + services.EMAIL_LEASE) == 0
    assert smtp_server.inbox.messages == []
    delivery = ReminderDelivery.objects.get()
    assert delivery.emailed_at is None and delivery.next_email_at is None
    assert delivery.email_error == "The recipient no longer has a role."
    # Given a role again, the old email is not sent after all.
    user.is_active = True
    user.save()
    user.groups.add(Group.objects.get(name="Sales rep"))
    assert services.retry_emails(NOW + minutes(60)) == 0
    assert smtp_server.inbox.messages == []


def test_a_retry_taken_by_another_worker_is_left_to_it(smtp_server):
    user = rep()
    item = task(user, NOW + minutes(15))
    item.remind_at = NOW
    services.claim_reminder(item, NOW)
    # Another worker's retry took the row (its compare-and-set moved the lease on).
    ReminderDelivery.objects.update(next_email_at=NOW + services.EMAIL_LEASE + minutes(2))

    assert services.retry_emails(NOW + services.EMAIL_LEASE) == 0
    assert smtp_server.inbox.messages == []


def test_a_title_with_control_characters_has_them_left_out_of_the_subject(smtp_server):
    # A terminal's escape or a stray control byte in a title went into the subject as it was, which stricter
    # mail servers refuse; the notification keeps the title as typed.
    user = rep()
    task(user, NOW + minutes(15), title="Call\x1b[31m back\x01 \x7fsoon\x9b")

    assert services.send_due_reminders(NOW) == 1
    [(_recipients, message)] = smtp_server.inbox.messages
    assert str(message["Subject"]) == "Reminder: Call[31m back soon at 09:15"
    assert "Call\x1b[31m back\x01" in Notification.objects.get().title
