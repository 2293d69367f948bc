"""Shared pieces of the admin's import/export resources (django-import-export).

Each imported row is validated by the API's own serializer (``serializer_class``),
so that a file cannot bring in anything the API would refuse, and values are
stored as the API stores them (a value of 1.999 becomes 2.00, like in a request).
"""

import datetime
from decimal import Decimal, InvalidOperation
from functools import cached_property

from django.core.exceptions import NON_FIELD_ERRORS, ValidationError
from django.core.validators import ProhibitNullCharactersValidator
from django.db import connections, router, transaction
from django.db.models import Q
from django.utils.translation import gettext_lazy as _
from import_export import fields, resources, results, widgets
from rest_framework import serializers
from rest_framework.settings import api_settings

from core import access, customfields, tags
from core.cells import boolean_of, unguarded
from core.rowlocks import is_deadlock, lock_keys, lock_rows
from core.tables import FileRefused

# A cell left out of the data given to the serializer.
_OMIT = object()
# Column names a file may use for a field, besides the field's own (lower-cased).
# Header aliases every resource knows (the tags of customers, companies and opportunities).
HEADER_ALIASES = {"标签": "tags"}


class TagsWidget(widgets.Widget):
    """A record's tags in one cell, "a, b" (``core/tags.py``)."""

    def clean(self, value, row=None, **kwargs):
        return tags.split_names(value)

    def render(self, value, obj=None, **kwargs):
        return tags.join_names(value)


def tags_field():
    """The ``tags`` column of a tagged model's resource."""
    return fields.Field(attribute="tags", column_name="tags", widget=TagsWidget())


class ImportConflict(Exception):
    """A row's save aborted in a deadlock with another transaction (``rowlocks.is_deadlock``)."""


class ImportFailure(results.Error):
    def __init__(self, error, *args, **kwargs):
        if is_deadlock(error):
            error = ImportConflict(
                _(
                    "Another change of the same records was under way at the same moment: this row could not "
                    "be written, and nothing of the file is imported. Import the file again."
                )
            )
        super().__init__(error, *args, **kwargs)

    @cached_property
    def traceback(self):
        return "" if isinstance(self.error, FileRefused | ImportConflict) else super().traceback


def cell_text(value):
    """A spreadsheet cell as stripped text ("" when empty), without an export's apostrophe before a formula's
    first character (``core.cells.unguarded``); XLSX gives whole numbers as floats."""
    if value is None:
        return ""
    if isinstance(value, float) and value.is_integer():
        value = int(value)
    return unguarded(str(value).strip())


def file_line(row_number, lines=None):
    """The line of the file that import-export's ``row_number`` (1 for the first data row) stands for.

    The header is line 1, as in a spreadsheet and in the messages of ``manage.py import_customers``.
    ``lines`` are the file lines of the data rows when known (``dataset.file_lines``: blank lines
    that the reader skipped are counted); otherwise the rows are taken to follow the header.
    """
    if row_number is None:
        return None
    if lines and 0 < row_number <= len(lines):
        return lines[row_number - 1]
    return row_number + 1


def parse_id(value):
    """The integer id in a cell, ``None`` for an empty one; ValidationError otherwise."""
    text = cell_text(value)
    if not text:
        return None
    if not text.isdecimal():
        raise ValidationError({"id": _("The id must be a whole number, got “%(value)s”.") % {"value": text}})
    return int(text)


def _number(text):
    try:
        number = Decimal(text)
    except InvalidOperation:
        return None
    return number if number.is_finite() else None


def json_value(field, value):
    """A cell as the JSON value a client of the API would send for ``field`` (a serializer field).

    The serializers take JSON types strictly (``StrictJSONTypesMixin``), and a
    CSV cell is always text: a number typed in a cell is sent as a number, a
    boolean as true or false where ``core.cells.boolean_of`` reads one (yes, 0...),
    and anything else as text, which the field then refuses as the API does
    (40.5 is not an integer; 1.999 is a value, rounded to 2.00).
    """
    if isinstance(field, serializers.BooleanField):
        answer = boolean_of(value)
        return cell_text(value) if answer is None else answer
    if isinstance(field, (serializers.IntegerField, serializers.PrimaryKeyRelatedField)):
        if isinstance(value, str):
            number = _number(value)
            if number is not None and number == number.to_integral_value():
                return int(number)
        return value
    if isinstance(field, (serializers.DecimalField, serializers.FloatField)):
        if isinstance(value, str):
            number = _number(value)
            if number is not None:
                return float(number)
        return value
    if isinstance(field, serializers.DateTimeField):
        # A cell shown as a date alone (``core.tables``) is sent as a client sends a date: its ISO text.
        if isinstance(value, datetime.date) and not isinstance(value, datetime.datetime):
            return value.isoformat()
        return value
    if getattr(field, "takes_tag_names", False):
        # One cell, "a, b": the list of names the API takes.
        return tags.split_names(cell_text(value))
    if isinstance(field, serializers.DateField):
        # XLSX gives dates as datetimes at midnight.
        if isinstance(value, datetime.datetime) and value.time() == datetime.time():
            return value.date()
        return value
    return cell_text(value)


