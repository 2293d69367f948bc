"""The inlines of the CRM's admin pages: rows that carry the values they showed, like the record's own form.

Every inline of the project derives from ``CRMTabularInline``. Its rows are ``CRMModelForm``s (an inline
given a plain model form gets it wrapped in one), so saving the parent page writes back only the rows
its user changed, and refuses a row whose user changed something while someone else changed a field it
carries.
"""

from django.contrib import admin

from core.admin.base import CRMModelForm


class CRMTabularInline(admin.TabularInline):
    """A tabular inline whose rows carry the values they showed (``CRMModelForm``)."""

    form = CRMModelForm

    def get_formset(self, request, obj=None, **kwargs):
        form = kwargs.get("form", self.form)
        if not issubclass(form, CRMModelForm):
            kwargs["form"] = type(form.__name__, (CRMModelForm, form), {})
        return super().get_formset(request, obj, **kwargs)
