from django.conf import settings
from django.db import models
from django.utils.translation import gettext_lazy as _

from core import access
from core.fields import created_by_field, custom_fields_field, external_id_field, external_id_unique
from core.history import CRMHistoricalRecords
from core.models import RecordedModel
from core.parts import built_once
from core.phones import E164_MAX_LENGTH, stored_forms
from core.tags import TaggedModel

from . import parts
from .names import NAME_KEY_MAX_LENGTH, domain_of, name_key


class CompanyQuerySet(models.QuerySet):
    def with_summary(self, *, seen_by=None):
        """Annotate the summary figures (``people_count``, ``open_pipeline_value``, ``last_interaction_at``).

        The apps whose records belong to a company register them (``companies.parts``),
        each a correlated subquery, so that a list page stays one query. The figures are
        those of the people ``seen_by`` sees (and of their deals and interactions): a rep's
        count their own people at the company; managers and read-only users (and None) get
        the whole company's.
        """
        if seen_by is None or access.sees_everything(seen_by):
            return self.annotate(**built_once(parts.FIGURES.items()))
        return self.annotate(**{name: build(seen_by) for name, build in parts.FIGURES.items()})

    def named(self, name):
        """Companies whose name is ``name`` ignoring case and spacing, oldest first."""
        return self.filter(name_key=name_key(name)).order_by("pk")


class Company(TaggedModel, RecordedModel):
    class Size(models.TextChoices):
        MICRO = "1-10", _("1–10 employees")
        SMALL = "11-50", _("11–50 employees")
        MEDIUM = "51-200", _("51–200 employees")
        LARGE = "201-1000", _("201–1,000 employees")
        ENTERPRISE = "1001+", _("More than 1,000 employees")

    name = models.CharField(_("name"), max_length=200)
    # The name in one case and spacing: customers' ``company`` text is matched by it.
    name_key = models.CharField(_("name key"), max_length=NAME_KEY_MAX_LENGTH, editable=False, db_index=True)
    # Normalised (lower case, no scheme, no "www.", no path); NULL when unset, unique when set.
    domain = models.CharField(_("domain"), max_length=253, null=True, blank=True)  # noqa: DJ001
    website = models.URLField(_("website"), max_length=500, blank=True, default="")
    phone = models.CharField(_("phone"), max_length=32, blank=True, default="")
    # The number in E.164 (core/phones.py), set from ``phone`` on every save; empty when it is not a valid number.
    phone_e164 = models.CharField(  # noqa: DJ001
        _("phone (E.164)"), max_length=E164_MAX_LENGTH, null=True, blank=True, editable=False, db_index=True
    )
    # Its national significant number (the digits after the country code), set with it: search finds a number
    # written as it is dialled in its own country.
    phone_national = models.CharField(  # noqa: DJ001
        _("phone (national number)"), max_length=E164_MAX_LENGTH, null=True, blank=True, editable=False
    )
    address = models.TextField(_("address"), blank=True, default="")
    industry = models.CharField(_("industry"), max_length=100, blank=True, default="")
    size = models.CharField(_("size"), max_length=16, choices=Size.choices, blank=True, default="")
    notes = models.TextField(_("notes"), blank=True, default="")
    # The rep whose book the company is in; empty means visible to managers (and the reps of its people).
    owner = models.ForeignKey(
        settings.AUTH_USER_MODEL,
        verbose_name=_("owner"),
        on_delete=models.SET_NULL,
        null=True,
        blank=True,
        db_index=True,
        related_name="owned_companies",
    )
    created_at = models.DateTimeField(_("created at"), auto_now_add=True)
    updated_at = models.DateTimeField(_("updated at"), auto_now=True)
    external_id = external_id_field()
    # Values of the fields managers define (core/customfields.py).
    custom_fields = custom_fields_field()
    created_by = created_by_field()
    # The tags' rows, kept in step with ``tags`` by save() (core/tags.py): filters and counts query them.
    tag_set = models.ManyToManyField(
        "core.Tag", verbose_name=_("tags"), blank=True, related_name="companies", editable=False
    )
    history = CRMHistoricalRecords(excluded_fields=["updated_at", "name_key", "phone_e164", "phone_national"])

    objects = CompanyQuerySet.as_manager()

    class Meta:
        ordering = ["-created_at", "-id"]
        verbose_name = _("company")
        verbose_name_plural = _("companies")
        constraints = [
            models.UniqueConstraint(fields=["domain"], name="company_domain_unique"),
            models.CheckConstraint(condition=~models.Q(name=""), name="company_name_not_blank"),
            external_id_unique("company"),
        ]
        indexes = [
            models.Index(fields=["-created_at", "-id"], name="company_newest_idx"),
            # Behind the admin list's sorts: the column, then the admin's own ordering if it has one, else
            # the newest id first (Django's tie-break).
            models.Index(fields=["name", "-id"], name="company_name_sort_idx"),
            models.Index(fields=["industry", "-id"], name="company_industry_sort_idx"),
            models.Index(fields=["size", "-id"], name="company_size_sort_idx"),
            models.Index(fields=["phone", "-id"], name="company_phone_sort_idx"),
            models.Index(fields=["domain", "-id"], name="company_domain_sort_idx"),
            models.Index(fields=["phone_e164", "-id"], name="company_phone_valid_sort_idx"),
            models.Index(fields=["owner", "-id"], name="company_owner_sort_idx"),
            # The search by number written without its country code (core.phones.search_q).
            models.Index(fields=["phone_national"], name="company_phone_national_idx"),
        ]

    def __str__(self):
        return self.name

    def save(self, *args, **kwargs):
        self.set_derived_fields()
        update_fields = kwargs.get("update_fields")
        if update_fields is not None:
            if "name" in update_fields:
                update_fields = {*update_fields, "name_key"}
            if "phone" in update_fields:
                update_fields = {*update_fields, "phone_e164", "phone_national"}
            kwargs["update_fields"] = update_fields
        renamed = not self._state.adding and self.name != getattr(self, "_loaded_name", self.name)
        super().save(*args, **kwargs)
        self._loaded_name = self.name
        if renamed:
            for follow in parts.RENAMED:
                follow(self)

    def set_derived_fields(self):
        """The name with its spaces collapsed and its key, the domain normalised, the number's E.164 form and
        national significant number."""
        self.name = " ".join(self.name.split())
        self.name_key = name_key(self.name)
        self.domain = domain_of(self.domain) or None
        self.phone_e164, self.phone_national = stored_forms(self.phone)

    @classmethod
    def from_db(cls, db, field_names, values):
        instance = super().from_db(db, field_names, values)
        # The name as loaded, so that save() can tell its records of a new name.
        instance._loaded_name = instance.__dict__.get("name")
        return instance
