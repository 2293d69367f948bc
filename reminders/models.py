"""What was sent: one row per reminder and per digest, claimed before anything is sent.

The unique keys make each send happen once, whatever the number of workers: a
worker inserts the row first, in the transaction that also writes the
notification; a second worker's insert of the same key fails, and it sends nothing.

The row also keeps the email (address, subject, body) until it is sent: an email
the mail server refused, or that a worker stopped before sending, is tried again
(``reminders.services.retry_emails``) until it goes or ``MAX_EMAIL_ATTEMPTS`` fail.
"""

from django.conf import settings
from django.db import models
from django.utils import timezone
from django.utils.translation import gettext_lazy as _


class Sent(models.Model):
    """Who it went to, when it was claimed, and what became of its email."""

    recipient = models.ForeignKey(
        settings.AUTH_USER_MODEL, verbose_name=_("recipient"), on_delete=models.CASCADE, related_name="+"
    )
    claimed_at = models.DateTimeField(_("claimed at"), default=timezone.now)
    emailed_at = models.DateTimeField(_("emailed at"), null=True, blank=True)
    email_error = models.CharField(_("email error"), max_length=500, blank=True, default="")
    email_to = models.CharField(_("email to"), max_length=254, blank=True, default="")
    email_subject = models.CharField(_("email subject"), max_length=255, blank=True, default="")
    email_body = models.TextField(_("email body"), blank=True, default="")
    email_attempts = models.PositiveSmallIntegerField(_("email attempts"), default=0)
    # When the email is (tried) next: a lease while a worker sends it, then the retry's time;
    # empty once it is sent, or given up.
    next_email_at = models.DateTimeField(_("next email at"), null=True, blank=True, db_index=True)

    class Meta:
        abstract = True


class ReminderDelivery(Sent):
    task = models.ForeignKey(
        "tasks.Task", verbose_name=_("task"), on_delete=models.CASCADE, related_name="reminder_deliveries"
    )
    # due_at minus the lead time when it was sent: a task rescheduled (snoozed) gets a new key.
    remind_at = models.DateTimeField(_("remind at"))

    class Meta:
        ordering = ["-claimed_at", "-id"]
        verbose_name = _("reminder sent")
        verbose_name_plural = _("reminders sent")
        constraints = [models.UniqueConstraint(fields=["task", "remind_at"], name="reminder_once_per_task_time")]

    def __str__(self):
        return f"{self.task_id} @ {self.remind_at:%Y-%m-%d %H:%M}"


class DigestDelivery(Sent):
    # The day of the digest in the recipient's time zone.
    local_date = models.DateField(_("day"))
    task_count = models.PositiveIntegerField(_("tasks"), default=0)

    class Meta:
        ordering = ["-claimed_at", "-id"]
        verbose_name = _("digest sent")
        verbose_name_plural = _("digests sent")
        constraints = [models.UniqueConstraint(fields=["recipient", "local_date"], name="digest_once_per_user_day")]

    def __str__(self):
        return f"{self.recipient_id} {self.local_date}"
