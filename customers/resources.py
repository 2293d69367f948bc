from django.core.exceptions import ValidationError
from django.db import connections, router
from django.db.models import Q
from django.db.models.functions import Lower
from django.db.models.lookups import In
from django.utils.translation import gettext_lazy as _
from import_export import fields, widgets

from companies.models import Company
from companies.names import name_key
from companies.services import CompaniesByName
from core import access
from core.resources import CRMModelResource, cell_text, file_line, tags_field

from .imports import COLUMNS
from .models import Customer
from .serializers import CustomerSerializer


def email_key(email):
    """An email as the file's read-ahead of its customers compares it (``CRMModelResource.lock_named_records``): as
    ``Customer.objects.with_email`` does, by the database's LOWER(), for emails in ASCII only, whose letters the
    databases lower as Python does (SQLite's LOWER() lowers no other letter, PostgreSQL's lowers a word's last Σ to
    σ where Python writes ς); None for the others, looked up row by row."""
    return email.lower() if email.isascii() else None


class CustomerResource(CRMModelResource):
    """Customers in and out. Without an id, a row updates the customer with its email (any case).

    Two rows of one file with the same email (in any case) would be one customer
    changed twice: the later row is an error.
    """

    serializer_class = CustomerSerializer
    required_columns = ("name",)
    header_aliases = COLUMNS
    # The company's name, as in the API: importing it links the customer to that company.
    company = fields.Field(attribute="company_name", column_name="company")

    tags = tags_field()

    class Meta:
        model = Customer
        fields = ("id", "name", "company", "email", "phone", "status", "created_at", "external_id", "tags")
        export_order = fields
        name = _("Customers")

    def __init__(self, user=None, **kwargs):
        super().__init__(user=user, **kwargs)
        self.line_of_email = {}
        # The companies the rows name, looked up once for the file (``before_import``), and where its list of the
        # companies made stood before the current row (``row_rolled_back``).
        self.named_companies = None
        self._companies_made = 0

    def before_import(self, dataset, **kwargs):
        self.named_companies = None
        super().before_import(dataset, **kwargs)
        if self.read_ahead:
            # After the rows' records are locked: a row's save locks the name of a company it makes after its
            # record, as a save through the API does.
            names = self.column_cells(dataset, "company")
            self.named_companies = CompaniesByName(names, among=self._company_choices())

    def before_import_row(self, row, **kwargs):
        if self.named_companies is not None:
            self._companies_made = self.named_companies.mark()
        super().before_import_row(row, **kwargs)
        email = cell_text(row.get("email")).lower()
        if email:
            here = file_line(kwargs.get("row_number"), self.file_lines)
            line = self.line_of_email.setdefault(email, here)
            if line != here:
                raise ValidationError({"email": _("Line %(line)s of this file has the same email.") % {"line": line}})

    def find_instance(self, row):
        # By external_id first, then by email, in the order of the API's upserts.
        found = super().find_instance(row)
        email = cell_text(row.get("email"))
        if found is not None or not email:
            return found
        return self.named_record("email", email_key(email), self.scoped(Customer.objects.with_email(email)))

    def record_keys(self, dataset):
        keys = super().record_keys(dataset)
        emails = {email_key(text) for text in self.column_cells(dataset, "email")} - {None}
        if emails:
            keys["email"] = (emails, Q(In(Lower("email"), sorted(emails))))
        return keys

    def key_of(self, name, record):
        return email_key(record.email or "") if name == "email" else super().key_of(name, record)

    def row_rolled_back(self):
        super().row_rolled_back()
        if self.named_companies is not None:
            self.named_companies.rolled_back(self._companies_made)

    def parents_named(self, dataset):
        # The companies the rows name, found as a row's save finds its company by name (``Customer.link_company``).
        keys = {name_key(text) for text in self.column_cells(dataset, "company")} - {""}
        return [self.scoped(Company.objects.filter(name_key__in=keys))] if keys else []

    def _company_choices(self):
        return self.scoped(Company.objects.all())

    def apply_validated(self, instance, validated_data):
        super().apply_validated(instance, validated_data)
        # A company named by its name is one this user sees (or a new one).
        instance.company_choices = self._company_choices()
        instance.named_companies = self.named_companies

    def before_save_instance(self, instance, row, **kwargs):
        # New customers go into the importing user's book.
        if instance.pk is None and instance.owner_id is None and self.user is not None:
            instance.owner = self.user
        super().before_save_instance(instance, row, **kwargs)


# A cell the file's read-ahead of its customers gave no answer for (``CustomerWidget.named``).
_UNKNOWN = object()


