from decimal import Decimal

from django.core.validators import MaxValueValidator, MinValueValidator
from django.db import models
from django.utils.translation import gettext_lazy as _


class Opportunity(models.Model):
    class Stage(models.TextChoices):
        LEAD = "lead", _("Lead")
        PROPOSAL = "proposal", _("Proposal")
        NEGOTIATION = "negotiation", _("Negotiation")
        CLOSED = "closed", _("Closed (won)")
        LOST = "lost", _("Lost")

    # Win probability (%) a stage implies when the client does not give one.
    DEFAULT_PROBABILITY = {
        Stage.LEAD: 10,
        Stage.PROPOSAL: 40,
        Stage.NEGOTIATION: 70,
        Stage.CLOSED: 100,
        Stage.LOST: 0,
    }
    OPEN_STAGES = (Stage.LEAD, Stage.PROPOSAL, Stage.NEGOTIATION)

    customer = models.ForeignKey(
        "customers.Customer",
        verbose_name=_("customer"),
        on_delete=models.CASCADE,
        related_name="opportunities",
    )
    title = models.CharField(_("title"), max_length=200)
    value = models.DecimalField(
        _("value"), max_digits=14, decimal_places=2, default=Decimal("0"), validators=[MinValueValidator(Decimal("0"))]
    )
    stage = models.CharField(_("stage"), max_length=16, choices=Stage.choices, default=Stage.LEAD)
    probability = models.PositiveSmallIntegerField(
        _("probability (%)"),
        blank=True,
        validators=[MinValueValidator(0), MaxValueValidator(100)],
        help_text=_("Left empty, the stage's default is used."),
    )
    created_at = models.DateTimeField(_("created at"), auto_now_add=True)
    updated_at = models.DateTimeField(_("updated at"), auto_now=True)

    class Meta:
        ordering = ["-created_at", "-id"]
        verbose_name = _("opportunity")
        verbose_name_plural = _("opportunities")
        constraints = [
            models.CheckConstraint(condition=models.Q(value__gte=0), name="opportunity_value_non_negative"),
            models.CheckConstraint(condition=models.Q(probability__lte=100), name="opportunity_probability_max_100"),
            models.CheckConstraint(condition=~models.Q(title=""), name="opportunity_title_not_blank"),
        ]
        indexes = [
            models.Index(fields=["-created_at", "-id"], name="opportunity_newest_idx"),
            models.Index(fields=["customer", "-created_at"], name="opportunity_customer_idx"),
            models.Index(fields=["stage", "-created_at"], name="opportunity_stage_idx"),
        ]

    def __str__(self):
        return self.title

    def save(self, *args, **kwargs):
        if self.probability is None:
            self.probability = self.DEFAULT_PROBABILITY[self.stage]
        super().save(*args, **kwargs)

    @property
    def is_open(self):
        return self.stage in self.OPEN_STAGES
