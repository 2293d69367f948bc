"""Custom fields in the admin: the definitions' page (managers), and on the record pages typed form
fields, list columns and list filters built from the definitions at request time.

The values are checked by ``core.customfields.clean``, as on every other write path.
"""

import datetime
from decimal import Decimal

from django import forms
from django.contrib import admin
from django.contrib.admin.options import IncorrectLookupParameters
from django.contrib.admin.utils import flatten_fieldsets
from django.contrib.admin.widgets import AdminDateWidget
from django.contrib.messages import ERROR
from django.db.models.fields.json import KeyTransform
from django.http import HttpResponseRedirect, QueryDict
from django.urls import reverse
from django.utils.translation import gettext_lazy as _

from core import customfields
from core.admin.roles import ReadByAllWrittenByManagers
from core.models import CustomField

FORM_PREFIX = "cf_"


def form_field_name(definition):
    return FORM_PREFIX + definition.key


def label(resource, definition):
    """The label the pages show for ``definition``: marked as a custom field's when its key is the name of a field
    of the record (a key a field added later took), which the same page shows under its own label."""
    if definition.key in customfields.reserved_names(resource):
        return _("%(label)s (custom field)") % {"label": definition.display_label}
    return definition.display_label


def form_field(resource, definition):
    """A typed form field for ``definition`` (never ``required``: ``customfields.clean`` says so, once)."""
    options = {"label": label(resource, definition), "required": False}
    kind = definition.field_type
    if kind == "text":
        return forms.CharField(max_length=customfields.TEXT_MAX_LENGTH, **options)
    if kind == "long_text":
        return forms.CharField(max_length=customfields.LONG_TEXT_MAX_LENGTH, widget=forms.Textarea, **options)
    if kind == "number":
        limit = customfields.NUMBER_LIMIT
        return forms.IntegerField(min_value=-limit, max_value=limit, **options)
    if kind == "decimal":
        return forms.DecimalField(max_digits=customfields.DECIMAL_DIGITS, **options)
    if kind == "date":
        return forms.DateField(widget=AdminDateWidget, **options)
    if kind == "boolean":
        return forms.ChoiceField(choices=[("", "—"), ("true", _("Yes")), ("false", _("No"))], **options)
    if kind == "choice":
        return forms.ChoiceField(choices=[("", "—"), *((c, c) for c in definition.choices)], **options)
    if kind == "multi_choice":
        return forms.MultipleChoiceField(
            choices=[(c, c) for c in definition.choices], widget=forms.CheckboxSelectMultiple, **options
        )
    if kind == "url":
        return forms.URLField(max_length=customfields.URL_MAX_LENGTH, assume_scheme="https", **options)
    return forms.EmailField(max_length=customfields.EMAIL_MAX_LENGTH, **options)


def _initial(definition, value):
    """The stored ``value`` as its form field gives it back (a date, a ``Decimal``), so that a value
    left as it was reads as unchanged."""
    if definition.field_type == "boolean" and isinstance(value, bool):
        return "true" if value else "false"
    if definition.field_type == "decimal" and isinstance(value, (int, float)) and not isinstance(value, bool):
        return Decimal(repr(value)) if isinstance(value, float) else Decimal(value)
    if definition.field_type == "date" and isinstance(value, str):
        try:
            return datetime.date.fromisoformat(value)
        except ValueError:
            return value
    return value


def _as_cell(value):
    if isinstance(value, (datetime.date, Decimal)):
        return value.isoformat() if isinstance(value, datetime.date) else str(value)
    return value


class CustomFieldsFormMixin:
    """A model form with a field per custom field (``_custom_field_definitions``, set by the admin)."""

    _custom_field_resource = None
    _custom_field_definitions = ()

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        stored = self.instance.custom_fields or {}
        for definition in self._custom_field_definitions:
            name = form_field_name(definition)
            if name in self.fields and definition.key in stored and name not in self.initial:
                self.initial[name] = _initial(definition, stored[definition.key])

    def clean(self):
        cleaned = super().clean()
        incoming = {}
        for definition in self._custom_field_definitions:
            name = form_field_name(definition)
            if name in self.fields and name not in self.errors:
                incoming[definition.key] = _as_cell(self.cleaned_data.get(name))
        values, problems = customfields.clean(
            self._custom_field_resource, incoming, existing=self.instance.custom_fields, full=True, from_text=True
        )
        for key, messages in problems.items():
            name = FORM_PREFIX + key
            if name in self.fields and name not in self.errors:
                self.add_error(name, messages)
        self._custom_field_values = values
        return cleaned

    def _post_clean(self):
        super()._post_clean()
        values = getattr(self, "_custom_field_values", None)
        if values is not None:
            self.instance.custom_fields = values


def _column(resource, definition):
    def column(obj):
        value = (obj.custom_fields or {}).get(definition.key)
        return None if value is None else customfields.display(definition, value)

    column.short_description = label(resource, definition)
    column.admin_order_field = KeyTransform(definition.key, "custom_fields")
    column.__name__ = form_field_name(definition)
    return column


def _list_filter(resource, definition):
    class CustomFieldFilter(admin.SimpleListFilter):
        title = label(resource, definition)
        parameter_name = form_field_name(definition)

        def lookups(self, request, model_admin):
            if definition.field_type in customfields.CHOICE_TYPES:
                return [(choice, choice) for choice in definition.choices]
            if definition.field_type == "boolean":
                return [("true", _("Yes")), ("false", _("No"))]
            return [("!set", _("Has a value")), ("!unset", _("Empty"))]

        def queryset(self, request, queryset):
            value = self.value()
            if value is None:
                return queryset
            if value in ("!set", "!unset"):
                has = queryset.filter(custom_fields__has_key=definition.key)
                return has if value == "!set" else queryset.exclude(custom_fields__has_key=definition.key)
            params = QueryDict(mutable=True)
            params[customfields.FILTER_PREFIX + definition.key] = value
            filtered, errors = customfields.apply_filters(queryset, resource, params)
            if errors:
                raise IncorrectLookupParameters(errors)
            return filtered

    return CustomFieldFilter