def customer_key(text):
    """A customer cell's key as ``CustomerWidget`` finds its customer: ("id", id) for digits, ("email", key) for an
    email as ``email_key`` compares it (None beyond ASCII: looked up alone)."""
    if text.isdecimal():
        return ("id", int(text))
    key = email_key(text)
    return None if key is None else ("email", key)


class CustomerWidget(widgets.ForeignKeyWidget):
    """A customer given by id or by email (any case); exported as its id."""

    def __init__(self, **kwargs):
        super().__init__(Customer, **kwargs)
        # Set by the resource: customers outside this user's scope are answered as unknown.
        self.user = None
        # Set by the resource (``CustomerChildResource.read_named_customers``): the customers the file's cells name,
        # found once for the file, {``customer_key``: customer, or None for a key no customer has}; a cell whose key
        # is not there is looked up alone.
        self.named = None

    def clean(self, value, row=None, **kwargs):
        text = cell_text(value)
        if not text:
            raise ValueError(_("A customer id or email is required."))
        customer = self.named.get(customer_key(text), _UNKNOWN) if self.named is not None else _UNKNOWN
        if customer is _UNKNOWN:
            customers = Customer.objects.filter(pk=int(text)) if text.isdecimal() else Customer.objects.with_email(text)
            if self.user is not None:
                customers = access.scope(customers, self.user)
            customer = customers.first()
        if customer is None:
            raise ValueError(_("No customer with id or email “%(value)s”.") % {"value": text})
        return customer


class CustomerChildResource(CRMModelResource):
    """Columns of a record that belongs to a customer: ``customer`` (id or email) and, to read, its name."""

    customer = fields.Field(attribute="customer", column_name="customer", widget=CustomerWidget())
    customer_name = fields.Field(attribute="customer__name", column_name="customer_name", readonly=True)
    serializer_fields = {"customer": "customer_id"}

    def __init__(self, user=None, **kwargs):
        super().__init__(user=user, **kwargs)
        self.fields["customer"].widget.user = user

    def get_queryset(self):
        return super().get_queryset().select_related("customer")

    def customers_named(self, dataset):
        """The customers the rows name, by id or email as ``CustomerWidget`` finds them (a queryset, among those this
        user sees), and the keys (``customer_key``) of the cells naming them; (None, set()) for none."""
        ids, emails, keys = [], [], set()
        for text in self.column_cells(dataset, "customer"):
            if not text.isdecimal():
                emails.append(text)
            elif int(text) < 2**63:
                ids.append(int(text))
            else:
                continue
            keys.add(customer_key(text))
        if not (ids or emails):
            return None, set()
        return self.scoped(Customer.objects.filter(pk__in=ids) | Customer.objects.with_email_in(emails)), keys - {None}

    def parents_named(self, dataset):
        # The customers the rows name; before them, for records that point at a company too (a deal, created with
        # its customer's company), the customers' companies, in the order a company's delete locks them (the
        # company, then its people).
        customers, _keys = self.customers_named(dataset)
        if customers is None:
            return []
        if "company" not in {field.name for field in self._meta.model._meta.concrete_fields}:
            return [customers]
        return [Company.objects.filter(pk__in=customers.values("company")), customers]

    def hold_parents(self, dataset):
        super().hold_parents(dataset)
        self.read_named_customers(dataset)

    def read_named_customers(self, dataset):
        """Read the customers the rows name (``customers_named``) once for the file, after ``hold_parents`` held them:
        a row's customer cell then finds its customer among these (``CustomerWidget.named``) without a query of its
        own, and a key none of them has names no customer. Held to the import's end (the rows are one
        transaction), a customer deleted before them is not found, as a row alone would not find it, and one whose
        delete comes after waits for the import; the serializer still checks each row's customer is in this user's
        book as the API does. Outside a transaction nothing would hold them: each row finds its own then. A
        customer whose email is beyond ASCII, which the database may lower to a cell's email, leaves the emails to
        be looked up row by row."""
        widget = self.fields["customer"].widget
        widget.named = None
        customers, keys = self.customers_named(dataset) if dataset and self.read_ahead else (None, set())
        if customers is None or connections[router.db_for_write(self._meta.model)].get_autocommit():
            return
        named = dict.fromkeys(keys)
        emails_known = True
        for customer in customers.order_by("pk"):
            if ("id", customer.pk) in named:
                named[("id", customer.pk)] = customer
            email = email_key(customer.email or "")
            if customer.email and email is None:
                emails_known = False
            elif ("email", email) in named:
                named[("email", email)] = customer
        if not emails_known:
            named = {key: customer for key, customer in named.items() if key[0] == "id"}
        widget.named = named

    def serializer_value(self, column, value, serializer_field):
        if column == "customer":
            # Found by id or email here; the serializer then checks the id as the API does.
            return self.fields["customer"].widget.clean(value).pk
        return super().serializer_value(column, value, serializer_field)
