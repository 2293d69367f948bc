"""Reading uploaded tables (CSV text, XLSX workbooks) with a bound on the work one file can cause.

Every import (the admin's and ``manage.py import_customers``) reads its file here.
The bounds are settings (docs/deployment.md): the file's size, the number of
rows, the length of a cell and, for XLSX, the size of the workbook once
unzipped. A file beyond any of them is refused as a whole with a message that
says which bound it passed, before any row is processed.

XLSX is read with a streaming XML parser fed large chunks, so that reading
costs time in proportion to the unzipped size (a giant comment or string in a
sheet does not make it quadratic, as parsing it in small chunks does), and
the zip's sizes are checked before anything is unzipped (a zip bomb is
refused without unzipping it). Rows are lists of cells, as openpyxl's
``data_only`` reading gives them: text, numbers, booleans and date-times.
"""

import csv
import datetime
import io
import itertools
import posixpath
import re
import zipfile
from dataclasses import dataclass, replace
from xml.parsers import expat

from django.conf import settings
from django.utils.translation import gettext as _
from django.utils.translation import gettext_lazy
from openpyxl.styles.numbers import BUILTIN_FORMATS, is_date_format, is_timedelta_format
from openpyxl.utils.cell import column_index_from_string, coordinate_from_string
from openpyxl.utils.datetime import MAC_EPOCH, WINDOWS_EPOCH, from_excel, from_ISO8601

# Wider rows are refused: no export has more than a dozen columns, and a bound keeps
# a header of a million empty cells from padding every row to that width.
MAX_COLUMNS = 200
# Above this unzipped size, a part compressed more than MAX_RATIO times is refused:
# spreadsheets compress about 5 to 20 times; zip bombs, thousands of times.
RATIO_FLOOR = 1024 * 1024
MAX_RATIO = 100
# XML is parsed this many bytes at a time: large enough that a single token filling
# a whole part is rescanned only a few times (expat rescans an unfinished token at every chunk).
XML_CHUNK = 1024 * 1024


class FileRefused(ValueError):
    """The file as a whole cannot be imported; its message is shown as it is, without a traceback."""


class NotAWorkbook(FileRefused):
    """The file is no XLSX workbook, or a damaged one."""


@dataclass(frozen=True)
class Limits:
    max_bytes: int
    max_rows: int
    max_cell_chars: int
    max_unzipped_bytes: int

    @classmethod
    def from_settings(cls):
        return cls(
            max_bytes=settings.IMPORT_MAX_BYTES,
            max_rows=settings.IMPORT_MAX_ROWS,
            max_cell_chars=settings.IMPORT_MAX_CELL_CHARS,
            max_unzipped_bytes=settings.IMPORT_MAX_UNZIPPED_BYTES,
        )

    @classmethod
    def from_options(cls, max_rows=None, max_bytes=None):
        """The settings' bounds, raised by a command's ``--max-rows`` and ``--max-bytes`` (a file may unzip to 16 times that)."""
        limits = cls.from_settings()
        if max_rows:
            limits = replace(limits, max_rows=max_rows)
        if max_bytes:
            limits = replace(
                limits, max_bytes=max_bytes, max_unzipped_bytes=max(limits.max_unzipped_bytes, 16 * max_bytes)
            )
        return limits


def check_size(size, limits=None):
    """Refuse a file of ``size`` bytes when it is larger than the bound."""
    limits = limits or Limits.from_settings()
    if size > limits.max_bytes:
        raise FileRefused(
            _("The file is %(size)s bytes; the limit is %(limit)s bytes (DJANGO_IMPORT_MAX_BYTES). Split it.")
            % {"size": size, "limit": limits.max_bytes}
        )


