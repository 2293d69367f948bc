from decimal import Decimal

from django.core.validators import MaxValueValidator, MinValueValidator
from django.db import models
from django.utils import timezone
from django.utils.translation import gettext_lazy as _

from core import changesets
from core.dates import validate_record_date
from core.fields import created_by_field, custom_fields_field, external_id_field, external_id_unique
from core.history import CRMHistoricalRecords
from core.models import RecordedModel
from core.tags import TaggedModel

from . import parts


class Opportunity(TaggedModel, RecordedModel):
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
    expected_close_date = models.DateField(
        _("expected close date"), null=True, blank=True, validators=[validate_record_date]
    )
    # Set when the stage becomes closed or lost, cleared when the opportunity is reopened.
    closed_at = models.DateTimeField(_("closed at"), null=True, blank=True, editable=False)
    # Why a lost deal was lost: given to a lost deal only, cleared when it is reopened or won
    # (``services.check_lost_reason``, ``services.opportunity_set_stage``).
    lost_reason = models.CharField(_("lost reason"), max_length=200, blank=True, default="", db_default="")
    created_at = models.DateTimeField(_("created at"), auto_now_add=True)
    updated_at = models.DateTimeField(_("updated at"), auto_now=True)
    external_id = external_id_field()
    # Values of the fields managers define (core/customfields.py).
    custom_fields = custom_fields_field()
    created_by = created_by_field()
    # The company the deal is with: by default its customer's, when it is created.
    company = models.ForeignKey(
        "companies.Company",
        verbose_name=_("company"),
        on_delete=models.SET_NULL,
        null=True,
        blank=True,
        related_name="opportunities",
    )
    # The tags' rows, kept in step with ``tags`` by save() (core/tags.py): filters and counts query them.
    tag_set = models.ManyToManyField(
        "core.Tag", verbose_name=_("tags"), blank=True, related_name="opportunities", editable=False
    )
    # Who changed what and when; updated_at is left out: history_date says it.
    history = CRMHistoricalRecords(excluded_fields=["updated_at"])

    # Set by services.opportunity_set_stage until the next save.
    stage_rules_applied = False

    class Meta:
        ordering = ["-created_at", "-id"]
        verbose_name = _("opportunity")
        verbose_name_plural = _("opportunities")
        constraints = [
            models.CheckConstraint(condition=models.Q(value__gte=0), name="opportunity_value_non_negative"),
            models.CheckConstraint(condition=models.Q(probability__lte=100), name="opportunity_probability_max_100"),
            models.CheckConstraint(condition=~models.Q(title=""), name="opportunity_title_not_blank"),
            external_id_unique("opportunity"),
        ]
        indexes = [
            models.Index(fields=["-created_at", "-id"], name="opportunity_newest_idx"),
            models.Index(fields=["customer", "-created_at"], name="opportunity_customer_idx"),
            models.Index(fields=["stage", "-created_at"], name="opportunity_stage_idx"),
            models.Index(fields=["stage", "expected_close_date"], name="opportunity_close_idx"),
            models.Index(fields=["company", "stage"], name="opportunity_company_idx"),
            # The customer list's "open opportunities" filter: a probe per customer, from the index alone.
            models.Index(
                fields=["customer"],
                name="opportunity_open_customer_idx",
                condition=models.Q(stage__in=["lead", "proposal", "negotiation"]),
            ),
            # The deals won since a date (the dashboard's "won this month").
            models.Index(
                fields=["closed_at"],
                include=["customer", "value", "probability", "id"],
                name="opportunity_won_idx",
                condition=models.Q(stage="closed"),
            ),
            # The pipeline report's lost deals by reason, counted and summed from the index alone.
            models.Index(
                fields=["lost_reason"],
                include=["value", "id"],
                name="opportunity_lost_reason_idx",
                condition=models.Q(stage="lost"),
            ),
            # Behind the admin list's sorts: the column, then the admin's own ordering if it has one, else
            # the newest id first (Django's tie-break).
            models.Index(fields=["title", "-id"], name="opportunity_title_sort_idx"),
            models.Index(fields=["value", "-id"], name="opportunity_value_sort_idx"),
            models.Index(fields=["stage", "-id"], name="opportunity_stage_sort_idx"),
            models.Index(fields=["probability", "-id"], name="opportunity_prob_sort_idx"),
            models.Index(fields=["expected_close_date", "-id"], name="opportunity_close_sort_idx"),
        ]

    def __str__(self):
        return self.title

    def save(self, *args, **kwargs):
        if not self.stage_rules_applied and not changesets.restoring(self):
            # Saved without going through the service (a script, a fixture): the stage rules hold all the same.
            # An undo puts back the values it had (core/changesets.py), its closed_at too.
            # Imported here: the services build on this module.
            from .services import opportunity_set_stage

            opportunity_set_stage(opportunity=self, stage=self.stage, probability=self.probability)
        previous_stage = self.stored_stage
        update_fields = kwargs.get("update_fields")
        if update_fields is not None and "stage" in update_fields:
            kwargs["update_fields"] = {*update_fields, "closed_at", "lost_reason"}
        creating = self._state.adding
        if creating and self.company_id is None and self.customer_id is not None:
            # With its customer's company, unless another was named.
            self.company_id = self.customer.company_id
        moved = not creating and self.customer_id != getattr(self, "_loaded_customer_id", self.customer_id)
        super().save(*args, **kwargs)
        self._loaded_customer_id = self.customer_id
        if moved:
            for follow in parts.MOVED:
                follow(self)
        # An undo that puts the log back itself (core/changesets.py) writes no entry of its own.
        if (creating or previous_stage != self.stage) and not changesets.restores_log(self):
            StageChange.objects.create(
                opportunity=self,
                from_stage=None if creating else previous_stage,
                to_stage=self.stage,
                changed_at=self.updated_at,
            )
        self._loaded_stage = self.stage
        self._loaded_lost_reason = self.lost_reason
        self.stage_rules_applied = False

    def clean(self):
        super().clean()
        # Imported here: the services build on this module.
        from .services import check_lost_reason

        check_lost_reason(opportunity=self, stage=self.stage, lost_reason=self.lost_reason)

    @classmethod
    def from_db(cls, db, field_names, values):
        instance = super().from_db(db, field_names, values)
        # Remember the stage as loaded, so that save() can record a change of stage; the customer, so that what
        # belongs to the deal's customer can follow it to another (``parts.on_customer_change``).
        instance._loaded_stage = instance.__dict__.get("stage")
        instance._loaded_customer_id = instance.__dict__.get("customer_id")
        # The lost reason as loaded: sent back as it is, it is no new reason (``services.check_lost_reason``).
        instance._loaded_lost_reason = instance.__dict__.get("lost_reason")
        return instance

    @property
    def stored_stage(self):
        """The stage as last loaded or saved; None for a new opportunity."""
        return getattr(self, "_loaded_stage", None)

    @property
    def stored_lost_reason(self):
        """The lost reason as last loaded or saved; empty for a new opportunity."""
        return getattr(self, "_loaded_lost_reason", None) or ""

    @property
    def is_open(self):
        return self.stage in self.OPEN_STAGES


