"""What every CRM model admin shares: import/export, history, and deletions that keep their history."""

from django.contrib.admin.utils import unquote
from django.db import transaction
from import_export.admin import ExportActionMixin, ImportExportMixin
from import_export.formats.base_formats import CSV, XLSX
from simple_history.admin import SimpleHistoryAdmin

from crm_site import access
from crm_site.history import batched_delete_history


class CRMModelAdmin(ImportExportMixin, ExportActionMixin, SimpleHistoryAdmin):
    """A model admin with CSV/XLSX import (previewed before writing), export of the
    filtered list or of a selection, and field-by-field change history.

    Every page sees only the records the user may see (``crm_site.access.scope``):
    lists, search, autocomplete, change, delete and history pages, exports, and
    the customers offered in forms. New records remember their creator.
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
        # Resources look records up (ids, emails, customers) within the user's scope.
        return {**super().get_resource_kwargs(request, *args, **kwargs), "user": request.user}