class _Bounds:
    """Counts the rows of a table as they are read, refusing the file at the first bound passed."""

    def __init__(self, limits):
        self.limits = limits
        self.rows = []  # (line number, cells)
        self.characters = 0

    def cell(self, line, column, value):
        if isinstance(value, str):
            if len(value) > self.limits.max_cell_chars:
                self.refuse_cell(line, column, len(value))
            # A workbook's cells may all name one shared string: a file of a few KB whose text, read,
            # takes gigabytes. No sheet of the bounded rows holds more text than its workbook's bound.
            self.characters += len(value)
            if self.characters > self.limits.max_unzipped_bytes:
                raise FileRefused(
                    _(
                        "The workbook's cells hold more than %(limit)s characters in all "
                        "(DJANGO_IMPORT_MAX_UNZIPPED_BYTES)."
                    )
                    % {"limit": self.limits.max_unzipped_bytes}
                )
        return value

    def refuse_cell(self, line, column, length):
        raise FileRefused(
            _("Line %(line)s, column %(column)s holds more than %(limit)s characters (DJANGO_IMPORT_MAX_CELL_CHARS).")
            % {"line": line, "column": column, "limit": self.limits.max_cell_chars}
        )

    def add(self, line, cells):
        while cells and cells[-1] in (None, ""):
            cells.pop()
        if len(cells) > MAX_COLUMNS:
            raise FileRefused(
                _("Line %(line)s has more than %(limit)s columns.") % {"line": line, "limit": MAX_COLUMNS}
            )
        # The first row names the columns; the ones after it are data.
        if len(self.rows) > self.limits.max_rows:
            raise FileRefused(
                _(
                    "The file has more than %(limit)s rows; the limit is %(limit)s rows "
                    "(DJANGO_IMPORT_MAX_ROWS). Split it into smaller files."
                )
                % {"limit": self.limits.max_rows}
            )
        self.rows.append((line, cells))


def csv_rows(text, limits=None):
    """The non-empty lines of CSV ``text`` as ``(line number, cells)``, the first being the header."""
    bounds = _Bounds(limits or Limits.from_settings())
    reader = csv.reader(io.StringIO(text, newline=""))
    line = last = 1
    try:
        for record in reader:
            last = line
            if record:
                for column, value in enumerate(record, start=1):
                    bounds.cell(line, column, value)
                bounds.add(line, record)
            line = reader.line_num + 1
    except csv.Error as exc:
        raise FileRefused(
            _("Line %(line)s cannot be read as CSV: %(error)s.") % {"line": reader.line_num, "error": exc}
        ) from exc
    _check_widths(bounds.rows)
    if _quote_left_open(text, last):
        raise FileRefused(
            _(
                "Line %(line)s opens a quoted cell that is never closed: the rest of the file would be read "
                "as that one cell. Check the quotes on that line."
            )
            % {"line": last}
        )
    return bounds.rows


def _check_widths(rows):
    """Refuse a header of one cell holding another delimiter ("name;email": Excel's "CSV" where the decimal
    mark is a comma), and a row with more cells than the header names (trailing empty cells aside): in CSV
    that is a value holding a comma without its quotes ("Acme, Inc"), which shifts the row's cells and would
    drop the last ones silently, as cells of no column."""
    header = next((cells for _line, cells in rows if any(cell.strip() for cell in cells)), [])
    delimiter = next((mark for mark in (";", "\t", "|") if len(header) == 1 and mark in header[0]), None)
    if delimiter:
        raise FileRefused(
            _(
                "The first row is one cell, “%(header)s”: its columns are separated by “%(delimiter)s”, not by "
                "commas. Save the file as “CSV UTF-8 (comma delimited)” or as XLSX."
            )
            % {"header": header[0][:100], "delimiter": delimiter}
        )
    named = len(header)
    for line, cells in rows:
        if len(cells) > named:
            raise FileRefused(
                _(
                    "Line %(line)s has %(cells)s cells, but the first row names %(columns)s columns: a value "
                    "holding a comma must be in double quotes. Check that line."
                )
                % {"line": line, "cells": len(cells), "columns": named}
            )


