"""What every CRM model admin shares: import/export, history, and deletions that keep their history."""

from django.db import transaction
from import_export.admin import ExportActionMixin, ImportExportMixin
from import_export.formats.base_formats import CSV, XLSX
from simple_history.admin import SimpleHistoryAdmin

from crm_site.history import batched_delete_history


class CRMModelAdmin(ImportExportMixin, ExportActionMixin, SimpleHistoryAdmin):
    """A model admin with CSV/XLSX import (previewed before writing), export of the
    filtered list or of a selection, and field-by-field change history."""

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
