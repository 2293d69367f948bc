"""Widgets of the admin: of the lists, that render many times a page, and the record picker of a form."""

from django import forms
from django.contrib.admin.widgets import AutocompleteSelect, AutocompleteSelectMultiple
from django.utils.html import conditional_escape
from django.utils.safestring import mark_safe

from core.admin.lookups import comparable


def _attrs(attrs):
    """Django's ``django/forms/widgets/attrs.html``: `` name="value"``, a bare `` name`` for True, nothing for False."""
    return "".join(
        f" {conditional_escape(name)}"
        if value is True
        else f' {conditional_escape(name)}="{conditional_escape(str(value))}"'
        for name, value in attrs.items()
        if value is not False
    )


class ListSelect(forms.Select):
    """Django's ``Select``, the same HTML, built without the templates.

    Django's template includes two more templates for each option: a list's editable stage on
    fifty rows of eight options each was 900 template lookups and renders, most of a page's
    Python time. ``tests/core/admin/test_widgets.py`` compares the two renderings.
    """

    def render(self, name, value, attrs=None, renderer=None):
        widget = self.get_context(name, value, attrs)["widget"]
        parts = [f'<select name="{conditional_escape(widget["name"])}"{_attrs(widget["attrs"])}>']
        for group_name, group_choices, _index in widget["optgroups"]:
            if group_name:
                parts.append(f'\n  <optgroup label="{conditional_escape(group_name)}">')
            for option in group_choices:
                parts.append(
                    f'\n  <option value="{conditional_escape(str(option["value"]))}"{_attrs(option["attrs"])}>'
                    f"{conditional_escape(option['label'])}</option>\n"
                )
            if group_name:
                parts.append("\n  </optgroup>")
        parts.append("\n</select>")
        return mark_safe("".join(parts))  # noqa: S308 (every value above is escaped)


class CheckedAutocompleteMixin:
    """Django's record picker (``autocomplete_fields``, the tags of a record), which looks up only values
    its column can hold.

    The picker reads the records it shows by the values posted or given in the address
    (``add/?customer=``); Django's lookup fails with a server error on one that is no id (``abc``, ``1.5``,
    a NUL, a number beyond 64 bits). Such a value is shown as no choice: the form says the choice is not
    valid, as for an id that names no record.
    """

    def optgroups(self, name, value, attr=None):
        return super().optgroups(name, [item for item in value if self._comparable(item)], attr)

    def _comparable(self, value):
        remote = self.field.remote_field
        target = remote.model._meta.get_field(getattr(remote, "field_name", None) or remote.model._meta.pk.name)
        return comparable(target, value)


class CheckedAutocompleteSelect(CheckedAutocompleteMixin, AutocompleteSelect):
    pass


class CheckedAutocompleteSelectMultiple(CheckedAutocompleteMixin, AutocompleteSelectMultiple):
    pass
