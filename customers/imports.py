"""Reading customer spreadsheets (CSV or XLSX) for ``manage.py import_customers``.

Rows are validated by the API's own ``CustomerSerializer``, so a file cannot
bring in anything that the API would refuse.
"""

import datetime
from dataclasses import dataclass, field
from pathlib import Path

from django.db import IntegrityError, transaction
from django.db.models.functions import Lower

from core.cells import TEXT_ENCODINGS
from core.tables import FileRefused, NotAWorkbook, check_size, csv_rows, xlsx_rows

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
}
REQUIRED = ("name",)


class ImportFileError(Exception):
    """The file as a whole cannot be imported (unreadable, empty, missing columns)."""


@dataclass
class Sheet:
    columns: dict  # position in the row -> field name
    ignored: list  # headers that are not customer fields
    rows: object  # iterator of (line number, list of cell texts)
    total: int | None = None  # number of data rows, when known up front


def decode(data, path, encoding=None):
    """The text of a CSV file: in ``encoding``, or the first of ``TEXT_ENCODINGS`` that reads it whole."""
    if encoding:
        return data.decode(encoding)
    for candidate in TEXT_ENCODINGS:
        try:
            return data.decode(candidate)
        except UnicodeDecodeError:
            continue
    raise ImportFileError(
        f"{path} is not text in {' or '.join(TEXT_ENCODINGS)}. Save it as 'CSV UTF-8' or pass --encoding."
    )


def cell_text(value):
    """A spreadsheet cell as text, the way a person reading the sheet sees it."""
    if value is None:
        return ""
    if isinstance(value, float) and value.is_integer():
        return str(int(value))  # phone numbers typed as numbers
    if isinstance(value, (datetime.datetime, datetime.date)):
        return value.isoformat()
    return str(value).strip()


def open_sheet(path, encoding=None, limits=None):
    """The header and the data rows of a .csv or .xlsx file, read whole within the import bounds.

    The file is refused before any row is written if it is larger, longer or wider
    than the bounds (``core.tables``), or unreadable anywhere.
    """
    path = Path(path)
    if not path.is_file():
        raise ImportFileError(f"{path} does not exist or is not a file.")
    suffix = path.suffix.lower()
    if suffix not in (".csv", ".xlsx"):
        raise ImportFileError(f"{path} must be a .csv or .xlsx file.")
    try:
        check_size(path.stat().st_size, limits)
        data = path.read_bytes()
        if suffix == ".csv":
            table = csv_rows(decode(data, path, encoding), limits)
        else:
            table = [(line, [cell_text(value) for value in cells]) for line, cells in xlsx_rows(data, limits)]
    except NotAWorkbook as exc:
        raise ImportFileError(f"{path} is not a readable .xlsx workbook.") from exc
    except FileRefused as exc:
        raise ImportFileError(f"{path}: {exc}") from exc
    while table and not any(str(cell).strip() for cell in table[0][1]):
        table = table[1:]
    if not table:
        raise ImportFileError(f"{path} is empty.")
    (_line, header), rows = table[0], table[1:]
    columns, ignored, seen = {}, [], set()
    for position, raw in enumerate(header):
        name = COLUMNS.get(raw.strip().lower())
        if name is None:
            if raw.strip():
                ignored.append(raw.strip())
            continue
        if name in seen:
            raise ImportFileError(f"{path} has the column {name!r} twice.")
        seen.add(name)
        columns[position] = name
    missing = [name for name in REQUIRED if name not in seen]
    if missing:
        found = ", ".join(cell.strip() for cell in header if cell.strip())
        raise ImportFileError(f"{path} lacks the required column(s): {', '.join(missing)} (found: {found}).")
    return Sheet(columns=columns, ignored=ignored, rows=iter(rows), total=len(rows))


def error_text(errors):
    """Serializer errors as one line: ``field: message; field: message``."""
    parts = []
    for name, messages in errors.items():
        label = "" if name == "non_field_errors" else f"{name}: "
        parts.extend(f"{label}{message}" for message in messages)
    return "; ".join(parts)


@dataclass
class ImportReport:
    created: int = 0
    updated: int = 0
    skipped: list = field(default_factory=list)  # (line, message)
    rejected: list = field(default_factory=list)  # (line, message)
    blank: int = 0

    @property
    def rows(self):
        return self.created + self.updated + len(self.skipped) + len(self.rejected)


class CustomerImport:
    """Validate (and unless ``dry_run``, save) rows, matching existing customers by external_id, then email."""

    BATCH = 500

    def __init__(self, update_existing=False, dry_run=False):
        self.update_existing = update_existing
        self.dry_run = dry_run
        self.report = ImportReport()
        self.first_line_of_email = {}
        self.first_line_of_external_id = {}

    def run(self, sheet, progress=None):
        batch = []
        for line, cells in sheet.rows:
            if progress is not None:
                progress.update(1)
            values = {name: cells[pos].strip() if pos < len(cells) else "" for pos, name in sheet.columns.items()}
            if not any(values.values()):
                self.report.blank += 1
                continue
            batch.append((line, values))
            if len(batch) == self.BATCH:
                self._import_batch(batch)
                batch = []
        if batch:
            self._import_batch(batch)
        return self.report

    def _import_batch(self, batch):
        emails = {values["email"].lower() for _, values in batch if values.get("email")}
        existing = {
            customer.email_key: customer
            for customer in Customer.objects.annotate(email_key=Lower("email")).filter(email_key__in=emails)
        }
        external_ids = {values["external_id"] for _, values in batch if values.get("external_id")}
        by_external_id = {
            customer.external_id: customer for customer in Customer.objects.filter(external_id__in=external_ids)
        }
        for line, values in batch:
            self._import_row(line, values, existing, by_external_id)

    def _import_row(self, line, values, existing, by_external_id):
        email = (values.get("email") or "").lower()
        external_id = values.get("external_id") or ""
        for key, seen, what in (
            (external_id, self.first_line_of_external_id, "external_id"),
            (email, self.first_line_of_email, "email"),
        ):
            first = seen.setdefault(key, line) if key else line
            if first != line:
                self.report.rejected.append((line, f"duplicate {what} {values[what]} (first on line {first})"))
                return
        # The customer with the row's external_id (another system's id), else the one with its email.
        instance = by_external_id.get(external_id) if external_id else None
        matched = f"external_id {external_id}" if instance is not None else f"email {values.get('email')}"
        if instance is None and email:
            instance = existing.get(email)
        if instance is not None and not self.update_existing:
            self.report.skipped.append(
                (line, f"a customer with {matched} exists already (id {instance.pk}); not changed")
            )
            return
        if instance is not None:
            # Empty cells leave the existing value as it is.
            data = {name: value for name, value in values.items() if value}
            serializer = CustomerSerializer(instance, data=data, partial=True)
        else:
            # Empty optional cells are null, as the API stores them; an empty status takes the default.
            data = {name: value if name == "name" else value or None for name, value in values.items()}
            if not data.get("status"):
                data.pop("status", None)
            serializer = CustomerSerializer(data=data)
        if not serializer.is_valid():
            self.report.rejected.append((line, error_text(serializer.errors)))
            return
        if not self.dry_run:
            try:
                with transaction.atomic():
                    serializer.save()
            except IntegrityError as exc:
                taken = "external_id" if "external_id" in str(exc) else "email"
                self.report.rejected.append((line, f"{taken} {values.get(taken)} was taken while importing"))
                return
        if instance is None:
            self.report.created += 1
        else:
            self.report.updated += 1
