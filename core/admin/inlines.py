"""The inlines of the CRM's admin pages: rows that carry the values they showed, like the record's own form.

Every inline of the project derives from ``CRMTabularInline``. Its rows are ``CRMModelForm``s (an inline
given a plain model form gets it wrapped in one), so saving the parent page writes back only the rows
its user changed, and refuses a row whose user changed something while someone else changed a field it
carries. Its formset (``ShownRowsFormSet``) answers for the rows whose records are no longer among the
page's rows when it is posted: deleted, or moved to another record, meanwhile.
"""

from django.contrib import admin
from django.forms.models import BaseInlineFormSet

from core.admin.base import CRMModelForm, ShownRowsFormSet, carrying_shown_values


class ShownInlineRowsFormSet(ShownRowsFormSet, BaseInlineFormSet):
    """An inline's rows, read against the rows the page showed (``ShownRowsFormSet``)."""


class CRMTabularInline(admin.TabularInline):
    """A tabular inline whose rows carry the values they showed (``CRMModelForm``, ``ShownRowsFormSet``)."""

    form = CRMModelForm
    formset = ShownInlineRowsFormSet

    def get_formset(self, request, obj=None, **kwargs):
        kwargs["form"] = carrying_shown_values(kwargs.get("form", self.form), CRMModelForm)
        kwargs["formset"] = carrying_shown_values(kwargs.get("formset", self.formset), ShownRowsFormSet)
        formset = super().get_formset(request, obj, **kwargs)
        # A post locks only the rows it may write (``ShownRowsFormSet.posted_rows``): of an inline its user may
        # not change (the company page's lists of its people and deals), none but those they delete.
        formset.rows_changeable = request is None or self.has_change_permission(request, obj)
        return formset
