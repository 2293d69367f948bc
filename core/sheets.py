"""Importing spreadsheets (CSV or XLSX) of records from the command line (``import_customers``, ...).

A sheet is read whole within the import bounds (``core.tables``), its columns
named by headers (English or Chinese) that each app maps to its fields; rows are
validated by the API's own serializer, so a file cannot bring in anything that
the API would refuse. Records are matched by a key column (a customer's email, a
company's domain); a match is left alone unless updates are asked for.
"""

import datetime
from dataclasses import dataclass, field
from pathlib import Path

from django.db import IntegrityError, transaction

from core import customfields, tags
from core.api.viewsets import changes_anything
from core.cells import TEXT_ENCODINGS, csv_text, unguarded
from core.rowlocks import lock_keys, locking
from core.tables import FileRefused, NotAWorkbook, check_size, csv_rows, xlsx_rows
from core.tags import split_names

# The field name of a column that sets a custom field.
CUSTOM_PREFIX = "custom_fields."


class ImportFileError(Exception):
    """The file as a whole cannot be imported (unreadable, empty, missing columns)."""


class NotText(ImportFileError):
    """A CSV file in none of the encodings an import tries (a command with ``--encoding`` says so)."""


@dataclass
class Sheet:
    columns: dict  # position in the row -> field name
    ignored: list  # headers that are not fields of the records
    rows: object  # iterator of (line number, list of cell texts)
    total: int | None = None  # number of data rows, when known up front


def decode(data, path, encoding=None):
    """The text of a CSV file: in ``encoding``, or as ``core.cells.csv_text`` finds it."""
    if encoding:
        return data.decode(encoding)
    text = csv_text(data)
    if text is not None:
        return text
    raise NotText(f"{path} is not text in {' or '.join(TEXT_ENCODINGS)}. Save it as 'CSV UTF-8'.")


def cell_text(value):
    """A spreadsheet cell as text, the way a person reading the sheet sees it (without an export's apostrophe
    before a formula's first character: ``core.cells.unguarded``)."""
    if value is None:
        return ""
    if isinstance(value, float) and value.is_integer():
        return str(int(value))  # phone numbers typed as numbers
    if isinstance(value, (datetime.datetime, datetime.date)):
        return value.isoformat()
    return unguarded(str(value).strip())


def read_table(data, name, *, encoding=None, limits=None):
    """``((line, header cells), [(line, cells), ...])`` of a .csv or .xlsx file's bytes, within the bounds.

    ``name`` (the file's name) says the format and names the file in messages. Leading
    blank rows are skipped; a file beyond a bound, unreadable or empty is refused
    (``ImportFileError``) before any row is processed.
    """
    suffix = Path(str(name)).suffix.lower()
    if suffix not in (".csv", ".xlsx"):
        raise ImportFileError(f"{name} must be a .csv or .xlsx file.")
    try:
        check_size(len(data), limits)
        if suffix == ".csv":
            table = [
                (line, [unguarded(cell) for cell in cells])
                for line, cells in csv_rows(decode(data, name, encoding), limits)
            ]
        else:
            table = [(line, [cell_text(value) for value in cells]) for line, cells in xlsx_rows(data, limits)]
    except NotAWorkbook as exc:
        raise ImportFileError(f"{name} is not a readable .xlsx workbook.") from exc
    except FileRefused as exc:
        raise ImportFileError(f"{name}: {exc}") from exc
    while table and not any(str(cell).strip() for cell in table[0][1]):
        table = table[1:]
    if not table:
        raise ImportFileError(f"{name} is empty.")
    return table[0], table[1:]


