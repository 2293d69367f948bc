"""Switching from another CRM: importing HubSpot or Pipedrive exports, or any file with a column mapping.

``import_files`` is the whole import, one function for the command (``manage.py
import_from``) and the admin screen: the files are read within the import bounds
(``core.sheets.read_table``), each matched to a preset (``operations/vendors.py``)
or given one, and run companies first, then people, then deals, so that a
contact finds its company and a deal its person and organisation in the same
run. Every record is written through the API's serializer, so with its history
and events, and so a bulk change of the CRM's history: nothing is written with a
bare ``update()``.

Records are upserted: a company by its ``external_id`` (``"hubspot:123"``), its
domain, or its name; a person by ``external_id`` or email (ignoring case); a deal
by ``external_id`` or its title with the same person. Empty cells leave a
record's value as it is, so a second import of the same file changes nothing.
A dry run is the same run in a transaction rolled back: the answer says what
would be created, updated (field by field, old and new), left unchanged, or
rejected (with the file's line and the reasons); a cell left out of a row that is
imported all the same (a lost reason of a deal that is not lost) is noted on it.
"""

import datetime
import hashlib
import re
from collections import Counter
from dataclasses import dataclass, field
from decimal import Decimal, InvalidOperation
from types import SimpleNamespace

from django.conf import settings
from django.contrib.auth import get_user_model
from django.db import IntegrityError, transaction
from django.db.models import Q

from companies.models import Company
from companies.names import domain_of, name_key
from companies.serializers import CompanySerializer
from core import access, changesets
from core.rowlocks import lock_keys, locking
from core.sheets import ImportFileError, error_text, read_table
from core.tags import split_names
from customers.models import Customer
from customers.serializers import CustomerSerializer
from opportunities.models import Opportunity
from opportunities.serializers import OpportunitySerializer

from . import vendors
from .vendors import COMPANIES, CUSTOMERS, DEALS, KIND_ORDER

CREATED, UPDATED, UNCHANGED, REJECTED = "created", "updated", "unchanged", "rejected"
ACTIONS = (CREATED, UPDATED, UNCHANGED, REJECTED)
# Fields that change on every save, or that the import does not set: left out of the per-row diff.
NOT_COMPARED = {"id", "updated_at", "created_at", "created_by", "phone_e164", "phone_national", "name_key"}
_EMAIL_IN_TEXT = re.compile(r"[^\s<>()\[\],;]+@[^\s<>()\[\],;]+")
_DATE_FORMATS = ("%Y-%m-%d", "%Y/%m/%d", "%m/%d/%Y", "%d.%m.%Y")


@dataclass
class SourceFile:
    name: str
    data: bytes
    preset: object = None  # a vendors.Preset; None: detected from the headers


@dataclass
class RowResult:
    file: str
    line: int
    kind: str
    action: str = ""
    label: str = ""
    record_id: int | None = None
    changes: dict = field(default_factory=dict)  # field -> [old, new]
    reasons: list = field(default_factory=list)
    notes: list = field(default_factory=list)  # cells left out of a row imported all the same


@dataclass
class ImportResult:
    dry_run: bool
    files: list = field(default_factory=list)  # (file name, preset label, ignored headers)
    rows: list = field(default_factory=list)  # RowResult
    changeset: object = None  # core.changesets.Changeset (unsaved after a dry run)

    def counts(self):
        """{kind: {action: number}} for every kind with rows, in the import order."""
        tally = Counter((row.kind, row.action) for row in self.rows)
        kinds = [kind for kind in KIND_ORDER if any(row.kind == kind for row in self.rows)]
        return {kind: {action: tally[kind, action] for action in ACTIONS} for kind in kinds}

    @property
    def rejected(self):
        return [row for row in self.rows if row.action == REJECTED]


class _Reject(Exception):
    pass


class _Unchanged(Exception):
    pass


@dataclass
class _Sheet:
    source: SourceFile
    preset: object
    columns: dict  # position -> field
    rows: list
    ignored: list  # headers that fill no field


def read_headers(name, data, *, limits=None):
    """The header cells of a file (for the column mapping screen), refused as ``import_files`` would."""
    (_line, header), _rows = read_table(data, name, limits=limits)
    return [cell.replace("\x00", "").strip() for cell in header]


def header_key(header):
    """A header as presets and saved mappings name it: lower case, spaces collapsed, no NUL."""
    return " ".join(header.replace("\x00", "").lower().split())


