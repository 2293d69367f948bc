"""How a change history page shows values: choices by their labels, nothing shown as "None", the
values a record was created with on its first entry, a related record outside the user's book by
its id alone, in the list and on a past version's page, and a line per custom field changed."""

from django.contrib import admin
from django.contrib.auth import get_user_model
from django.db import models
from django.http import Http404
from django.utils.html import conditional_escape
from django.utils.text import capfirst
from django.utils.translation import gettext_lazy as _
from simple_history.admin import SimpleHistoryAdmin
from simple_history.models import DeletedObject
from simple_history.template_utils import HistoricalRecordContextHelper

from core import customfields
from core.admin.customfields import label as custom_field_label
from core.api.history import field_changes

# What an empty value reads as.
EMPTY = "—"
# Fields the history keeps for itself, not shown among a record's initial values.
SKIPPED = frozenset({"id", "created_at", "updated_at", "created_by"})
# The column of the custom fields' values, shown a line per custom field.
CUSTOM_FIELDS = "custom_fields"


class CRMHistoryContextHelper(HistoricalRecordContextHelper):
    """``named``: {foreign key name: the ids of the related records the page may name}; a record of another
    id reads "#id", as in the API's history (None: every one is named)."""

    def __init__(self, model, historical_record, *, named=None, **kwargs):
        super().__init__(model, historical_record, **kwargs)
        self.named = named

    def context_for_delta_changes(self, delta):
        # django-simple-history compares the editable fields only: the custom fields' column is not one.
        lines = super().context_for_delta_changes(delta)
        for name, old, new in self.custom_field_changes(delta.new_record, delta.old_record):
            old, new = self.get_obj_diff_display().common_shorten_repr(old, new)
            lines.append({"field": name, "old": conditional_escape(old), "new": conditional_escape(new)})
        return lines

    def custom_field_changes(self, record, previous):
        """``[(label, old text, new text)]``: a line per custom field whose value the history entry ``record``
        changed from ``previous`` (every one it was created with, for a first entry), as the API's history finds
        the column changed (``field_changes``), each value as the record's page shows it and labelled as there;
        a custom field deleted since (whose values the API's history lists too) by its key."""
        resource = customfields.resource_of(self.model)
        change = next((c for c in field_changes(record, previous) if c["field"] == CUSTOM_FIELDS), None)
        if resource is None or change is None:
            return []
        return [
            (
                _("%(key)s (deleted custom field)") % {"key": key}
                if definition is None
                else custom_field_label(resource, definition),
                self.custom_field_text(definition, old),
                self.custom_field_text(definition, new),
            )
            for definition, key, old, new in customfields.changes(resource, change["old"], change["new"])
        ]

    @staticmethod
    def custom_field_text(definition, value):
        text = customfields.display(definition, value)
        return EMPTY if text in ("", None) else str(text)

    def prepare_delta_change_value(self, change, value):
        value = super().prepare_delta_change_value(change, value)
        return self.readable(self.model._meta.get_field(change.field), value)

    def readable(self, field, value):
        if value is None or value == "" or value == []:
            return EMPTY
        if isinstance(value, list):  # the tags' names
            return ", ".join(map(str, value))
        if isinstance(value, models.Model) and self.named is not None and field.name in self.named:
            if value.pk not in self.named[field.name]:
                return f"#{value.pk}"
        if isinstance(value, bool):
            return _("Yes") if value else _("No")
        if field.choices and not isinstance(value, models.Model):
            return dict(field.flatchoices).get(value, value)
        return value

    def initial_values(self):
        """The first version's fields that were set, as ``{"field", "new"}`` items like a change's."""
        values = []
        for field in self.model._meta.concrete_fields:
            if field.name in SKIPPED or field.name == CUSTOM_FIELDS or not hasattr(self.record, field.attname):
                continue
            if field.is_relation:
                pk = getattr(self.record, field.attname)
                try:
                    value = getattr(self.record, field.name) if pk is not None else None
                except field.related_model.DoesNotExist:
                    value = None
                if value is None and pk is not None:
                    # Deleted since (the list's select_related finds no row): read as a change reads it.
                    value = DeletedObject(field.related_model, pk)
            else:
                value = getattr(self.record, field.attname)
            if value is None or value == "" or value == []:
                continue
            values.append({"field": capfirst(field.verbose_name), "new": self.shortened(self.readable(field, value))})
        for name, _old, new in self.custom_field_changes(self.record, None):
            values.append({"field": name, "new": self.shortened(new)})
        return values

    def shortened(self, value):
        text = str(value)
        if len(text) > self.max_displayed_delta_change_chars:
            text = text[: self.max_displayed_delta_change_chars - 1] + "…"
        return conditional_escape(text)


def by_id(field, pk):
    """A read-only line of a form for the foreign key ``field``, labelled as the field, that shows the related
    record ``pk`` by its id alone ("#12"), as the history list shows a record the user may not see: for a past
    version's page, where the field itself would name it."""

    def line(obj):
        return f"#{pk}"

    # Its name is the field's: the page's line keeps the field's place, class and help text.
    line.__name__ = field.name
    return admin.display(description=field.verbose_name)(line)


class HistoryAdmin(SimpleHistoryAdmin):
    """django-simple-history's pages, whose version in the address is a number: anything else is an
    unknown version (404), where django-simple-history's lookup fails with a server error."""

    # The history list without a literal "None", and with the first version's values (where the admin gives them).
    object_history_list_template = "admin/core/object_history_list.html"

    def history_form_view(self, request, object_id, version_id, extra_context=None):
        if not str(version_id).isdecimal():
            raise Http404
        return super().history_form_view(request, object_id, version_id, extra_context)

    def render_history_view(self, request, template, context, **kwargs):
        # Who made each change links to their user page only for those who may open it (the users' pages are
        # superusers'): for anyone else the link would answer 403.
        user_admin = self.admin_site._registry.get(get_user_model())
        if user_admin is None or not user_admin.has_view_permission(request):
            context = {**context, "admin_user_view": None}
        return super().render_history_view(request, template, context, **kwargs)
