"""``GET /api/<resource>/export?format=csv|xlsx``: the filtered list as a file, in flat memory.

CSV is streamed while the rows are read from a database iterator; XLSX is
written by openpyxl's write-only workbook to a temporary file, then sent.
Both take the same filters, search and ordering as the list.
"""

import csv
import io
import tempfile

from django.db.models import F
from django.http import FileResponse, StreamingHttpResponse
from django.utils import timezone
from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import extend_schema
from rest_framework import serializers
from rest_framework.decorators import action

from core import customfields
from core.cells import csv_cell, xlsx_cell

from .query import validated_query

XLSX_CONTENT_TYPE = "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet"
XLSX_MAX_ROWS = 1_048_576  # per sheet, header included


class ExportQuerySerializer(serializers.Serializer):
    format = serializers.ChoiceField(choices=["csv", "xlsx"], default="csv")


class _Echo:
    """A file-like object whose write() hands the text back, for csv.writer in a generator."""

    def write(self, value):
        return value


def csv_chunks(header, rows, rows_per_chunk):
    """UTF-8 text with a BOM (so that Excel reads Chinese correctly), ``rows_per_chunk`` rows at a time."""
    buffer = io.StringIO()
    writer = csv.writer(buffer)
    buffer.write("\ufeff")
    writer.writerow(header)
    count = 0
    for row in rows:
        writer.writerow([csv_cell(value) for value in row])
        count += 1
        if count % rows_per_chunk == 0:
            yield buffer.getvalue()
            buffer.seek(0)
            buffer.truncate()
    yield buffer.getvalue()


def xlsx_file(title, header, rows):
    """A temporary file holding the rows as an XLSX workbook, with further sheets past Excel's row limit."""
    from openpyxl import Workbook

    workbook = Workbook(write_only=True)
    sheet = None
    written = XLSX_MAX_ROWS
    for row in rows:
        if written == XLSX_MAX_ROWS:
            sheet = workbook.create_sheet(title if sheet is None else f"{title} {len(workbook.sheetnames) + 1}")
            sheet.append(header)
            written = 1
        sheet.append([xlsx_cell(value) for value in row])
        written += 1
    if sheet is None:
        workbook.create_sheet(title).append(header)
    output = tempfile.TemporaryFile()
    workbook.save(output)
    output.seek(0)
    return output


class ExportMixin:
    """Adds the ``export`` action to a model viewset.

    The columns are the model's own fields (foreign keys as ``<name>_id``)
    unless ``export_fields`` lists others.
    """

    export_fields = None
    # Column -> the field it is read from, where they differ (a column kept under its older name).
    export_sources = {}
    export_chunk_size = 2000

    def get_export_fields(self, model):
        # (Custom field values come as a column per field: core.customfields.export_columns.)
        if self.export_fields:
            return list(self.export_fields)
        fields = [field.attname for field in model._meta.concrete_fields if field.attname != "custom_fields"]
        # A tagged model's tags (an inherited field, so listed first) go last, after the record's own columns.
        return [name for name in fields if name != "tags"] + [name for name in fields if name == "tags"]

    def perform_content_negotiation(self, request, force=False):
        # Here ``?format=`` names the file type, not a renderer: answer errors in the JSON envelope.
        if "export" in getattr(self, "action_map", {}).values():
            renderer = self.renderer_classes[0]()
            return renderer, renderer.media_type
        return super().perform_content_negotiation(request, force)

    @extend_schema(
        parameters=[ExportQuerySerializer],
        responses={(200, "text/csv"): OpenApiTypes.BINARY, (200, XLSX_CONTENT_TYPE): OpenApiTypes.BINARY},
    )
    @action(detail=False, methods=["get"], url_path="export")
    def export(self, request):
        """The list's rows (same filters, search and ordering), as CSV or XLSX."""
        file_format = validated_query(request, ExportQuerySerializer).validated_data["format"]
        queryset = self.filter_queryset(self.get_queryset())
        header = self.get_export_fields(queryset.model)
        sources = [F(self.export_sources[column]) if column in self.export_sources else column for column in header]
        # A column per custom field of the model, after the record's own (core/customfields.py).
        header, sources, convert = customfields.export_columns(queryset.model, header, sources)
        rows = map(convert, queryset.values_list(*sources).iterator(chunk_size=self.export_chunk_size))
        name = str(queryset.model._meta.verbose_name_plural).replace(" ", "_")
        filename = f"{name}-{timezone.now():%Y%m%d-%H%M%S}.{file_format}"
        if file_format == "csv":
            response = StreamingHttpResponse(
                csv_chunks(header, rows, self.export_chunk_size), content_type="text/csv; charset=utf-8"
            )
            response["Content-Disposition"] = f'attachment; filename="{filename}"'
            return response
        return FileResponse(
            xlsx_file(name, header, rows), as_attachment=True, filename=filename, content_type=XLSX_CONTENT_TYPE
        )