class StageChange(models.Model):
    """One step of an opportunity through the pipeline (its creation included), for timelines."""

    # A log without history of its own, recorded in changesets with its deal (undone with it).
    opportunity = models.ForeignKey(
        Opportunity, verbose_name=_("opportunity"), on_delete=changesets.LOG_CASCADE, related_name="stage_changes"
    )
    from_stage = models.CharField(_("from stage"), max_length=16, choices=Opportunity.Stage.choices, null=True)  # noqa: DJ001
    to_stage = models.CharField(_("to stage"), max_length=16, choices=Opportunity.Stage.choices)
    changed_at = models.DateTimeField(_("changed at"), default=timezone.now)

    class Meta:
        ordering = ["-changed_at", "-id"]
        verbose_name = _("stage change")
        verbose_name_plural = _("stage changes")
        indexes = [models.Index(fields=["opportunity", "-changed_at"], name="stagechange_opportunity_idx")]

    def __str__(self):
        return f"{self.opportunity_id}: {self.from_stage or '-'} -> {self.to_stage}"


class PipelineFigure(models.Model):
    """Count, total and weighted value of the opportunities of one owner, stage and expected close month.

    PostgreSQL only (``opportunities/figures.py``): database triggers add a row of differences in the
    transaction of every change to an opportunity (or to its customer's owner), whatever made it;
    the figures of a key are the sum of its rows, folded together now and then (``figures.fold``).
    """

    owner_id = models.IntegerField(null=True)
    stage = models.CharField(max_length=16, choices=Opportunity.Stage.choices)
    close_month = models.DateField(null=True)
    count = models.BigIntegerField()
    total_value = models.DecimalField(max_digits=20, decimal_places=2)
    weighted_value = models.DecimalField(max_digits=24, decimal_places=4)

    class Meta:
        default_permissions = ()

    def __str__(self):
        return f"{self.owner_id} {self.stage} {self.close_month}: {self.count}"
