"""Email in: each user's private gateway address, and the mail it received."""

import secrets

from django.conf import settings
from django.db import IntegrityError, models, transaction
from django.utils import timezone
from django.utils.translation import gettext_lazy as _

from core import access


def new_token():
    # 100 bits, lower case: mail servers may change the case of an address's local part.
    return secrets.token_hex(13)[:25]


class GatewayAddress(models.Model):
    """``<token>@DJANGO_MAIL_GATEWAY_DOMAIN``: mail sent to it is logged for ``user``."""

    user = models.OneToOneField(
        settings.AUTH_USER_MODEL, verbose_name=_("user"), on_delete=models.CASCADE, related_name="mail_gateway"
    )
    token = models.CharField(_("token"), max_length=32, unique=True, default=new_token, editable=False)
    created_at = models.DateTimeField(_("created at"), default=timezone.now, editable=False)

    class Meta:
        ordering = ["id"]
        verbose_name = _("gateway address")
        verbose_name_plural = _("gateway addresses")

    def __str__(self):
        return self.address

    @property
    def address(self):
        return f"{self.token}@{settings.MAIL_GATEWAY_DOMAIN}"

    @classmethod
    def for_user(cls, user):
        """The user's address, created on first use."""
        found = cls.objects.filter(user=user).first()
        if found is not None:
            return found
        try:
            with transaction.atomic():
                return cls.objects.create(user=user)
        except IntegrityError:  # created meanwhile by a concurrent request
            return cls.objects.get(user=user)


def bcc_address_of(user):
    """The address shown as ``bcc_address``: None without a gateway domain, or for a user who may not write."""
    if not settings.MAIL_GATEWAY_DOMAIN or not access.can_write(user):
        return None
    return GatewayAddress.for_user(user).address


class InboundEmail(models.Model):
    """A message received by the gateway for ``user``: logged on customers, or kept for them to assign."""

    class Status(models.TextChoices):
        LOGGED = "logged", _("logged on customers")
        UNMATCHED = "unmatched", _("to assign")
        ASSIGNED = "assigned", _("assigned")

    user = models.ForeignKey(
        settings.AUTH_USER_MODEL, verbose_name=_("user"), on_delete=models.CASCADE, related_name="inbound_emails"
    )
    # The Message-ID header (or a digest of the message without one): the same mail is kept once per user.
    message_id = models.CharField(_("message id"), max_length=255)
    from_address = models.CharField(_("from"), max_length=320, blank=True, default="")
    to_addresses = models.JSONField(_("to and cc"), default=list, blank=True)
    subject = models.CharField(_("subject"), max_length=998, blank=True, default="")
    body = models.TextField(_("text"), blank=True, default="")
    sent_at = models.DateTimeField(_("sent at"), null=True, blank=True)
    received_at = models.DateTimeField(_("received at"), default=timezone.now)
    status = models.CharField(_("status"), max_length=16, choices=Status.choices)
    interactions = models.ManyToManyField(
        "interactions.Interaction", verbose_name=_("interactions"), blank=True, related_name="+"
    )

    class Meta:
        ordering = ["-received_at", "-id"]
        verbose_name = _("inbound email")
        verbose_name_plural = _("inbound emails")
        constraints = [models.UniqueConstraint(fields=["user", "message_id"], name="inbound_email_once_per_user")]
        indexes = [
            models.Index(fields=["message_id"], name="inbound_email_message_idx"),
            models.Index(fields=["user", "status"], name="inbound_email_user_status_idx"),
        ]

    def __str__(self):
        return self.subject or self.message_id
