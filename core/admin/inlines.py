"""The inlines of the CRM's admin pages: rows that carry the values they showed, like the record's own form.

Every inline of the project derives from ``CRMTabularInline``. Its rows are ``CRMModelForm``s (an inline
given a plain model form gets it wrapped in one), so saving the parent page writes back only the rows
its user changed, and refuses a row whose user changed something while someone else changed a field it
carries. Its formset (``ShownRowsFormSet``) answers for the rows whose records are no longer among the
page's rows when it is posted: deleted, or moved to another record, meanwhile.
"""

from django.contrib import admin
from django.forms.models import BaseInlineFormSet

from core.admin.base import CRMModelForm


class ShownRowsFormSet(BaseInlineFormSet):
    """An inline's rows, read against the rows the page showed.

    Django looks each posted row up among the parent's rows as they are now: a row gone since the page
    was shown becomes a new, unsaved record whose hidden id fails to validate, and the page is refused
    with "Please correct the error below" and no error in sight, even when its user did not touch the
    row. Here such a row is told so (``CRMModelForm.mark_row_gone``): left as shown, or marked for
    deletion, it is left out and the page saves; changed, it is refused with a message of its own.
    """

    def _construct_form(self, i, **kwargs):
        form = super()._construct_form(i, **kwargs)
        if self.is_bound and i < self.initial_form_count() and form.instance.pk is None:
            form.mark_row_gone()
        return form

    def _should_delete_form(self, form):
        # A row changed by someone else since the page was shown is not deleted unseen: its form is refused.
        return super()._should_delete_form(form) and not form.changed_meanwhile

    def get_queryset(self):
        # Once a posted page's rows are read, each row's record is the one it was posted for (None for a
        # row gone since): the admin pairs the rows with these to show a refused page again, and pairing
        # them with the rows as they are now would show a row beside another record's read-only values.
        if self.is_bound and "forms" in self.__dict__:
            return [None if form.row_gone else form.instance for form in self.initial_forms]
        return super().get_queryset()

    def gone_rows(self):
        """The rows left out, as their user left them as shown, because their records were deleted or moved
        elsewhere since the page was shown."""
        return [form for form in self.initial_forms if form.row_gone and not self._should_delete_form(form)]


class CRMTabularInline(admin.TabularInline):
    """A tabular inline whose rows carry the values they showed (``CRMModelForm``, ``ShownRowsFormSet``)."""

    form = CRMModelForm
    formset = ShownRowsFormSet

    def get_formset(self, request, obj=None, **kwargs):
        form = kwargs.get("form", self.form)
        if not issubclass(form, CRMModelForm):
            kwargs["form"] = type(form.__name__, (CRMModelForm, form), {})
        formset = kwargs.get("formset", self.formset)
        if not issubclass(formset, ShownRowsFormSet):
            kwargs["formset"] = type(formset.__name__, (ShownRowsFormSet, formset), {})
        return super().get_formset(request, obj, **kwargs)
