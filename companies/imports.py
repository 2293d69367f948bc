"""Reading company spreadsheets (CSV or XLSX) for ``manage.py import_companies`` (see ``core/sheets.py``).

Rows are validated by the API's own ``CompanySerializer``; companies are matched by domain, written any way
(``https://www.Example.com/`` is ``example.com``).
"""

from functools import partial

from core import sheets

from .models import Company
from .names import domain_of
from .serializers import CompanySerializer

# Header (lower-cased) -> field. Chinese headers as sales staff write them.
COLUMNS = {
    "name": "name",
    "company": "name",
    "名称": "name",
    "公司": "name",
    "公司名称": "name",
    "domain": "domain",
    "域名": "domain",
    "website": "website",
    "网站": "website",
    "网址": "website",
    "phone": "phone",
    "电话": "phone",
    "address": "address",
    "地址": "address",
    "industry": "industry",
    "行业": "industry",
    "size": "size",
    "规模": "size",
    "notes": "notes",
    "备注": "notes",
    "tags": "tags",
    "标签": "tags",
}
REQUIRED = ("name",)

open_sheet = partial(sheets.open_sheet, columns=COLUMNS, required=REQUIRED, custom_fields="companies")


class CompanyImport(sheets.SheetImport):
    """Validate (and unless ``dry_run``, save) rows, matching existing companies by domain."""

    serializer_class = CompanySerializer
    kind = "company"
    keys = ("domain",)

    def key_of(self, name, value):
        return domain_of(value)

    def existing(self, name, cells):
        # A company's domain is stored as ``key_of`` gives it (``Company.save``).
        keys = {self.key_of(name, cell) for cell in cells}
        return {company.domain: company for company in Company.objects.filter(domain__in=keys)}

    def new_record_data(self, values):
        # Text fields of a company are empty rather than null.
        return {name: value for name, value in values.items() if value}