def header_signature(headers):
    """The headers as one key, whatever their case and spacing: a saved mapping is found again by it."""
    return "\x1f".join(header_key(header) for header in headers)


def open_source(source, vendor, *, limits=None):
    """A ``_Sheet`` of ``source``: its preset (given or detected) and which field each column fills."""
    (_line, header), rows = read_table(source.data, source.name, limits=limits)
    headers = [header_key(cell) for cell in header]
    preset = source.preset or (vendors.detect(vendor, headers) if vendor in vendors.VENDORS else None)
    if preset is None:
        raise ImportFileError(
            f"{source.name}: its columns are not those of a {vendor} export of companies, people or deals "
            f"(found: {', '.join(cell for cell in header if cell.strip())}). Map its columns instead."
        )
    # Several headers may fill one field: the first non-empty cell, in the preset's order, wins.
    order = list(preset.columns)
    known = sorted((order.index(name), position) for position, name in enumerate(headers) if name in preset.columns)
    columns = {position: preset.columns[headers[position]] for _rank, position in known}
    filled = set(columns.values())
    if preset.kind == CUSTOMERS and "name" not in filled and filled & {"first_name", "last_name"}:
        filled.add("name")
    missing = [name for name in vendors.REQUIRED[preset.kind] if name not in filled]
    if missing:
        raise ImportFileError(
            f"{source.name} ({preset.label or preset.kind}) lacks the column(s) for: {', '.join(missing)}."
        )
    ignored = [cell.strip() for position, cell in enumerate(header) if cell.strip() and position not in columns]
    return _Sheet(source=source, preset=preset, columns=columns, rows=rows, ignored=ignored)


def import_files(sources, *, vendor="", user=None, owner=None, dry_run=False, limits=None):
    """Import ``sources`` (``SourceFile``) as one run; return an ``ImportResult``.

    ``user`` is who imports (None: an operator's command, who sees every record);
    a rep's import reaches only their book and makes its records theirs.
    ``owner`` owns the new records (a manager's or operator's choice; default:
    the export's owner column when it names a user by email or username, else
    ``user``). Every file is read, and refused as a whole if it cannot be, before
    any row is written.
    """
    sheets = [open_source(source, vendor, limits=limits) for source in sources]
    sheets.sort(key=lambda sheet: KIND_ORDER.index(sheet.preset.kind))
    result = ImportResult(dry_run=dry_run)
    run = _Run(user=user, owner=owner)
    files = [{"file": source.name, "sha256": hashlib.sha256(source.data).hexdigest()} for source in sources]
    # One changeset (core/changesets.py), undoable; a dry run rolls back and leaves none.
    with changesets.recording(
        "import",
        user=user,
        label=", ".join(source.name for source in sources),
        source={"vendor": vendor, "files": files},
        dry_run=dry_run,
    ) as changeset:
        run.hold_parents(sheets)
        for sheet in sheets:
            result.files.append((sheet.source.name, sheet.preset.label or sheet.preset.kind, sheet.ignored))
            result.rows.extend(run.import_sheet(sheet))
    result.changeset = changeset
    return result


