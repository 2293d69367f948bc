"""List columns that keep a list within a laptop's width: long texts cut, whole on hover; read-only lines
that name a related record without a link the user could not follow; the export page's columns labelled
as the record's fields."""

import functools

from django.contrib import admin
from django.core.exceptions import FieldDoesNotExist
from django.utils.html import format_html
from django.utils.text import capfirst
from import_export.forms import SelectableFieldsExportForm


def cut_text(value, size=""):
    """``value`` in a span the stylesheet cuts at its column's width (``core/static/core/admin.css``),
    with the whole text in its title."""
    if value in (None, ""):
        return None
    text = str(value)
    return format_html('<span class="crm-cut {}" title="{}">{}</span>', size, text, text)


def cut_column(attribute, description, ordering=None, size="", empty_value="—"):
    """A list column showing ``attribute`` (a dotted path: ``"customer.name"``) cut, sorted by ``ordering``."""

    def column(self, obj):
        value = obj
        for part in attribute.split("."):
            value = getattr(value, part, None)
            if value is None:
                break
        return cut_text(value, size)

    return admin.display(description=description, ordering=ordering, empty_value=empty_value)(column)


def unlinked_lines(model_admin, request, names):
    """{name: line} for each foreign key among ``names`` (read-only lines of ``model_admin``'s page) whose related
    records have an admin page the user may not open, as the users' pages are superusers' only: a line that
    names the record as plain text, where Django would link it to a page answering 403."""
    lines = {}
    for name in names:
        if not isinstance(name, str):
            continue
        try:
            field = model_admin.opts.get_field(name)
        except FieldDoesNotExist:
            continue
        if not (field.many_to_one or field.one_to_one):
            continue
        related_admin = model_admin.admin_site._registry.get(field.related_model)
        if related_admin is None or related_admin.has_view_permission(request):
            continue
        lines[name] = _plain(field)
    return lines


def replaced_line(line, lines):
    """A fieldset's ``line`` (a field's name, or a tuple of names shown side by side) with each name that ``lines``
    has in place of the name."""
    if isinstance(line, (list, tuple)):
        return tuple(lines.get(name, name) for name in line)
    return lines.get(line, line)


class UnlinkedLinesMixin:
    """For a model admin whose read-only lines name related records: each named as plain text where the user may not
    open the related record's page (``unlinked_lines``: the users' pages are superusers' only). A subclass may add
    read-only lines (``readonly_names``) and lines of its own in fields' places (``lines_in_place``)."""

    def get_readonly_fields(self, request, obj=None):
        names = self.readonly_names(request, obj)
        unlinked = unlinked_lines(self, request, names)
        return [unlinked.get(name, name) for name in names]

    def readonly_names(self, request, obj):
        """The page's read-only lines, a related record's by its field's name (before ``get_readonly_fields`` puts
        a plain-text line in its place)."""
        return super().get_readonly_fields(request, obj)

    def lines_in_place(self, request, obj):
        """{field name: line} of the lines of the subclass's own, among ``readonly_names``, that the fieldsets show in
        their fields' places only (in place of the plain-text line too)."""
        return {}

    def get_fieldsets(self, request, obj=None):
        return self.unlinked_fieldsets(request, obj, super().get_fieldsets(request, obj))

    def unlinked_fieldsets(self, request, obj, fieldsets):
        """``fieldsets`` with the lines that ``get_readonly_fields`` names as plain text, and the ``lines_in_place``,
        in their fields' places."""
        own = self.lines_in_place(request, obj)
        replaced = {**unlinked_lines(self, request, self.readonly_names(request, obj)), **own}
        if not replaced:
            return fieldsets
        # Not also where the fieldsets of a form read from it list the read-only lines, after the others.
        lines = list(own.values())
        return [
            (
                name,
                {
                    **options,
                    "fields": [replaced_line(line, replaced) for line in options["fields"] if line not in lines],
                },
            )
            for name, options in fieldsets
        ]


@functools.cache  # one line per field: the page finds its read-only lines by identity
def _plain(field):
    def line(obj):
        return getattr(obj, field.name)

    # Its name is the field's: the page's line keeps the field's place and class.
    line.__name__ = field.name
    return admin.display(description=field.verbose_name)(line)


class LabelledExportForm(SelectableFieldsExportForm):
    """The export page's choice of columns, each labelled as its record's field is, in the reader's language, with
    the file's column name beside it: "Type (interaction_type)". django-import-export titles the column name
    ("Interaction Type"), English in every language; a column that is no field of the record keeps that title."""

    def _get_field_label(self, resource, field_name):
        field = resource.fields.get(field_name)
        try:
            model_field = resource._meta.model._meta.get_field(getattr(field, "attribute", None) or field_name)
        except FieldDoesNotExist:
            return super()._get_field_label(resource, field_name)
        column = field.column_name if field else field_name
        return f"{capfirst(model_field.verbose_name)} ({column})"
