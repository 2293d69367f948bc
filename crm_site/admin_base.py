"""What every CRM model admin shares: import/export, history, and deletions that keep their history."""

from django.contrib import messages
from django.contrib.admin.utils import unquote
from django.db import transaction
from django.template.response import TemplateResponse
from django.utils.translation import gettext_lazy as _
from import_export.admin import ExportActionMixin, ImportExportMixin
from simple_history.admin import SimpleHistoryAdmin

from crm_site import access
from crm_site.admin_formats import CSV, XLSX
from crm_site.history import batched_delete_history
from crm_site.resources import FileRefused


class CRMModelAdmin(ImportExportMixin, ExportActionMixin, SimpleHistoryAdmin):
    """A model admin with CSV/XLSX import (previewed before writing), export of the
    filtered list or of a selection, and field-by-field change history.

    Every page sees only the records the user may see (``crm_site.access.scope``):
    lists, search, autocomplete, change, delete and history pages, exports, and
    the customers offered in forms. New records remember their creator.

    Imported rows are validated by the API's serializers (``crm_site.resources``);
    exported cells are neutralised for spreadsheets as the API's exports are
    (``crm_site.admin_formats``).
    """

    formats = [CSV, XLSX]
    list_per_page = 50
    # The export button on a record's page would duplicate the export action.
    show_change_form_export = False

    def get_valid_export_item_pks(self, request):
        # The records a selection-export may name: those this user's changelist can show.
        return self.get_queryset(request).values_list("pk", flat=True)

    def delete_model(self, request, obj):
        with transaction.atomic(), batched_delete_history():
            super().delete_model(request, obj)

    def delete_queryset(self, request, queryset):
        with transaction.atomic(), batched_delete_history():
            super().delete_queryset(request, queryset)

    def get_queryset(self, request):
        return access.scope(super().get_queryset(request), request.user)

    def formfield_for_foreignkey(self, db_field, request, **kwargs):
        if db_field.related_model._meta.label_lower in access.OWNER_PATHS:
            kwargs["queryset"] = access.scope(db_field.related_model._default_manager.all(), request.user)
        return super().formfield_for_foreignkey(db_field, request, **kwargs)

    def save_model(self, request, obj, form, change):
        if not change:
            obj.created_by = request.user
        super().save_model(request, obj, form, change)

    def history_view(self, request, object_id, extra_context=None):
        # django-simple-history falls back to the records of a deleted object; a
        # user who may not see everything gets only the history of what is in their book.
        # Ids are numbers: anything else is answered like an unknown id, as the change page does.
        if not str(object_id).isdigit() or (
            not access.sees_everything(request.user) and not self._in_scope(request, object_id)
        ):
            return self._get_obj_does_not_exist_redirect(request, self.opts, object_id)
        return super().history_view(request, object_id, extra_context)

    def history_form_view(self, request, object_id, version_id, extra_context=None):
        if not self._in_scope(request, object_id):
            return self._get_obj_does_not_exist_redirect(request, self.opts, object_id)
        return super().history_form_view(request, object_id, version_id, extra_context)

    def _in_scope(self, request, object_id):
        return self.get_object(request, unquote(object_id)) is not None

    def get_resource_kwargs(self, request, *args, **kwargs):
        # Resources look records up (ids, emails, customers) within the user's scope,
        # and validate rows with the API's serializers in the context of this request.
        return {**super().get_resource_kwargs(request, *args, **kwargs), "user": request.user, "request": request}

    def get_import_data_kwargs(self, **kwargs):
        # A confirmed import is written whole or not at all: should a row fail now (the
        # records changed since the preview), every row is rolled back.
        return {**super().get_import_data_kwargs(**kwargs), "rollback_on_validation_errors": True}

    def process_result(self, result, request):
        if not (result.has_errors() or result.has_validation_errors()):
            return super().process_result(result, request)
        messages.error(
            request, _("Nothing was imported: some rows are no longer valid. Correct them and import the file again.")
        )
        context = {
            **self.admin_site.each_context(request),
            "title": _("Import"),
            "opts": self.model._meta,
            "form": self.get_import_form_class(request)(
                self.get_import_formats(), self.get_import_resource_classes(request)
            ),
            "result": result,
            "import_error_display": self.import_error_display,
        }
        return TemplateResponse(request, [self.import_template_name], context)

    def add_data_read_fail_error_to_form(self, form, e):
        if isinstance(e, FileRefused):
            message = str(e)
        else:
            file_format = self.get_import_formats()[int(form.cleaned_data["format"])]().get_title().upper()
            message = _(
                "This file cannot be read as %(format)s: it is damaged, empty or of another kind. "
                "Choose the format that matches the file."
            ) % {"format": file_format}
        form.add_error("import_file", message)
