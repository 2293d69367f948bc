"""How a change history page shows values: choices by their labels, nothing shown as "None", the
values a record was created with on its first entry, and a related record outside the user's book by
its id alone, in the list and on a past version's page."""

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

# What an empty value reads as.
EMPTY = "—"
# Fields the history keeps for itself, not shown among a record's initial values.
SKIPPED = frozenset({"id", "created_at", "updated_at", "created_by"})


class CRMHistoryContextHelper(HistoricalRecordContextHelper):
    """``named``: {foreign key name: the ids of the related records the page may name}; a record of another
    id reads "#id", as in the API's history (None: every one is named)."""

    def __init__(self, model, historical_record, *, named=None, **kwargs):
        super().__init__(model, historical_record, **kwargs)
        self.named = named

    def prepare_delta_change_value(self, change, value):
        value = super().prepare_delta_change_value(change, value)
        return self.readable(self.model._meta.get_field(change.field), value)

    def readable(self, field, value):
        if value is None or value == "":
            return EMPTY
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
            if field.name in SKIPPED or not hasattr(self.record, field.attname):
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
            if value is None or value == "":
                continue
            shown = self.readable(field, value)
            text = str(shown)
            if len(text) > self.max_displayed_delta_change_chars:
                text = text[: self.max_displayed_delta_change_chars - 1] + "…"
            values.append({"field": capfirst(field.verbose_name), "new": conditional_escape(text)})
        return values


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
