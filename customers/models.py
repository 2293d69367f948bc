import functools

from django.conf import settings
from django.db import models, router
from django.db.models import Value
from django.db.models.functions import Lower
from django.db.models.lookups import In
from django.utils.translation import gettext_lazy as _

from companies.services import company_for_name
from core.fields import created_by_field, custom_fields_field, external_id_field, external_id_unique
from core.history import CRMHistoricalRecords
from core.models import RecordedModel
from core.parts import built_once
from core.phones import E164_MAX_LENGTH, stored_forms
from core.prepared import PreparedValues
from core.tags import TaggedModel

from . import parts


@functools.cache
def _email_clash_query(excluding, using):
    """``Customer.objects.with_email(email)``, less one customer when ``excluding``, limited to one id, compiled once."""

    def build(email, *other):
        rows = Customer.objects.using(using).with_email(email)
        if excluding:
            rows = rows.exclude(pk=other[0])
        return rows.order_by().values_list("pk")[:1]

    email = "\x00email"
    return PreparedValues(build, using, sentinels=(email, PreparedValues.SENTINEL) if excluding else (email,))


def email_in_use(email, *, other_than=None):
    """Whether a customer other than the one with primary key ``other_than`` (an int) has the text ``email``,
    in any letter case."""
    using = router.db_for_read(Customer)
    if other_than is None:
        return _email_clash_query(False, using).get(email) is not None
    return _email_clash_query(True, using).get(email, other_than) is not None


class _LoweredIn(In):
    """``lhs IN (LOWER(%s), ...)``: each value lowered by the database, as cheap to build as a plain ``IN``
    (a ``Lower(Value(...))`` per value costs half a millisecond to compile)."""

    def batch_process_rhs(self, compiler, connection, rhs=None):
        sqls, params = super().batch_process_rhs(compiler, connection, rhs)
        return [f"LOWER({sql})" for sql in sqls], params


class CustomerQuerySet(models.QuerySet):
    def with_email(self, email):
        """Customers whose email is ``email`` in any letter case.

        ``LOWER(email) = LOWER(value)`` is the expression of the unique index
        (customer_email_ci_unique), so this is an index lookup; ``email__iexact``
        would be a scan (``LIKE`` on SQLite, ``UPPER()`` on PostgreSQL).
        """
        return self.alias(email_lower=Lower("email")).filter(email_lower=Lower(Value(email)))

    def with_email_in(self, emails):
        """Customers whose email is one of ``emails`` in any letter case, lowered by the database as
        :meth:`with_email` does (SQLite's ``LOWER()`` lowers ASCII letters only, Python's every letter)."""
        return self.filter(_LoweredIn(Lower("email"), list(emails)))

    def with_summary(self, *also):
        """Annotate the summary figures (``interaction_count``, ``open_pipeline_value``,
        ``last_interaction_at``, ...) and the other figures named in ``also``.

        The apps whose records belong to a customer register the figures
        (``customers.parts``). Each is a correlated subquery rather than a join:
        two joined relations would multiply each other's rows, and a list page
        stays one query.
        """
        figures = parts.FIGURES
        names = [name for name, figure in figures.items() if figure.in_summary]
        names += [name for name in also if not figures[name].in_summary]
        return self.annotate(**built_once((name, figures[name].build) for name in names))