def _quote_left_open(text, line):
    """Whether the last record, starting on ``line``, opens a quote that the text never closes.

    The csv module takes everything up to the end of the file as that cell (a stray
    quote on line 3 would make the rest of the file one customer's name); only its
    strict mode says so, and only at the end of the data.
    """
    rest = "".join(itertools.islice(io.StringIO(text, newline=""), line - 1, None))
    try:
        next(csv.reader(io.StringIO(rest, newline=""), strict=True), None)
    except csv.Error as exc:
        return str(exc) == "unexpected end of data"
    return False


NOT_XLSX = gettext_lazy(
    "This file cannot be read as XLSX: it is damaged, empty or of another kind. Choose the format that matches the file."
)


# What a number format writes besides its codes: quoted text, escaped characters, colours and locales ([Red],
# [$-409]); an elapsed time ([h], [mm], [ss]) is a code.
_FORMAT_LITERALS = re.compile(r'"[^"]*"|\\.|\[(?![hms]+\])[^\]]*\]', re.IGNORECASE)


def shows_time(code):
    """Whether the number format ``code`` shows a time of day (hours, seconds, AM/PM), not a date alone."""
    codes = _FORMAT_LITERALS.sub("", code).lower()
    return any(mark in codes for mark in ("h", "s", "am/pm", "a/p"))


