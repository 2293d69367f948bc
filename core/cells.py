"""Spreadsheet cells written by every export (the API's and the admin's), the
encodings in which every import (the admin's and ``manage.py import_customers``)
reads CSV text, and the words a cell (or a query value) may say true or false in.

A cell starting with ``=``, ``+``, ``-``, ``@``, a tab or a carriage return is a
formula to spreadsheet programs: a leading apostrophe keeps it text. Phone-like
values ("+86 138...") and negative numbers stay as they are.
"""

import datetime
import re
from decimal import Decimal

from django.utils import timezone

# Excel saves "CSV UTF-8" with a BOM; Chinese Excel's plain "CSV" is GB18030 (a superset of GBK and GB2312).
TEXT_ENCODINGS = ("utf-8-sig", "gb18030")
FORMULA_START = re.compile(r"^[=@\t\r]|^[+-](?![\d\s().-]*$)")
# Control characters that an XLSX file cannot hold.
XLSX_ILLEGAL = re.compile(r"[\x00-\x08\x0b\x0c\x0e-\x1f]")
# In any letter case; a number cell of XLSX reads 1.0 or 0.0.
TRUE_TEXTS = {"true", "t", "yes", "y", "1", "是", "on"}
FALSE_TEXTS = {"false", "f", "no", "n", "0", "否", "off"}


def boolean_of(value):
    """A cell or a query value as True or False (a boolean as it is); None when it says neither."""
    if isinstance(value, bool):
        return value
    if not isinstance(value, (str, int, float)):
        return None
    text = str(value).strip().lower()
    if text.endswith(".0"):
        text = text[:-2]
    if text in TRUE_TEXTS:
        return True
    if text in FALSE_TEXTS:
        return False
    return None


def safe_text(value):
    return "'" + value if FORMULA_START.match(value) else value


def list_text(value):
    """A list of names (a record's tags) in one cell: "a, b"."""
    return ", ".join(str(item) for item in value)


def csv_cell(value):
    if value is None:
        return ""
    if isinstance(value, list):
        value = list_text(value)
    if isinstance(value, (datetime.datetime, datetime.date)):
        return value.isoformat()
    if isinstance(value, str):
        return safe_text(value)
    return str(value) if isinstance(value, Decimal) else value


def xlsx_cell(value):
    if isinstance(value, list):
        value = list_text(value)
    if isinstance(value, datetime.datetime) and timezone.is_aware(value):
        # Excel has no time zones: times are written in UTC.
        return timezone.make_naive(value, datetime.UTC)
    if isinstance(value, str):
        return safe_text(XLSX_ILLEGAL.sub("", value))
    return value