class CustomFieldsAdminMixin:
    """For a ``CRMModelAdmin`` of a model with custom fields: form fields, list columns and filters."""

    custom_fields_section = _("Custom fields")

    def _custom_field_resource(self):
        return customfields.resource_of(self.model)

    def _custom_field_definitions(self):
        resource = self._custom_field_resource()
        return customfields.definitions(resource) if resource else []

    def __getattr__(self, name):
        # A user who may only view a record sees each custom field as a read-only line: the admin
        # looks its label and value up on the model admin by the field's name.
        if name.startswith(FORM_PREFIX):
            model = self.__dict__.get("model")
            resource = customfields.resource_of(model) if model is not None else None
            for definition in customfields.definitions(resource) if resource else []:
                if form_field_name(definition) == name:
                    return _column(resource, definition)
        raise AttributeError(name)

    def get_fieldsets(self, request, obj=None):
        fieldsets = [
            (name, {**options, "fields": [f for f in options["fields"] if not str(f).startswith(FORM_PREFIX)]})
            for name, options in super().get_fieldsets(request, obj)
        ]
        names = [form_field_name(d) for d in self._custom_field_definitions()]
        if names:
            fieldsets.append((self.custom_fields_section, {"fields": names}))
        return fieldsets

    def get_form(self, request, obj=None, change=False, **kwargs):
        if kwargs.get("fields") is None and "fields" not in kwargs:
            kwargs["fields"] = flatten_fieldsets(self.get_fieldsets(request, obj))
        if kwargs.get("fields"):
            kwargs["fields"] = [name for name in kwargs["fields"] if not str(name).startswith(FORM_PREFIX)]
        form = super().get_form(request, obj, change, **kwargs)
        definitions = self._custom_field_definitions()
        if not definitions:
            return form
        resource = self._custom_field_resource()
        attrs = {form_field_name(d): form_field(resource, d) for d in definitions}
        attrs["_custom_field_definitions"] = definitions
        attrs["_custom_field_resource"] = resource
        return type(form.__name__, (CustomFieldsFormMixin, form), attrs)

    def get_list_display(self, request):
        resource = self._custom_field_resource()
        columns = [_column(resource, d) for d in self._custom_field_definitions() if d.show_in_list]
        return [*super().get_list_display(request), *columns]

    def get_list_filter(self, request):
        resource = self._custom_field_resource()
        filters = [_list_filter(resource, d) for d in self._custom_field_definitions() if d.filterable]
        return [*super().get_list_filter(request), *filters]


# The definitions' page.


class CustomFieldForm(forms.ModelForm):
    model = forms.ChoiceField(label=_("model"), choices=[])
    choices = forms.CharField(
        label=_("choices"),
        required=False,
        widget=forms.Textarea(attrs={"rows": 4}),
        help_text=_("One choice per line, for choice and multiple-choice fields."),
    )

    class Meta:
        model = CustomField
        fields = [
            "model",
            "key",
            "label",
            "label_zh",
            "field_type",
            "required",
            "choices",
            "order",
            "show_in_list",
            "filterable",
        ]

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        self.fields["model"].choices = [(name, name) for name in sorted(customfields.MODELS)]
        if self.instance.pk is not None:
            self.initial["choices"] = "\n".join(self.instance.choices or [])
            for name in ("model", "key"):
                self.fields[name].disabled = True

    def clean_choices(self):
        text = self.cleaned_data.get("choices") or ""
        return [line.strip() for line in text.splitlines() if line.strip()]

    def clean(self):
        cleaned = super().clean()
        instance = self.instance if self.instance.pk is not None else None
        model, key = cleaned.get("model"), cleaned.get("key")
        if model is None or key is None or "field_type" not in cleaned:
            return cleaned
        errors = customfields.definition_errors(
            model, key, cleaned["field_type"], cleaned.get("choices") or [], instance=instance
        )
        for name, messages in errors.items():
            self.add_error(name if name in self.fields else None, messages)
        return cleaned

    def validate_unique(self):
        pass  # definition_errors says it, on the key


@admin.register(CustomField)
class CustomFieldAdmin(ReadByAllWrittenByManagers, admin.ModelAdmin):
    """Managers define the fields; every role may look at them."""

    form = CustomFieldForm
    list_display = [
        "model",
        "key",
        "label",
        "label_zh",
        "field_type",
        "required",
        "order",
        "show_in_list",
        "filterable",
    ]
    list_filter = ["model", "field_type"]
    ordering = ["model", "order", "id"]

    def changeform_view(self, request, object_id=None, form_url="", extra_context=None):
        try:
            return super().changeform_view(request, object_id, form_url, extra_context)
        except customfields.StoredValuesMisfit as exc:
            # A value written since the form's check does not fit: the whole save was rolled back.
            self.message_user(request, str(exc), ERROR)
            return HttpResponseRedirect(request.get_full_path())
        except customfields.DefinitionGone as exc:
            # Deleted by someone else since the page read it: nothing was saved, and it has no page now.
            self.message_user(request, str(exc), ERROR)
            return HttpResponseRedirect(reverse(f"{self.admin_site.name}:core_customfield_changelist"))

    def save_model(self, request, obj, form, change):
        customfields.save_definition(obj, user=request.user)

    def delete_model(self, request, obj):
        super().delete_model(request, obj)
        customfields.forget()

    def delete_queryset(self, request, queryset):
        super().delete_queryset(request, queryset)
        customfields.forget()