def open_sheet(path, *, columns, required, encoding=None, limits=None, custom_fields=None):
    """The header and the data rows of a .csv or .xlsx file, read whole within the import bounds.

    ``columns`` maps headers (lower-cased) to fields; ``required`` lists the fields a file must have.
    ``custom_fields`` names the resource whose custom fields other columns may name (by key or label,
    in either language): they become fields ``custom_fields.<key>``.

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
    except FileRefused as exc:
        raise ImportFileError(f"{path}: {exc}") from exc
    (_line, header), rows = read_table(path.read_bytes(), path, encoding=encoding, limits=limits)
    positions, ignored, seen = {}, [], set()
    if custom_fields:
        extra = {header: CUSTOM_PREFIX + key for header, key in customfields.column_map(custom_fields).items()}
        columns = {**extra, **columns}  # the record's own columns win
    for position, raw in enumerate(header):
        name = columns.get(raw.strip().lower())
        if name is None:
            if raw.strip():
                ignored.append(raw.strip())
            continue
        if name in seen:
            raise ImportFileError(f"{path} has the column {name!r} twice.")
        seen.add(name)
        positions[position] = name
    missing = [name for name in required if name not in seen]
    if missing:
        found = ", ".join(cell.strip() for cell in header if cell.strip())
        raise ImportFileError(f"{path} lacks the required column(s): {', '.join(missing)} (found: {found}).")
    return Sheet(columns=positions, ignored=ignored, rows=iter(rows), total=len(rows))


def with_tag_lists(data):
    """``data`` with its ``tags`` cell ("a, b") as the list of names the API takes."""
    if "tags" in data:
        data = {**data, "tags": split_names(data["tags"])}
    return data


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
    unchanged: int = 0  # matched, with nothing in the row that differs (--update-existing)
    skipped: list = field(default_factory=list)  # (line, message)
    rejected: list = field(default_factory=list)  # (line, message)
    blank: int = 0

    @property
    def rows(self):
        return self.created + self.updated + self.unchanged + len(self.skipped) + len(self.rejected)


class SheetImport:
    """Validate (and unless ``dry_run``, save) rows, matching existing records by their ``keys`` columns.

    A subclass names its ``serializer_class``, ``kind`` (for messages), ``keys``
    (the columns that name an existing record, tried in that order: another
    system's ``external_id`` before an email, say), and how a key is compared
    (``key_of``) and looked up (``existing``).
    """

    BATCH = 500
    serializer_class = None
    kind = "record"
    keys = ()

    def __init__(self, update_existing=False, dry_run=False):
        self.update_existing = update_existing
        self.dry_run = dry_run
        self.report = ImportReport()
        self.first_line_of = {name: {} for name in self.keys}

    def key_of(self, name, value):
        """A cell of the ``name`` key column as compared: two cells with the same result name one record."""
        return value.lower()

    def existing(self, name, cells):
        """{key: record} of the records whose ``name`` is one of ``cells`` (as written, none empty), each by its
        own value's key (as ``key_of`` gives it). The cells, not their keys, are looked up: a record is found
        as its unique index compares (a customer's email, lowered by the database)."""
        raise NotImplementedError

    def run(self, sheet, progress=None):
        rows = list(sheet.rows)  # read whole already (``open_sheet``)
        self.hold_tags(sheet.columns, rows)
        self.hold_parents(sheet.columns, rows)
        batch = []
        for line, cells in rows:
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

    def hold_tags(self, columns, rows):
        """Hold the tags the rows may link before any row locks a record (``tags.hold_tags``; an import is
        one transaction, its changeset's): those named in the tags column, and those carried by the
        records the rows match. Otherwise a row could lock a record carrying a tag that a later row
        links to another record, while a rename of the tag waits for the first record: a deadlock."""
        model = self.serializer_class.Meta.model
        if not tags.holds_tags(model):
            return
        positions = {name: position for position, name in columns.items()}

        def cells(name):
            position = positions.get(name)
            if position is None:
                return []
            return [cells[position].strip() for _line, cells in rows if position < len(cells)]

        names = [name for cell in cells("tags") for name in split_names(cell)]
        matched = []
        for name in self.keys:
            matched.extend(record.pk for record in self.existing(name, self._named(name, cells(name))).values())
        tags.hold_tags(model, names=names, records=model._base_manager.filter(pk__in=matched))

    def hold_parents(self, columns, rows):
        """Hold the parents the rows point their records at (``parents_named``), highest first, after the tags
        and before any row locks a record, with the lock their foreign keys' check takes at COMMIT
        (``rowlocks.lock_keys``; see ``core.resources.CRMModelResource.hold_parents``). A delete of one under
        way is waited for, and the rows, read after, find it gone; a delete that comes after waits for the
        import. Held only by that check, a parent deleted meanwhile failed the import at its COMMIT."""
        for parents in self.parents_named(columns, rows):
            lock_keys(parents)

    def parents_named(self, columns, rows):
        """The parents the rows may point their records at, as querysets, highest parent first."""
        return []

    @staticmethod
    def column_cells(columns, rows, name):
        """The non-empty cells of the ``name`` column of ``rows``; none with a NUL, which PostgreSQL would refuse
        in a query."""
        position = next((position for position, field in columns.items() if field == name), None)
        if position is None:
            return []
        cells = (cells[position].strip() for _line, cells in rows if position < len(cells))
        return [cell for cell in cells if cell and "\x00" not in cell]

    def _import_batch(self, batch):
        existing = {}
        for name in self.keys:
            existing[name] = self.existing(name, self._named(name, [values.get(name) for _, values in batch]))
            if self.update_existing:
                existing[name] = self._locked(existing[name])
        for line, values in batch:
            self._import_row(line, values, existing)

    def _named(self, name, cells):
        """The cells of the ``name`` key column that name a record (a key), once each."""
        return list(dict.fromkeys(cell for cell in cells if cell and self.key_of(name, cell)))

    def _locked(self, found):
        """The records of ``found`` ({key: record}) that the rows may change, read again with their rows locked
        (``rowlocks.locking``), those deleted meanwhile left out: a row about one of those makes a new record, as
        had the import come after the delete, where a save of the record read before would have made it again
        under its old id, without what went with it."""
        if not found:
            return found
        model = self.serializer_class.Meta.model
        rows = locking(model._base_manager.filter(pk__in=[record.pk for record in found.values()]))
        locked = {record.pk: record for record in rows}
        return {key: locked[record.pk] for key, record in found.items() if record.pk in locked}

    def new_record_data(self, values):
        """A new record's data: empty optional cells are null, as the API stores them."""
        return {name: value if name == "name" else value or None for name, value in values.items()}

    def custom_field_values(self, values):
        """``(values without custom field cells, {key: JSON value}, errors)``; empty cells change nothing."""
        resource = customfields.resource_of(self.serializer_class.Meta.model)
        current = customfields.by_key(resource) if resource else {}
        plain, cells = {}, []
        for name, value in values.items():
            if not name.startswith(CUSTOM_PREFIX):
                plain[name] = value
                continue
            key = name[len(CUSTOM_PREFIX) :]
            if value and key in current:
                cells.append((name, current[key], value))
        custom, errors = customfields.clean_cells(cells)
        return plain, custom, errors

    def _import_row(self, line, values, existing):
        keys = {name: self.key_of(name, values.get(name) or "") for name in self.keys}
        for name, key in keys.items():
            first = self.first_line_of[name].setdefault(key, line) if key else line
            if first != line:
                self.report.rejected.append((line, f"duplicate {name} {values[name]} (first on line {first})"))
                return
        # The record the first key column names (in the order of ``keys``).
        instance, matched = None, None
        for name, key in keys.items():
            if key and key in existing[name]:
                instance, matched = existing[name][key], f"{name} {values[name]}"
                break
        if instance is not None and not self.update_existing:
            self.report.skipped.append(
                (line, f"a {self.kind} with {matched} exists already (id {instance.pk}); not changed")
            )
            return
        values, custom, problems = self.custom_field_values(values)
        if problems:
            self.report.rejected.append((line, error_text(problems)))
            return
        if instance is not None:
            # Empty cells leave the existing value as it is.
            data = {name: value for name, value in values.items() if value}
            if custom:
                data["custom_fields"] = custom
            serializer = self.serializer_class(instance, data=with_tag_lists(data), partial=True)
        else:
            data = self.new_record_data(values)
            if custom:
                data["custom_fields"] = custom
            serializer = self.serializer_class(data=with_tag_lists(data))
        if not serializer.is_valid():
            self.report.rejected.append((line, error_text(serializer.errors)))
            return
        if instance is not None and not changes_anything(instance, serializer.validated_data):
            self.report.unchanged += 1
            return
        if not self.dry_run:
            try:
                with transaction.atomic():
                    serializer.save()
            except IntegrityError as exc:
                taken = next((name for name in self.keys if name in str(exc)), self.keys[-1])
                self.report.rejected.append((line, f"{taken} {values.get(taken)} was taken while importing"))
                return
        if instance is None:
            self.report.created += 1
        else:
            self.report.updated += 1