class CustomFieldColumn(fields.Field):
    """A custom field's column: exported as text; imported by ``CRMModelResource`` through the serializer."""

    def __init__(self, definition, column_name):
        super().__init__(attribute=None, column_name=column_name, readonly=True)
        self.definition = definition

    def get_value(self, instance):
        value = (instance.custom_fields or {}).get(self.definition.key)
        return None if value is None else customfields.display(self.definition, value)

    def export(self, instance, **kwargs):
        value = self.get_value(instance)
        return "" if value is None else value


class CRMModelResource(resources.ModelResource):
    """A resource whose rows update the record with their ``id``; rows without one create records.

    An id that matches no record is an error for that row (a typo must not create a record).
    Rows are validated by ``serializer_class`` (the API's), partially for updates: columns
    the file does not have are left as they are. An empty cell is null for optional
    fields, the default (or the value as it is) for fields that have one, and an
    error for required ones. A second row about a record of an earlier row is an error.
    """

    serializer_class = None
    # Columns a file must have; without them every row would be skipped or fail alike.
    required_columns = ()
    # Other names of the columns (lower-cased header -> column), in English and Chinese: the ones the
    # import commands know (``customers.imports.COLUMNS``, ...), so that one file suits both.
    header_aliases = {}
    # Columns that only a manager sets: a rep's file has them ignored, with a warning (``ignored_columns``).
    manager_columns = ("created_at", "created_by", "owner")
    # Not offered to reps either (the column list, the template file), but honoured in their files:
    # an id outside their book is answered as unknown, and one of theirs updates that record.
    hidden_from_reps = ("id",)
    # Import column -> serializer field, where they differ.
    serializer_fields = {}
    # The records the rows name by a key looked up (and locked) once for the whole file, not once a row
    # (``lock_named_records``); False: each row looks its own up, the plain path the twin tests compare with.
    read_ahead = True

    created_at = fields.Field(attribute="created_at", column_name="created_at", readonly=True)

    def __init__(self, user=None, request=None, **kwargs):
        # The admin user importing or exporting: rows reach only the records in their scope.
        self.user = user
        self.request = request
        self.line_of_record = {}
        # The file lines of the data rows, when the admin knows them (``file_line``).
        self.file_lines = None
        # The columns of the file this user may not set, left out of the import (see ``manager_columns``).
        self.ignored_columns = []
        # The records the rows name by a key, found and locked once for the file (``lock_named_records``):
        # {key name: {key: record, or None for a key no record has}}; and those given to a row already.
        self.named_records = {}
        self._records_given = set()
        super().__init__(**kwargs)
        self._add_custom_field_columns()

    def get_queryset(self):
        return self.scoped(super().get_queryset())

    def scoped(self, queryset):
        return queryset if self.user is None else access.scope(queryset, self.user)

    class Meta:
        # Unchanged rows are reported as skipped; the serializer validates every row, so errors
        # show per row in the preview. (The model's full_clean() is not run: the API does not.)
        skip_unchanged = True
        report_skipped = True
        clean_model_instances = False

    def get_error_result_class(self):
        return ImportFailure

    def serializer_context(self):
        return {"request": self.request} if self.request is not None else {}

    @cached_property
    def serializer_prototype(self):
        """A serializer to read the fields' types and options from (rows get their own)."""
        return self.serializer_class(context=self.serializer_context())

    @cached_property
    def import_columns(self):
        """The columns that a row brings in: column name -> field."""
        return {
            field.column_name: field
            for field in self.get_import_fields()
            if not field.readonly and field.attribute != "id"
        }

    def before_import(self, dataset, **kwargs):
        # Column names are matched without regard to case or surrounding spaces.
        self.file_lines = getattr(dataset, "file_lines", None)
        headers = [self.column_of(header) for header in dataset.headers or []]
        if headers:
            dataset.headers = headers
        if headers and not self.sets_manager_columns():
            self.ignored_columns = sorted({header for header in headers if header in self.manager_columns})
            for column in self.ignored_columns:
                while column in dataset.headers:
                    del dataset[column]
            headers = list(dataset.headers)
        problem = self.header_problem(headers)
        if problem:
            # Refused as a whole: no row of the file is processed.
            del dataset[:]
            raise FileRefused(problem)
        super().before_import(dataset, **kwargs)
        self.hold_tags(dataset)
        self.hold_parents(dataset)
        self.lock_named_records(dataset)

    def hold_tags(self, dataset):
        """Hold the tags the rows may link before any row locks a record (``tags.hold_tags``; the rows are
        one transaction): those named in the tags column, and those carried by the records the rows name
        by a key (``record_keys``: an id, an external id...). Otherwise a row could lock a record carrying a tag
        that a later row links to another record, while a rename of the tag waits for the first record: a
        deadlock."""
        model = self._meta.model
        headers = dataset.headers or []
        if not tags.holds_tags(model) or not dataset:
            return
        names = []
        if "tags" in headers:
            for cell in dataset["tags"]:
                names.extend(tags.split_names(cell_text(cell)))
        keys = self.record_keys(dataset)
        records = model._base_manager.filter(self._naming(keys)) if keys else None
        tags.hold_tags(model, names=names, records=records)

    def hold_parents(self, dataset):
        """Hold the parents the rows point their records at (``parents_named``), highest first, after the tags and
        before any row locks a record (the rows are one transaction), with the lock their foreign keys' check
        takes at COMMIT (``rowlocks.lock_keys``), as a record's admin page does (``CRMModelAdmin.lock_parents``).

        A parent's delete (or merge) locks the parent, then the records pointing at it. Held only by that check,
        a parent deleted while the import runs failed the import at its COMMIT (a server error), or deadlocked
        it with a delete waiting for a record an earlier row had locked. Held first, a delete under way is
        waited for, and the rows, read after, find its parent gone (an error on the row, nothing imported);
        a delete that comes after waits for the import.
        """
        if dataset:
            for parents in self.parents_named(dataset):
                lock_keys(parents)

    def parents_named(self, dataset):
        """The parents the rows of ``dataset`` may point their records at, as querysets, highest parent first."""
        return []

    def lock_named_records(self, dataset):
        """Find the records the rows name by a key (``record_keys``) and lock them, once for the whole file, as a row
        alone finds and locks its own (``_locked``): locked first, by primary key in one statement (``lock_rows``),
        then read. A row then takes its record from these (``named_record``) without a query of its own, and a key
        that none of them has names no record.

        The rows are one transaction, and the locks are held to its end: a record deleted by someone else before
        them is not found (its row makes a new record, as had the import come after the delete, or is refused for
        an id), and one whose delete or change comes after waits for the import, so no row writes a deleted record
        again nor overwrites a change it did not read. They are taken after the tags and the parents
        (``hold_tags``, ``hold_parents``), and before what the rows' saves lock (a new company's name). Outside a
        transaction nothing would hold them: each row finds its own record then.
        """
        self.named_records, self._records_given = {}, set()
        keys = self.record_keys(dataset) if self.read_ahead else {}
        if not keys or connections[router.db_for_write(self._meta.model)].get_autocommit():
            return
        rows = self.get_queryset().filter(self._naming(keys))
        lock_rows(rows)
        records = list(rows)
        for name, (found, _condition) in keys.items():
            first = {}
            for record in records:
                key = self.key_of(name, record)
                if key is None:
                    # A key this side cannot tell: the rows naming records by this column find them alone.
                    break
                if key in found:
                    # The first in the queryset's order, as ``_locked`` takes it.
                    first.setdefault(key, record)
            else:
                self.named_records[name] = {key: first.get(key) for key in found}

    def record_keys(self, dataset):
        """How the rows of ``dataset`` name the records they update: ``{name: (keys, condition)}``, for each column
        that names one (``id``, ``external_id``, a subclass's own), the keys in its cells as ``key_of`` gives a
        record's, and a ``Q`` of the records that have one of them."""
        keys = {}
        ids = {int(text) for text in self.column_cells(dataset, "id") if text.isdecimal() and int(text) < 2**63}
        if ids:
            keys["id"] = (ids, Q(pk__in=ids))
        if "external_id" in self.import_columns:
            external_ids = set(self.column_cells(dataset, "external_id"))
            if external_ids:
                keys["external_id"] = (external_ids, Q(external_id__in=external_ids))
        return keys

    def key_of(self, name, record):
        """``record``'s key of the ``name`` column (``record_keys``); None when it cannot be told here."""
        return record.pk if name == "id" else getattr(record, name)

    @staticmethod
    def _naming(keys):
        """The ``Q`` of the records any of ``keys`` (``record_keys``) names."""
        condition = Q()
        for _found, naming in keys.values():
            condition |= naming
        return condition

    def named_record(self, name, key, rows):
        """The record a row names by the ``key`` of its ``name`` column, locked: the one ``lock_named_records``
        found, or None when it found none with that key. A key it did not look up, or a record it gave a row
        already (whose writes may have been rolled back since), is found alone: the first of ``rows``, locked
        first (``_locked``)."""
        named = self.named_records.get(name, {})
        if key in named:
            record = named[key]
            if record is None:
                return None
            if record.pk not in self._records_given:
                self._records_given.add(record.pk)
                return record
        return self._locked(rows)

    @staticmethod
    def column_cells(dataset, column):
        """The texts of a column's non-empty cells; none with a NUL, which a row refuses and PostgreSQL would
        refuse in a query."""
        if column not in (dataset.headers or []):
            return []
        return [text for text in (cell_text(cell) for cell in dataset[column]) if text and "\x00" not in text]

    def column_of(self, header):
        """The column a header names: itself (any case, spaces around) or the column it is an alias of."""
        text = cell_text(header).lower()
        return self.header_aliases.get(text, HEADER_ALIASES.get(text, text))

    def sets_manager_columns(self):
        """Whether this user may set ``manager_columns`` (creation dates, authors, owners): managers and scripts."""
        return self.user is None or access.is_manager(self.user)

    def offered_columns(self):
        """The columns offered to this user (the import page's list, the template file)."""
        columns = [field.column_name for field in self.get_user_visible_fields()]
        if not self.sets_manager_columns():
            hidden = (*self.manager_columns, *self.hidden_from_reps)
            columns = [column for column in columns if column not in hidden]
        return columns

    def template_headers(self, language):
        """The offered columns as a template file's first row: in Chinese for a Chinese user, when there is an alias."""
        if not (language or "").startswith("zh"):
            return self.offered_columns()
        chinese = {}
        for alias, column in self.header_aliases.items():
            if not alias.isascii():
                chinese.setdefault(column, alias)
        return [chinese.get(column, column) for column in self.offered_columns()]

    def header_problem(self, headers):
        """Why a file with these column names cannot be imported, or None."""
        named = [header for header in headers if header]
        twice = sorted({header for header in named if named.count(header) > 1})
        if twice:
            return _(
                "The column(s) %(columns)s appear more than once in the first row: each column may appear once."
            ) % {"columns": ", ".join(twice)}
        missing = [column for column in self.required_columns if column not in named]
        if missing:
            return _(
                "The file lacks the column(s) %(missing)s. Its first row must name the columns, such as: %(expected)s."
            ) % {
                "missing": ", ".join(missing),
                "expected": ", ".join(field.column_name for field in self.get_import_fields()),
            }
        return None

    def before_import_row(self, row, **kwargs):
        super().before_import_row(row, **kwargs)
        errors = {
            column: [ProhibitNullCharactersValidator.message]
            for column in ("id", *self.import_columns)
            if isinstance(row.get(column), str) and "\x00" in row[column]
        }
        if errors:
            raise ValidationError(errors)

    def after_import_row(self, row, row_result, **kwargs):
        super().after_import_row(row, row_result, **kwargs)
        if row_result.object_id is not None:
            self.line_of_record.setdefault(row_result.object_id, file_line(kwargs.get("row_number"), self.file_lines))

    def import_row(self, row, instance_loader, **kwargs):
        # django-import-export answers a row's error from within the row's savepoint: after an error of the
        # database (a deadlock) the transaction would be unusable, and the import a server error. The row
        # runs in a savepoint of its own, rolled back when it failed, so that the file's result is shown.
        using = router.db_for_write(self._meta.model)
        if not connections[using].in_atomic_block:
            return super().import_row(row, instance_loader, **kwargs)
        savepoint = transaction.savepoint(using=using)
        row_result = super().import_row(row, instance_loader, **kwargs)
        if row_result.errors:
            transaction.savepoint_rollback(savepoint, using=using)
            self.row_rolled_back()
        else:
            transaction.savepoint_commit(savepoint, using=using)
        return row_result

    def row_rolled_back(self):
        """What the row just imported wrote was rolled back (its error); for what a subclass keeps of the rows'
        writes."""

    def get_instance(self, instance_loader, row):
        pk = parse_id(row.get("id"))
        if pk is None:
            instance = self.find_instance(row)
            column = NON_FIELD_ERRORS
        else:
            instance = self.named_record("id", pk, self.get_queryset().filter(pk=pk))
            if instance is None:
                raise ValidationError({"id": _("No record with id %(id)s.") % {"id": pk}})
            column = "id"
        if instance is not None and instance.pk in self.line_of_record:
            raise ValidationError(
                {
                    column: _("Line %(line)s of this file is about the same record.")
                    % {"line": self.line_of_record[instance.pk]}
                }
            )
        return instance

    def find_instance(self, row):
        """The record a row without an id stands for, if any: the one with its ``external_id``
        (another system's id, unique), as a batch upsert finds it."""
        external_id = cell_text(row.get("external_id"))
        if not external_id or "external_id" not in self.import_columns:
            return None
        return self.named_record("external_id", external_id, self.get_queryset().filter(external_id=external_id))

    @staticmethod
    def _locked(rows):
        """The first of ``rows``, locked first (``lock_rows``): a record deleted by someone else while the import
        runs is read as gone, not written again by the row's save."""
        lock_rows(rows)
        return rows.first()

    def serializer_value(self, column, value, serializer_field):
        """What the serializer is given for a cell: a JSON value, or ``_OMIT``."""
        if cell_text(value) == "":
            if serializer_field.allow_null:
                return None
            # Left out, a field takes its default (or keeps its value); a required one is refused as blank.
            return _OMIT if not serializer_field.required else ""
        return json_value(serializer_field, value)

    def import_instance(self, instance, row, **kwargs):
        serializer_fields = self.serializer_prototype.fields
        data, errors = {}, {}
        for column in self.import_columns:
            if column not in row:
                continue
            name = self.serializer_fields.get(column, column)
            try:
                value = self.serializer_value(column, row[column], serializer_fields[name])
            except ValueError as error:
                errors[column] = [str(error)]
                continue
            if value is not _OMIT:
                data[name] = value
        self._custom_field_cells(row, data, errors)
        new = instance.pk is None
        serializer = self.serializer_class(
            None if new else instance, data=data, partial=not new, context=self.serializer_context()
        )
        if not serializer.is_valid():
            columns = {name: column for column, name in self.serializer_fields.items()}
            columns.update(self._custom_field_headers)
            for name, messages in serializer.errors.items():
                key = NON_FIELD_ERRORS if name == api_settings.NON_FIELD_ERRORS_KEY else columns.get(name, name)
                if key in errors:
                    continue  # the cell itself was at fault: its message says why
                errors[key] = [str(message) for message in messages]
        if errors:
            raise ValidationError(errors)
        self.apply_validated(instance, dict(serializer.validated_data))

    # Custom fields (core/customfields.py): a column per definition on export, headed by its key, or by
    # ``cf_<key>`` when a column of the record has that name (a key a later field took); on import a column
    # named ``cf_<key>``, or by the key or a label (either language) that no column of the record has, sets it.

    _custom_field_headers = {}

    def _add_custom_field_columns(self):
        resource = customfields.resource_of(self._meta.model)
        self._custom_field_definitions = customfields.definitions(resource) if resource else []
        self._custom_field_map = customfields.column_map(resource) if resource else {}
        self._custom_field_headers = {}
        self._own_columns = {field.column_name for field in self.fields.values()}
        for definition in self._custom_field_definitions:
            column = customfields.column_name(definition, self._own_columns)
            self.fields[column] = CustomFieldColumn(definition, column)

    def _custom_field_cells(self, row, data, errors):
        """Put the row's custom field cells (as JSON values) into ``data["custom_fields"]``; empty cells change nothing."""
        definitions = {definition.key: definition for definition in self._custom_field_definitions}
        cells = []
        for header, cell in row.items():
            key = self._custom_field_map.get(cell_text(header).lower())
            if key is None or header in self._own_columns or header == "id" or cell_text(cell) == "":
                continue
            self._custom_field_headers[f"custom_fields.{key}"] = header
            cells.append((header, definitions[key], cell))
        values, cell_errors = customfields.clean_cells(cells)
        errors.update(cell_errors)
        if values:
            data["custom_fields"] = values

    def apply_validated(self, instance, validated_data):
        """Give ``instance`` a row's values as the serializer validated them (import-export saves it later)."""
        for attribute, value in validated_data.items():
            setattr(instance, attribute, value)

    def before_save_instance(self, instance, row, **kwargs):
        super().before_save_instance(instance, row, **kwargs)
        if instance.pk is None and self.user is not None:
            instance.created_by = self.user

    def after_save_instance(self, instance, row, **kwargs):
        super().after_save_instance(instance, row, **kwargs)
        # The record written may now have a key that ``lock_named_records`` found no record with (a new record's
        # id, email...): a later row naming it finds it alone, and is told it is about the same record.
        for name, named in self.named_records.items():
            key = self.key_of(name, instance)
            if key is None:
                named.clear()
            else:
                named.pop(key, None)