class _Run:
    """The state of one import: who imports, and the records already found or written, by key."""

    def __init__(self, *, user, owner):
        self.user = user
        self.owner = owner
        # The serializers' related fields and owner rules read the request's user.
        self.context = {"request": SimpleNamespace(user=user)} if user is not None else {}
        self.may_choose_owner = user is None or access.is_manager(user)
        self.found = {}  # (model, key name, key) -> record or None

    # Looking records up (within the importer's scope), remembered for the rest of the run.

    def rows(self, model):
        return self.scoped(model.objects.all())

    def scoped(self, queryset):
        return queryset if self.user is None else access.scope(queryset, self.user)

    def find(self, model, name, key):
        """The record of ``model`` whose ``name`` is ``key`` (an email as written: the database lowers it, as the
        unique index does; remembered by its lower case, as ``remember`` keeps it)."""
        if not key:
            return None
        token = (model, name, key.lower() if name == "email" else key)
        if token not in self.found:
            self.found[token] = self._lookup(model, name, key)
        return self.found[token]

    def _lookup(self, model, name, key):
        rows = self.rows(model)
        if name == "external_id":
            return rows.filter(external_id=key).first()
        if name == "email":
            return rows.with_email(key).order_by("pk").first()
        if name == "domain":
            return rows.filter(domain=key).first()
        if name == "name":
            matches = list(rows.filter(name_key=key).order_by("pk")[:2])
            if len(matches) > 1:
                raise _Reject(f"several companies are named {key!r}; give an id or a domain")
            return matches[0] if matches else None
        if name == "person":  # a person named in a deal: by email in the text, else by a unique name
            by, value = _person_key(key)
            if by == "email":
                return self.find(Customer, "email", value)
            matches = list(rows.filter(name=value).order_by("pk")[:2])
            if len(matches) > 1:
                raise _Reject(f"several people are named {value!r}; give their id or email")
            return matches[0] if matches else None
        raise ValueError(name)

    def remember(self, record, keys):
        for model_key, value in keys:
            if value:
                self.found[(type(record), model_key, value)] = record

    def default_owner(self, values):
        if self.may_choose_owner:
            if self.owner is not None:
                return self.owner
            named = values.get("owner", "")
            if named:
                users = get_user_model().objects.filter(is_active=True)
                match = users.filter(Q(email__iexact=named) | Q(username__iexact=named)).order_by("pk").first()
                if match is not None:
                    return match
        return self.user

    # The parents named, held before any record.

    def hold_parents(self, sheets):
        """Hold the records the rows of ``sheets`` point people and deals at, before any row writes a record (the
        run is one transaction), with the lock their foreign keys' check takes at COMMIT (``rowlocks.lock_keys``):
        the companies people and deals name (by the other system's id or by name) and those of the people deals
        name (a deal takes its person's company), then those people (by id, email or name), in the order a
        company's delete locks them (the company, then its people). As for the admin's imports
        (``core.resources.CRMModelResource.hold_parents``): a delete under way is waited for, and the rows, read
        after, find its record gone (a rejected row, or a company of that name made anew); a delete that comes
        after waits for the run. Held only by that check, a record deleted meanwhile failed the run at its COMMIT.
        """
        company_ids, company_keys, customer_ids, emails, names = set(), set(), set(), set(), set()
        for sheet in sheets:
            if sheet.preset.kind not in (CUSTOMERS, DEALS):
                continue
            for _line, cells in sheet.rows:
                values = _values(sheet, cells)
                if any("\x00" in value for value in values.values()):
                    continue  # the row is refused before any lookup
                if values.get("company_ref"):
                    company_ids.add(self._external_id(sheet.preset, _first_id(values["company_ref"])))
                if values.get("company"):
                    company_keys.add(name_key(values["company"]))
                if sheet.preset.kind != DEALS:
                    continue
                if values.get("customer_ref"):
                    customer_ids.add(self._external_id(sheet.preset, _first_id(values["customer_ref"])))
                if values.get("customer"):
                    by, value = _person_key(values["customer"])
                    (emails if by == "email" else names).add(value)
        if not (company_ids | company_keys | customer_ids | emails | names) - {""}:
            return
        customers = self.scoped(
            Customer.objects.filter(Q(external_id__in=customer_ids - {""}) | Q(name__in=names))
            | Customer.objects.with_email_in(emails)
        )
        companies = self.rows(Company).filter(Q(external_id__in=company_ids - {""}) | Q(name_key__in=company_keys))
        lock_keys(Company.objects.filter(Q(pk__in=companies.values("pk")) | Q(pk__in=customers.values("company"))))
        lock_keys(customers)

    # One sheet.

    def import_sheet(self, sheet):
        write = {COMPANIES: self.company_row, CUSTOMERS: self.customer_row, DEALS: self.deal_row}[sheet.preset.kind]
        first_line = {}
        results = []
        for line, cells in sheet.rows:
            values = _values(sheet, cells)
            if not any(values.values()):
                continue
            row = RowResult(file=sheet.source.name, line=line, kind=sheet.preset.kind)
            results.append(row)
            try:
                if any("\x00" in value for value in values.values()):
                    # Refused before any lookup: PostgreSQL takes no NUL in a text, even in a query.
                    raise _Reject("a cell holds a NUL character")
                write(sheet.preset, values, row, first_line)
            except _Reject as exc:
                row.action, row.reasons = REJECTED, [*row.reasons, str(exc)]
        return results

    def _once(self, first_line, row, keys):
        """Refuse a row about the same record as an earlier row of the file (same key)."""
        for name, key in keys:
            if not key:
                continue
            first = first_line.setdefault((name, key), row.line)
            if first != row.line:
                raise _Reject(f"line {first} of this file is about the same record ({name} {key})")

    def company_row(self, preset, values, row, first_line):
        external_id = self._external_id(preset, values.get("external_id"))
        domain = domain_of(values.get("domain") or values.get("website") or "")
        key = name_key(values.get("name", ""))
        row.label = values.get("name", "")
        self._once(first_line, row, [("external_id", external_id), ("domain", domain), ("name", key)])
        instance = (
            self.find(Company, "external_id", external_id)
            or self.find(Company, "domain", domain)
            or self.find(Company, "name", key)
        )
        data = {
            "name": values.get("name"),
            "external_id": external_id,
            "domain": domain,
            "website": values.get("website"),
            "phone": values.get("phone"),
            "address": values.get("address"),
            "industry": values.get("industry"),
            "notes": values.get("notes"),
        }
        company = self.save(CompanySerializer, instance, data, values, row)
        self.remember(company, [("external_id", external_id), ("domain", company.domain), ("name", company.name_key)])

    def customer_row(self, preset, values, row, first_line):
        external_id = self._external_id(preset, values.get("external_id"))
        email = values.get("email") or ""
        name = values.get("name") or " ".join(
            part for part in (values.get("first_name"), values.get("last_name")) if part
        )
        row.label = name or email.lower()
        self._once(first_line, row, [("external_id", external_id), ("email", email.lower())])
        instance = self.find(Customer, "external_id", external_id) or self.find(Customer, "email", email)
        data = {
            "name": name,
            "external_id": external_id,
            "email": values.get("email"),
            "phone": values.get("phone"),
            "status": self._mapped(preset.statuses, values.get("status"), "lifecycle stage", Customer.Status),
            "tags": split_names(values.get("tags", "")),
        }
        company = self._company(preset, values)
        if company is not None:
            data["company_id"] = company.pk
        elif values.get("company"):
            data["company"] = values["company"]  # linked by name, or created, on save (Customer.link_company)
        customer = self.save(CustomerSerializer, instance, data, values, row)
        self.remember(customer, [("external_id", external_id), ("email", (customer.email or "").lower())])

    def deal_row(self, preset, values, row, first_line):
        external_id = self._external_id(preset, values.get("external_id"))
        title = values.get("title", "")
        row.label = title
        customer = None
        if values.get("customer_ref"):
            customer = self.find(Customer, "external_id", self._external_id(preset, _first_id(values["customer_ref"])))
        if customer is None and values.get("customer"):
            customer = self.find(Customer, "person", values["customer"])
        if customer is None:
            named = values.get("customer") or values.get("customer_ref")
            raise _Reject(f"no person {named!r} to give this deal to" if named else "the deal names no person")
        self._once(first_line, row, [("external_id", external_id), ("title", f"{customer.pk}:{title.lower()}")])
        instance = self.find(Opportunity, "external_id", external_id)
        if instance is None and not external_id:
            instance = self.rows(Opportunity).filter(customer=customer, title=title).order_by("pk").first()
        currency = (values.get("currency") or "").upper()
        if currency and currency != settings.CRM_CURRENCY:
            raise _Reject(f"the amount is in {currency}; this CRM keeps amounts in {settings.CRM_CURRENCY}")
        stage = self._stage(preset, values)
        data = {
            "title": title,
            "external_id": external_id,
            "customer_id": customer.pk,
            "value": _amount(values.get("value")),
            "stage": stage,
            "expected_close_date": _date(values.get("expected_close_date")),
        }
        reason = values.get("lost_reason", "")
        if reason:
            if not stage and instance is not None:
                # Whether it is lost is read as ``save`` writes it, with its row locked: a reopening under way is
                # waited for (one deleted meanwhile is made anew, as a new deal).
                instance = locking(Opportunity._base_manager.filter(pk=instance.pk)).first()
            # The vendors keep a deal's lost reason when it is reopened or won; ours is a lost deal's only
            # (opportunities.services.check_lost_reason): left out, and said, for a deal that is not lost.
            if (stage or (instance.stage if instance is not None else "")) == Opportunity.Stage.LOST:
                data["lost_reason"] = reason
            else:
                row.notes.append(f"the lost reason {reason!r} is left out: the deal is not lost")
        company = self._company(preset, values)
        if company is not None:
            data["company_id"] = company.pk
        deal = self.save(OpportunitySerializer, instance, data, values, row, owned=False)
        self.remember(deal, [("external_id", external_id)])

    # Values.

    def _external_id(self, preset, value):
        value = (value or "").strip()
        return f"{preset.id_prefix}{value}" if value else ""

    def _company(self, preset, values):
        """The company a person or deal names by the other system's id, or by a name known to this run."""
        if values.get("company_ref"):
            company = self.find(Company, "external_id", self._external_id(preset, _first_id(values["company_ref"])))
            if company is not None:
                return company
        if values.get("company"):
            return self.find(Company, "name", name_key(values["company"]))
        return None

    def _mapped(self, mapping, value, what, choices):
        if not value:
            return None
        key = vendors.value_key(value)
        if key in mapping:
            return mapping[key] or None
        if value.strip().lower() in choices.values:
            return value.strip().lower()
        raise _Reject(f"unknown {what} {value!r}")

    def _stage(self, preset, values):
        status = self._mapped(preset.statuses, values.get("status"), "deal status", Opportunity.Stage)
        if status == "deleted":
            raise _Reject("the deal was deleted in the other CRM")
        if status:
            return status
        return self._mapped(preset.stages, values.get("stage"), "deal stage", Opportunity.Stage)

    # Writing.

    def save(self, serializer_class, instance, data, values, row, owned=True):
        """Create or update through the API's serializer; fill ``row`` with what happened."""
        data = {name: value for name, value in data.items() if value not in (None, "", [])}
        if instance is not None:
            # Read again with its row locked: one deleted meanwhile is made anew, as had the import come after the
            # delete, where a save of the record read before would have made it again under its old id.
            instance = locking(type(instance)._base_manager.filter(pk=instance.pk)).first()
        extra = {}
        if instance is None:
            if self.user is not None:
                extra["created_by"] = self.user
            if owned:
                extra["owner"] = self.default_owner(values)
        before = _snapshot(instance) if instance is not None else None
        serializer = serializer_class(instance, data=data, partial=instance is not None, context=self.context)
        if not serializer.is_valid():
            raise _Reject(error_text(serializer.errors))
        try:
            with transaction.atomic():
                record = serializer.save(**extra)
                record.refresh_from_db()
                after = _snapshot(record)
                if before is not None and after == before:
                    raise _Unchanged
        except _Unchanged:
            row.action, row.record_id = UNCHANGED, instance.pk
            return instance
        except IntegrityError as exc:
            raise _Reject(f"conflicts with a record saved meanwhile ({exc.__class__.__name__})") from None
        row.record_id = record.pk
        if before is None:
            row.action = CREATED
        else:
            row.action = UPDATED
            row.changes = {
                name: [_shown(before[name]), _shown(after[name])] for name in after if after[name] != before[name]
            }
        return record


