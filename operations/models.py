from django.conf import settings
from django.db import models
from django.utils.translation import gettext_lazy as _

from .vendors import COMPANIES, CUSTOMERS, DEALS


class ColumnMapping(models.Model):
    """The fields a user chose for the columns of a file (``operations/switching.py``), kept for their next
    file with the same headers (``signature``: the headers, case and spacing aside)."""

    class Kind(models.TextChoices):
        COMPANIES = COMPANIES, _("Companies")
        CUSTOMERS = CUSTOMERS, _("Customers")
        DEALS = DEALS, _("Deals")

    user = models.ForeignKey(
        settings.AUTH_USER_MODEL, verbose_name=_("user"), on_delete=models.CASCADE, related_name="column_mappings"
    )
    signature = models.TextField(_("headers"))
    kind = models.CharField(_("records"), max_length=16, choices=Kind.choices)
    # Header (lower-cased, spaces collapsed) -> field; "" for a column left out.
    mapping = models.JSONField(_("mapping"), default=dict)
    updated_at = models.DateTimeField(_("updated at"), auto_now=True)

    class Meta:
        ordering = ["-updated_at", "-id"]
        verbose_name = _("column mapping")
        verbose_name_plural = _("column mappings")
        constraints = [
            models.UniqueConstraint(fields=["user", "signature"], name="columnmapping_user_signature_unique"),
        ]

    def __str__(self):
        return ", ".join(header for header in self.signature.split("\x1f") if header)[:100]
