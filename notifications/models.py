"""In-app notifications: a message to one user (a task reminder, a disabled webhook, mail to assign)."""

from django.conf import settings
from django.db import models
from django.utils import timezone
from django.utils.translation import gettext_lazy as _


class NotificationQuerySet(models.QuerySet):
    def for_user(self, user):
        """The notifications of ``user``: only their own, whatever their role."""
        return self.filter(recipient=user)

    def unread(self):
        return self.filter(read_at__isnull=True)

    def mark_read(self, now=None):
        """Mark the unread ones among these read; the number marked."""
        return self.unread().update(read_at=now or timezone.now())


class Notification(models.Model):
    recipient = models.ForeignKey(
        settings.AUTH_USER_MODEL, verbose_name=_("recipient"), on_delete=models.CASCADE, related_name="notifications"
    )
    # What it is about, dotted like event types: "task.reminder", "tasks.digest", "webhook.disabled", ...
    kind = models.CharField(_("kind"), max_length=64)
    title = models.CharField(_("title"), max_length=255)
    body = models.TextField(_("body"), blank=True, default="")
    # Where to look: a path in the CRM (the admin page of the record), or empty.
    url = models.CharField(_("link"), max_length=2000, blank=True, default="")
    created_at = models.DateTimeField(_("created at"), default=timezone.now, editable=False)
    read_at = models.DateTimeField(_("read at"), null=True, blank=True)

    objects = NotificationQuerySet.as_manager()

    class Meta:
        ordering = ["-created_at", "-id"]
        verbose_name = _("notification")
        verbose_name_plural = _("notifications")
        indexes = [
            models.Index(fields=["recipient", "-created_at", "-id"], name="notification_recipient_idx"),
            models.Index(
                fields=["recipient"], name="notification_unread_idx", condition=models.Q(read_at__isnull=True)
            ),
        ]

    def __str__(self):
        return self.title

    @property
    def is_read(self):
        return self.read_at is not None
