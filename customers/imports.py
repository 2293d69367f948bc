"""Reading customer spreadsheets (CSV or XLSX) for ``manage.py import_customers`` (see ``core/sheets.py``).

Rows are validated by the API's own ``CustomerSerializer``; customers are matched by email, ignoring case.
"""

from functools import partial

from companies.models import Company
from companies.names import name_key
from core import sheets
from core.sheets import ImportFileError, ImportReport, Sheet, cell_text, decode, error_text

from .models import Customer
from .serializers import CustomerSerializer

# Header (lower-cased) -> field. Chinese headers as the original CRM's users write them.
COLUMNS = {
    "name": "name",
    "姓名": "name",
    "客户名称": "name",
    "company": "company",
    "公司": "company",
    "email": "email",
    "邮箱": "email",
    "电子邮件": "email",
    "phone": "phone",
    "电话": "phone",
    "手机": "phone",
    "status": "status",
    "状态": "status",
    "external_id": "external_id",
    "外部编号": "external_id",
    "tags": "tags",
    "标签": "tags",
}
REQUIRED = ("name",)


open_sheet = partial(sheets.open_sheet, columns=COLUMNS, required=REQUIRED, custom_fields="customers")

__all__ = [
    "COLUMNS",
    "REQUIRED",
    "CustomerImport",
    "ImportFileError",
    "ImportReport",
    "Sheet",
    "cell_text",
    "decode",
    "error_text",
    "open_sheet",
]


class CustomerImport(sheets.SheetImport):
    """Validate (and unless ``dry_run``, save) rows, matching existing customers by external_id, then email."""

    serializer_class = CustomerSerializer
    kind = "customer"
    keys = ("external_id", "email")

    def key_of(self, name, value):
        # Another system's ids are compared as they are; emails ignoring case.
        return value if name == "external_id" else value.lower()

    def existing(self, name, cells):
        if name == "external_id":
            return {customer.external_id: customer for customer in Customer.objects.filter(external_id__in=cells)}
        # Found as the unique index compares emails, both sides lowered by the database (SQLite's LOWER() lowers
        # ASCII letters only), then keyed as the rows are.
        return {self.key_of(name, customer.email): customer for customer in Customer.objects.with_email_in(cells)}

    def parents_named(self, columns, rows):
        # The companies the rows name, found as a row's save finds its company by name (``Customer.link_company``).
        keys = {name_key(cell) for cell in self.column_cells(columns, rows, "company")} - {""}
        return [Company.objects.filter(name_key__in=keys)] if keys else []

    def new_record_data(self, values):
        data = super().new_record_data(values)
        # An empty status takes the default.
        if not data.get("status"):
            data.pop("status", None)
        return data
