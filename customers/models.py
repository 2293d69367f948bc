from django.db import models
from django.db.models.functions import Lower
from django.utils.translation import gettext_lazy as _

from crm_site.history import CRMHistoricalRecords


class Customer(models.Model):
    class Status(models.TextChoices):
        LEAD = "lead", _("Lead")
        PROSPECT = "prospect", _("Prospect")
        ACTIVE = "active", _("Active")
        INACTIVE = "inactive", _("Inactive")

    # Optional text is NULL when unset: the original API returned null, and clients rely on it.
    name = models.CharField(_("name"), max_length=200)
    company = models.CharField(_("company"), max_length=200, null=True, blank=True)  # noqa: DJ001
    email = models.EmailField(_("email"), max_length=254, null=True, blank=True)  # noqa: DJ001
    phone = models.CharField(_("phone"), max_length=32, null=True, blank=True)  # noqa: DJ001
    status = models.CharField(_("status"), max_length=16, choices=Status.choices, default=Status.ACTIVE)
    created_at = models.DateTimeField(_("created at"), auto_now_add=True)
    updated_at = models.DateTimeField(_("updated at"), auto_now=True)
    # Who changed what and when; updated_at is left out: history_date says it.
    history = CRMHistoricalRecords(excluded_fields=["updated_at"])

    class Meta:
        ordering = ["-created_at", "-id"]
        verbose_name = _("customer")
        verbose_name_plural = _("customers")
        constraints = [
            models.UniqueConstraint(Lower("email"), name="customer_email_ci_unique"),
            models.CheckConstraint(condition=~models.Q(name=""), name="customer_name_not_blank"),
        ]
        indexes = [
            models.Index(fields=["-created_at", "-id"], name="customer_newest_idx"),
            models.Index(fields=["status", "-created_at"], name="customer_status_idx"),
        ]

    def __str__(self):
        return f"{self.name} ({self.company})" if self.company else self.name