def _values(sheet, cells):
    """A row's cells by the field they fill; of several filling one field, the first non-empty in the preset's order."""
    values = {}
    for position, name in sheet.columns.items():
        cell = cells[position].strip() if position < len(cells) else ""
        if cell and not values.get(name):
            values[name] = cell
    return values


def _snapshot(record):
    return {
        field.name: getattr(record, field.attname)
        for field in record._meta.concrete_fields
        if field.name not in NOT_COMPARED
    }


def _shown(value):
    if value is None:
        return ""
    if isinstance(value, list):
        return ", ".join(str(item) for item in value)
    return str(value)


def _person_key(text):
    """How a deal's person cell names the person: ``("email", the email in it)`` when it holds one,
    else ``("name", the text)``; the row's lookup (``_Run.find(Customer, "person", ...)``) and the hold of the
    people named (``_Run.hold_parents``) read it alike."""
    email = _EMAIL_IN_TEXT.search(text)
    if email:
        return "email", email.group(0)
    return "name", text.strip()


def _first_id(text):
    """The first id of a list of them ("123;456", HubSpot's associations)."""
    return re.split(r"[;,\s]+", text.strip())[0]


def _amount(text):
    if not text:
        return None
    cleaned = re.sub(r"[\s,]", "", text).lstrip("$¥€£")
    try:
        amount = Decimal(cleaned)
    except InvalidOperation:
        raise _Reject(f"the amount {text!r} is not a number") from None
    if not amount.is_finite():
        raise _Reject(f"the amount {text!r} is not a number")
    return amount


def _date(text):
    if not text:
        return None
    # The date before any time written after it ("9/3/2024 10:00", "2024-09-30T17:00:00Z"), however padded.
    head = re.split(r"[T\s]", text.strip(), maxsplit=1)[0]
    for pattern in _DATE_FORMATS:
        try:
            return datetime.datetime.strptime(head, pattern).date().isoformat()
        except ValueError:
            continue
    raise _Reject(f"the date {text!r} is not a date (YYYY-MM-DD)")
