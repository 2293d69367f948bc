"""The admin's file formats: uploads read within the import bounds (``core.tables``) and
decoded like ``manage.py import_customers`` does, and exported cells neutralised like the
API's exports (``core.cells``)."""

import tablib
from django.utils.translation import gettext_lazy as _
from import_export.formats import base_formats

from core.cells import csv_cell, csv_text, xlsx_cell
from core.tables import FileRefused, csv_rows, xlsx_rows


def decode_text(data):
    """The text of an uploaded file, as ``core.cells.csv_text`` finds it."""
    if isinstance(data, str):
        return data
    text = csv_text(data)
    if text is not None:
        return text
    raise FileRefused(_("The file is not text in UTF-8 or GB18030. Save it from the spreadsheet as “CSV UTF-8”."))


def table_dataset(rows):
    """A dataset of ``rows`` (``(line, cells)``, the first naming the columns), short rows padded."""
    if not rows:
        return tablib.Dataset()
    width = max(len(cells) for _line, cells in rows)
    padded = [[*cells, *[None] * (width - len(cells))] for _line, cells in rows]
    return tablib.Dataset(*padded[1:], headers=padded[0])


def _cells(dataset, convert):
    """A copy of ``dataset`` with ``convert`` applied to every cell."""
    return tablib.Dataset(
        *[[convert(value) for value in row] for row in dataset], headers=dataset.headers, title=dataset.title
    )


class CSV(base_formats.CSV):
    # Uploads are kept and read as bytes, so that their encoding can be found here.
    def is_binary(self):
        return True

    def get_read_mode(self):
        return "rb"

    def create_dataset(self, in_stream, **kwargs):
        return table_dataset(csv_rows(decode_text(in_stream)))

    def export_data(self, dataset, **kwargs):
        return super().export_data(_cells(dataset, csv_cell), **kwargs)


class XLSX(base_formats.XLSX):
    def create_dataset(self, in_stream, **kwargs):
        return table_dataset(xlsx_rows(in_stream))

    def export_data(self, dataset, **kwargs):
        return super().export_data(_cells(dataset, xlsx_cell), **kwargs)