def xlsx_rows(data, limits=None):
    """The non-empty rows of the first sheet of the XLSX workbook ``data`` (bytes), as ``csv_rows`` gives them."""
    limits = limits or Limits.from_settings()
    try:
        archive = zipfile.ZipFile(io.BytesIO(data))
        infos = {info.filename: info for info in archive.infolist()}
    except (zipfile.BadZipFile, zipfile.LargeZipFile, ValueError, EOFError) as exc:
        raise NotAWorkbook(NOT_XLSX) from exc
    declared = sum(info.file_size for info in infos.values())
    if declared > limits.max_unzipped_bytes:
        raise FileRefused(
            _(
                "The workbook unzips to %(size)s bytes; the limit is %(limit)s bytes "
                "(DJANGO_IMPORT_MAX_UNZIPPED_BYTES). Save only the sheet to import, as CSV."
            )
            % {"size": declared, "limit": limits.max_unzipped_bytes}
        )
    for info in infos.values():
        if info.file_size > RATIO_FLOOR and info.file_size > MAX_RATIO * max(info.compress_size, 1):
            raise FileRefused(
                _("The workbook part %(name)s is compressed %(ratio)s times: it is not a spreadsheet.")
                % {"name": info.filename, "ratio": info.file_size // max(info.compress_size, 1)}
            )
    reader = _Workbook(archive, infos, limits)
    try:
        return reader.rows()
    except (zipfile.BadZipFile, zipfile.LargeZipFile, EOFError, OSError, NotImplementedError) as exc:
        # A damaged or mislabelled member, or a compression zipfile cannot read.
        raise NotAWorkbook(NOT_XLSX) from exc
    except expat.ExpatError as exc:
        raise FileRefused(_("The workbook's XML is damaged: %(error)s.") % {"error": exc}) from exc


def _local(name):
    return name.rpartition("}")[2]


class _Workbook:
    """The parts of an XLSX archive that a first sheet's values need, each parsed once."""

    def __init__(self, archive, infos, limits):
        self.archive = archive
        self.infos = infos
        self.limits = limits
        self.unzipped = 0

    def parse(self, name, start=None, end=None, text=None):
        """Stream part ``name`` through expat, calling the handlers given; a missing part is skipped."""
        info = self.infos.get(name)
        if info is None:
            return False
        parser = expat.ParserCreate(namespace_separator="}")
        parser.buffer_text = True
        parser.SetParamEntityParsing(expat.XML_PARAM_ENTITY_PARSING_NEVER)

        def refuse_dtd(*args):
            # A spreadsheet has no document type; a DTD can only be there to expand entities.
            raise FileRefused(_("The workbook's XML declares a document type, which spreadsheets never do."))

        parser.StartDoctypeDeclHandler = refuse_dtd
        parser.EntityDeclHandler = refuse_dtd
        if start:
            parser.StartElementHandler = lambda tag, attrs: start(_local(tag), attrs)
        if end:
            parser.EndElementHandler = lambda tag: end(_local(tag))
        if text:
            parser.CharacterDataHandler = text
        with self.archive.open(info) as member:
            while chunk := member.read(XML_CHUNK):
                # The declared sizes were checked; this holds even if they lied.
                self.unzipped += len(chunk)
                if self.unzipped > self.limits.max_unzipped_bytes:
                    raise NotAWorkbook(NOT_XLSX)
                parser.Parse(chunk, False)
        parser.Parse(b"", True)
        return True

    def relationships(self, part):
        """Id -> (type, part name) of the relationships of ``part``."""
        folder, name = posixpath.split(part)
        found = {}

        def start(tag, attrs):
            if tag == "Relationship" and attrs.get("Target") and attrs.get("TargetMode") != "External":
                target = attrs["Target"]
                path = target.lstrip("/") if target.startswith("/") else posixpath.join(folder, target)
                found[attrs.get("Id")] = (attrs.get("Type", ""), posixpath.normpath(path))

        self.parse(posixpath.join(folder, "_rels", f"{name}.rels"), start=start)
        return found

    def rows(self):
        package = self.relationships("")
        workbook = next(
            (path for kind, path in package.values() if kind.endswith("/officeDocument")), "xl/workbook.xml"
        )
        sheets, options = [], {}

        def workbook_start(tag, attrs):
            if tag == "sheet":
                sheets.append(next((value for key, value in attrs.items() if _local(key) == "id"), None))
            elif tag == "workbookPr":
                options.update(attrs)

        if not self.parse(workbook, start=workbook_start):
            raise NotAWorkbook(NOT_XLSX)
        parts = self.relationships(workbook)
        by_type = {kind.rpartition("/")[2]: path for kind, path in parts.values()}
        sheet = parts.get(sheets[0], (None, None))[1] if sheets else None
        if sheet is None:
            raise FileRefused(_("The workbook has no sheet."))
        epoch = MAC_EPOCH if options.get("date1904") in ("1", "true") else WINDOWS_EPOCH
        strings = self.shared_strings(by_type.get("sharedStrings"))
        dates, durations = self.date_styles(by_type.get("styles"))
        return self.sheet(sheet, strings, dates, durations, epoch)

    def texts(self, name, item):
        """The text of each ``item`` element of part ``name`` (its ``t`` runs, phonetic guides left out)."""
        values, current, state = [], [], {"in_t": False, "phonetic": 0, "length": 0}
        cap = self.limits.max_cell_chars

        def start(tag, attrs):
            if tag == "rPh":
                state["phonetic"] += 1
            elif tag == "t" and not state["phonetic"]:
                state["in_t"] = True

        def end(tag):
            if tag == "rPh":
                state["phonetic"] -= 1
            elif tag == "t":
                state["in_t"] = False
            elif tag == item:
                values.append("".join(current))
                current.clear()
                state["length"] = 0

        def text(data):
            if state["in_t"]:
                current.append(data)
                state["length"] += len(data)
                if state["length"] > cap:
                    raise FileRefused(
                        _("A text in the workbook holds more than %(limit)s characters (DJANGO_IMPORT_MAX_CELL_CHARS).")
                        % {"limit": cap}
                    )

        if name:
            self.parse(name, start=start, end=end, text=text)
        return values

    def shared_strings(self, name):
        return self.texts(name, "si")

    def date_styles(self, name):
        """The cell styles that show numbers as dates (``{index: whether it shows a time}``), and the indexes of
        those that show durations."""
        formats, styles, state = dict(BUILTIN_FORMATS), [], {"in_xfs": False}

        def start(tag, attrs):
            if tag == "numFmt":
                try:
                    formats[int(attrs.get("numFmtId", ""))] = attrs.get("formatCode", "")
                except ValueError:
                    pass
            elif tag == "cellXfs":
                state["in_xfs"] = True
            elif tag == "xf" and state["in_xfs"]:
                try:
                    styles.append(formats.get(int(attrs.get("numFmtId", "0")), ""))
                except ValueError:
                    styles.append("")

        def end(tag):
            if tag == "cellXfs":
                state["in_xfs"] = False

        if name:
            self.parse(name, start=start, end=end)
        # Each date style, with whether it shows a time: a cell shown as a date alone holds a date.
        dates = {index: shows_time(code) for index, code in enumerate(styles) if is_date_format(code)}
        durations = {index for index, code in enumerate(styles) if is_timedelta_format(code)}
        return dates, durations

    def sheet(self, name, strings, dates, durations, epoch):
        bounds = _Bounds(self.limits)
        cap = self.limits.max_cell_chars
        state = {"row": 0, "column": 0, "cells": None, "cell": None, "capture": False}
        value = []

        def start(tag, attrs):
            if tag == "row":
                try:
                    state["row"] = int(attrs["r"]) if "r" in attrs else state["row"] + 1
                except ValueError:
                    raise NotAWorkbook(NOT_XLSX) from None
                state["cells"], state["column"] = {}, 0
            elif tag == "c" and state["cells"] is not None:
                try:
                    column = (
                        column_index_from_string(coordinate_from_string(attrs["r"])[0])
                        if "r" in attrs
                        else state["column"] + 1
                    )
                    style = int(attrs.get("s", "0") or 0)
                except ValueError:
                    raise NotAWorkbook(NOT_XLSX) from None
                state["column"] = column
                state["cell"] = (column, attrs.get("t", "n"), style)
                state["inline"] = state["phonetic"] = state["length"] = 0
                value.clear()
            elif state["cell"] is not None:
                if tag == "v":
                    state["capture"] = True
                elif tag == "is":
                    state["inline"] = 1
                elif tag == "rPh":
                    state["phonetic"] += 1
                elif tag == "t" and state["inline"] and not state["phonetic"]:
                    state["capture"] = True

        def end(tag):
            if tag in ("v", "t"):
                state["capture"] = False
            elif tag == "rPh" and state["cell"] is not None:
                state["phonetic"] -= 1
            elif tag == "c" and state["cell"] is not None:
                column, kind, style = state["cell"]
                cell = self.cell_value(kind, "".join(value), style, strings, dates, durations, epoch)
                if cell not in (None, ""):
                    if column > MAX_COLUMNS:
                        raise FileRefused(
                            _("Line %(line)s has more than %(limit)s columns.")
                            % {"line": state["row"], "limit": MAX_COLUMNS}
                        )
                    state["cells"][column] = bounds.cell(state["row"], column, cell)
                state["cell"] = None
            elif tag == "row" and state["cells"] is not None:
                cells = state["cells"]
                if cells:
                    bounds.add(state["row"], [cells.get(index) for index in range(1, max(cells) + 1)])
                state["cells"] = None

        def text(data):
            if state["capture"]:
                value.append(data)
                state["length"] += len(data)
                if state["length"] > cap:
                    bounds.refuse_cell(state["row"], state["cell"][0], cap + 1)

        if not self.parse(name, start=start, end=end, text=text):
            raise NotAWorkbook(NOT_XLSX)
        return bounds.rows

    @staticmethod
    def cell_value(kind, text, style, strings, dates, durations, epoch):
        """A cell's value as openpyxl gives it when reading values only (``data_only``)."""
        if kind == "inlineStr":
            return text
        if text == "":
            return None
        try:
            if kind == "s":
                return strings[int(text)]
            if kind == "b":
                return bool(int(text))
            if kind in ("str", "e"):
                return text
            if kind == "d":
                return from_ISO8601(text)
            number = float(text) if any(mark in text for mark in ".eE") else int(text)
            if style in dates:
                moment = from_excel(number, epoch, timedelta=style in durations)
                if not dates[style] and isinstance(moment, datetime.datetime) and moment.time() == datetime.time():
                    return moment.date()
                return moment
            return number
        except (ValueError, IndexError, OverflowError):
            # A cell that is not what its type says: kept as the text it holds.
            return text
