"""Webhook endpoints that managers register, and the log of what was sent to each."""

import base64
import secrets

from django.db import models
from django.utils import timezone
from django.utils.translation import gettext_lazy as _

from core.fields import created_by_field
from core.history import CRMHistoricalRecords

SECRET_PREFIX = "whsec_"


def new_secret():
    """A Standard Webhooks secret: ``whsec_`` and 32 random bytes in base64."""
    return SECRET_PREFIX + base64.b64encode(secrets.token_bytes(32)).decode()


class Endpoint(models.Model):
    url = models.URLField(_("URL"), max_length=2000)
    description = models.CharField(_("description"), max_length=255, blank=True, default="")
    # Event types to send ("customer.created", ...); empty means every type.
    event_types = models.JSONField(_("event types"), default=list, blank=True)
    is_active = models.BooleanField(_("active"), default=True)
    secret = models.CharField(_("secret"), max_length=100, default=new_secret, editable=False)
    # During a rotation, the old secret signs too until it expires, so receivers can switch over.
    previous_secret = models.CharField(max_length=100, blank=True, default="", editable=False)
    previous_secret_expires_at = models.DateTimeField(null=True, blank=True, editable=False)
    # Since when every delivery has failed (null: the last one succeeded); disables the endpoint after days.
    failing_since = models.DateTimeField(_("failing since"), null=True, blank=True, editable=False)
    disabled_reason = models.CharField(_("disabled because"), max_length=255, blank=True, default="")
    created_by = created_by_field()
    created_at = models.DateTimeField(_("created at"), default=timezone.now, editable=False)
    # Who changed the address, the event types or the active flag, and when. Secrets stay out of the
    # history (a revert keeps the current ones), as does the delivery state the worker keeps.
    history = CRMHistoricalRecords(
        excluded_fields=["secret", "previous_secret", "previous_secret_expires_at", "failing_since", "disabled_reason"]
    )

    class Meta:
        ordering = ["id"]
        verbose_name = _("webhook endpoint")
        verbose_name_plural = _("webhook endpoints")

    def __str__(self):
        return self.url

    def wants(self, event_type):
        return not self.event_types or event_type in self.event_types

    def signing_secrets(self, now):
        """The secrets whose signatures a delivery carries now: the current one, and the old one while it lasts."""
        found = [self.secret]
        if self.previous_secret and self.previous_secret_expires_at and self.previous_secret_expires_at > now:
            found.append(self.previous_secret)
        return found


class Delivery(models.Model):
    class Status(models.TextChoices):
        PENDING = "pending", _("pending")
        SUCCEEDED = "succeeded", _("succeeded")
        FAILED = "failed", _("failed")

    endpoint = models.ForeignKey(
        Endpoint, verbose_name=_("endpoint"), on_delete=models.CASCADE, related_name="deliveries"
    )
    # The event sent; null for a test event. Purging old events keeps their deliveries' log.
    event = models.ForeignKey(
        "core.Event", verbose_name=_("event"), on_delete=models.SET_NULL, null=True, blank=True, related_name="+"
    )
    # The ``webhook-id`` header: the same on every attempt, so receivers can drop duplicates.
    message_id = models.CharField(_("message id"), max_length=64)
    event_type = models.CharField(_("event type"), max_length=64)
    payload = models.JSONField(_("payload"))
    status = models.CharField(_("status"), max_length=16, choices=Status.choices, default=Status.PENDING)
    attempts = models.PositiveIntegerField(_("attempts"), default=0)
    next_attempt_at = models.DateTimeField(_("next attempt"), null=True, blank=True)
    last_attempt_at = models.DateTimeField(_("last attempt"), null=True, blank=True)
    response_status = models.PositiveIntegerField(_("response code"), null=True, blank=True)
    response_body = models.TextField(_("response body"), blank=True, default="")
    error = models.CharField(_("error"), max_length=500, blank=True, default="")
    duration_ms = models.PositiveIntegerField(_("duration (ms)"), null=True, blank=True)
    # A worker sending this delivery holds it until then, so that a second run of the job skips it.
    claimed_until = models.DateTimeField(null=True, blank=True, editable=False)
    created_at = models.DateTimeField(_("created at"), default=timezone.now)

    class Meta:
        ordering = ["id"]
        verbose_name = _("webhook delivery")
        verbose_name_plural = _("webhook deliveries")
        constraints = [
            models.UniqueConstraint(fields=["endpoint", "message_id"], name="webhook_delivery_once_per_message"),
        ]
        indexes = [models.Index(fields=["endpoint", "status", "id"], name="webhook_delivery_queue_idx")]

    def __str__(self):
        return f"{self.event_type} → {self.endpoint_id} ({self.status})"
