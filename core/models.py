from datetime import timedelta

from django.conf import settings
from django.db import models
from django.utils import timezone
from django.utils.translation import gettext_lazy as _

# How long a key is remembered; a retry after that is treated as a new request.
IDEMPOTENCY_KEY_TTL = timedelta(hours=24)


class IdempotencyKeyQuerySet(models.QuerySet):
    def expired(self, now=None):
        return self.filter(created_at__lt=(now or timezone.now()) - IDEMPOTENCY_KEY_TTL)


class IdempotencyKey(models.Model):
    """The first response to a POST sent with an ``Idempotency-Key`` header.

    The row is written in the same transaction as the change it records, so a
    key is either unused or bound to a finished response: a retry replays that
    response instead of writing twice.
    """

    user = models.ForeignKey(
        settings.AUTH_USER_MODEL, verbose_name=_("user"), on_delete=models.CASCADE, related_name="idempotency_keys"
    )
    key = models.CharField(_("key"), max_length=255)
    # sha256 of method, path and body: the same key with another request is refused.
    fingerprint = models.CharField(_("request fingerprint"), max_length=64)
    response_status = models.PositiveSmallIntegerField(_("response status"), null=True, blank=True)
    response_body = models.BinaryField(_("response body"), default=b"")
    response_headers = models.JSONField(_("response headers"), default=dict)
    created_at = models.DateTimeField(_("created at"), default=timezone.now)

    objects = IdempotencyKeyQuerySet.as_manager()

    class Meta:
        ordering = ["-created_at", "-id"]
        verbose_name = _("idempotency key")
        verbose_name_plural = _("idempotency keys")
        constraints = [models.UniqueConstraint(fields=["user", "key"], name="idempotency_key_user_key_unique")]
        indexes = [models.Index(fields=["created_at"], name="idempotency_key_created_idx")]

    def __str__(self):
        return f"{self.user_id}:{self.key}"

    @property
    def is_expired(self):
        return self.created_at < timezone.now() - IDEMPOTENCY_KEY_TTL


class RateCounter(models.Model):
    """A rate-limit counter (``core.api.throttling``) when the cache is the database's.

    Django's database cache stores pickled values and increments by a read and a
    write, so concurrent requests overshoot a limit; here a count is one integer
    that a single ``INSERT ... ON CONFLICT DO UPDATE`` checks and increments.
    """

    key = models.CharField(_("key"), max_length=255, primary_key=True)
    count = models.PositiveIntegerField(_("count"), default=0)
    # Unix time after which the counter no longer weighs on any window.
    expires = models.BigIntegerField(_("expires"))

    class Meta:
        ordering = ["key"]
        verbose_name = _("rate counter")
        verbose_name_plural = _("rate counters")
        indexes = [models.Index(fields=["expires"], name="rate_counter_expires_idx")]

    def __str__(self):
        return f"{self.key}={self.count}"