class Customer(TaggedModel, RecordedModel):
    class Status(models.TextChoices):
        LEAD = "lead", _("Lead")
        PROSPECT = "prospect", _("Prospect")
        ACTIVE = "active", _("Active")
        INACTIVE = "inactive", _("Inactive")

    # Optional text is NULL when unset: the original API returned null, and clients rely on it.
    name = models.CharField(_("name"), max_length=200)
    # The company the customer belongs to (at most one); deleting it leaves the customer without one.
    company = models.ForeignKey(
        "companies.Company",
        verbose_name=_("company"),
        on_delete=models.SET_NULL,
        null=True,
        blank=True,
        related_name="customers",
    )
    # The linked company's name, kept beside the link (the API's ``company`` text, and what search
    # matches); set from the link on every save (``link_company``).
    company_name = models.CharField(  # noqa: DJ001
        _("company name"), max_length=200, null=True, blank=True, editable=False, db_column="company"
    )
    email = models.EmailField(_("email"), max_length=254, null=True, blank=True)  # noqa: DJ001
    phone = models.CharField(_("phone"), max_length=32, null=True, blank=True)  # noqa: DJ001
    # The number in E.164 (core/phones.py), set from ``phone`` on every save; empty when it is not a valid number.
    phone_e164 = models.CharField(  # noqa: DJ001
        _("phone (E.164)"), max_length=E164_MAX_LENGTH, null=True, blank=True, editable=False, db_index=True
    )
    # Its national significant number (the digits after the country code), set with it: search finds a number
    # written as it is dialled in its own country.
    phone_national = models.CharField(  # noqa: DJ001
        _("phone (national number)"), max_length=E164_MAX_LENGTH, null=True, blank=True, editable=False
    )
    status = models.CharField(_("status"), max_length=16, choices=Status.choices, default=Status.ACTIVE)
    created_at = models.DateTimeField(_("created at"), auto_now_add=True)
    updated_at = models.DateTimeField(_("updated at"), auto_now=True)
    # The rep whose book the customer is in; empty means visible to managers only.
    owner = models.ForeignKey(
        settings.AUTH_USER_MODEL,
        verbose_name=_("owner"),
        on_delete=models.SET_NULL,
        null=True,
        blank=True,
        db_index=True,
        related_name="owned_customers",
    )
    external_id = external_id_field()
    # Values of the fields managers define (core/customfields.py).
    custom_fields = custom_fields_field()
    created_by = created_by_field()
    # The tags' rows, kept in step with ``tags`` by save() (core/tags.py): filters and counts query them.
    tag_set = models.ManyToManyField(
        "core.Tag", verbose_name=_("tags"), blank=True, related_name="customers", editable=False
    )
    # Who changed what and when; updated_at is left out: history_date says it.
    history = CRMHistoricalRecords(excluded_fields=["updated_at", "phone_e164", "phone_national"])

    objects = CustomerQuerySet.as_manager()

    class Meta:
        ordering = ["-created_at", "-id"]
        verbose_name = _("customer")
        verbose_name_plural = _("customers")
        constraints = [
            models.UniqueConstraint(Lower("email"), name="customer_email_ci_unique"),
            models.CheckConstraint(condition=~models.Q(name=""), name="customer_name_not_blank"),
            external_id_unique("customer"),
        ]
        indexes = [
            models.Index(fields=["-created_at", "-id"], name="customer_newest_idx"),
            models.Index(fields=["status", "-created_at"], name="customer_status_idx"),
            # A customer's owner from the index alone: the dashboard's figures by owner join many rows to it.
            models.Index(fields=["id"], include=["owner"], name="customer_owner_idx"),
            # Behind the admin list's sorts: the column, then the admin's own ordering if it has one, else
            # the newest id first (Django's tie-break).
            models.Index(fields=["name", "-id"], name="customer_name_sort_idx"),
            models.Index(fields=["company_name", "-id"], name="customer_company_sort_idx"),
            models.Index(fields=["email", "-id"], name="customer_email_sort_idx"),
            models.Index(fields=["phone", "-id"], name="customer_phone_sort_idx"),
            models.Index(fields=["status", "-id"], name="customer_status_sort_idx"),
            models.Index(fields=["owner", "-id"], name="customer_owner_sort_idx"),
            # The search by number written without its country code (core.phones.search_q).
            models.Index(fields=["phone_national"], name="customer_phone_national_idx"),
        ]

    def __str__(self):
        return f"{self.name} ({self.company_name})" if self.company_name else self.name

    def save(self, *args, **kwargs):
        self.link_company()
        self.set_derived_fields()
        update_fields = kwargs.get("update_fields")
        if update_fields is not None:
            if {"company", "company_name"} & set(update_fields):
                update_fields = {*update_fields, "company", "company_name"}
            if "phone" in update_fields:
                update_fields = {*update_fields, "phone_e164", "phone_national"}
            kwargs["update_fields"] = update_fields
        super().save(*args, **kwargs)

    def set_derived_fields(self):
        """The number's E.164 form and national significant number (``core/phones.py``) from ``phone``."""
        self.phone_e164, self.phone_national = stored_forms(self.phone)

    def link_company(self):
        """Make ``company`` and ``company_name`` agree: the link wins; a name alone is linked.

        A name without a link (the API's ``company`` text, an import, old data) links
        the customer to the company of that name, ignoring case and spacing, or to a
        new one owned like the customer (``companies.services.company_for_name``).
        The writer's request sets ``company_choices``, the companies it sees: a name
        is looked up among those only. A write of many customers may set instead
        ``named_companies`` (``companies.services.CompaniesByName``), which looks the
        names up once for them all.
        """
        if self.company_id is not None:
            self.company_name = self.company.name
            return
        name = " ".join((self.company_name or "").split())
        if not name:
            self.company_name = None
            return
        named = getattr(self, "named_companies", None)
        if named is not None:
            self.company = named.company_for(name, owner=self.owner, created_by=self.created_by)
        else:
            among = getattr(self, "company_choices", None)
            self.company = company_for_name(name, owner=self.owner, created_by=self.created_by, among=among)
        self.company_name = self.company.name
