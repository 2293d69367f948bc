from django.db import models
from django.utils import timezone
from django.utils.translation import gettext_lazy as _

from core.dates import validate_record_date
from core.fields import created_by_field, external_id_field, external_id_unique
from core.history import CRMHistoricalRecords
from core.models import RecordedModel


class Interaction(RecordedModel):
    class Type(models.TextChoices):
        CALL = "call", _("Call")
        EMAIL = "email", _("Email")
        MEETING = "meeting", _("Meeting")
        OTHER = "other", _("Other")

    customer = models.ForeignKey(
        "customers.Customer",
        verbose_name=_("customer"),
        on_delete=models.CASCADE,
        related_name="interactions",
    )
    interaction_type = models.CharField(_("type"), max_length=16, choices=Type.choices)
    notes = models.TextField(_("notes"), null=True, blank=True)  # noqa: DJ001
    # When it happened; may be earlier than created_at when logged afterwards.
    occurred_at = models.DateTimeField(_("occurred at"), default=timezone.now, validators=[validate_record_date])
    created_at = models.DateTimeField(_("created at"), auto_now_add=True)
    external_id = external_id_field()
    created_by = created_by_field()
    # Who changed what and when.
    history = CRMHistoricalRecords()

    class Meta:
        ordering = ["-created_at", "-id"]
        verbose_name = _("interaction")
        verbose_name_plural = _("interactions")
        constraints = [external_id_unique("interaction")]
        indexes = [
            models.Index(fields=["-created_at", "-id"], name="interaction_newest_idx"),
            models.Index(fields=["customer", "-created_at"], name="interaction_customer_idx"),
            models.Index(fields=["customer", "-occurred_at"], name="interaction_customer_when_idx"),
            # The newest first, and the dashboard's activities since a date by the customer's owner (from the
            # index alone, with customer_owner_idx).
            models.Index(fields=["occurred_at", "id"], include=["customer"], name="interaction_when_idx"),
            # Behind the admin list's sorts: the column, then the admin's own ordering if it has one, else
            # the newest id first (Django's tie-break).
            models.Index(fields=["interaction_type", "-occurred_at", "-id"], name="interaction_type_sort_idx"),
        ]

    def __str__(self):
        return f"{self.get_interaction_type_display()} · {self.customer_id}"
