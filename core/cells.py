"""Spreadsheet cells written by every export (the API's and the admin's), the
encodings in which every import (the admin's and ``manage.py import_customers``)
reads CSV text, and the words a cell (or a query value) may say true or false in.

A cell starting with ``=``, ``+``, ``-``, ``@``, a tab or a carriage return is a
formula to spreadsheet programs: a leading apostrophe keeps it text, and imports
take it off again (``unguarded``). Phone-like values ("+86 138...") and negative
numbers stay as they are.
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


def csv_text(data):
    """The text of an import's CSV bytes in the first of ``TEXT_ENCODINGS`` that reads them whole as text of
    that kind; None when none does.

    Two encodings read more than they should. UTF-8 reads UTF-16 without a byte order mark (a NUL beside
    every ASCII letter). GB18030 reads any Western Windows "CSV" whose accented letters are each followed
    by a letter ("Jürgen Müller" as "J黵gen M黮ler"): each accent and the letter after it become one
    character standing alone among Latin letters, followed by one, where Chinese text has its characters
    side by side (names, companies, addresses are words of two or more) or alone in a cell of their own
    (a gender column's 男 and 女, between commas).
    """
    for encoding in TEXT_ENCODINGS:
        try:
            text = data.decode(encoding)
        except UnicodeDecodeError:
            continue
        if text.count("\x00") * 4 > len(text):
            continue
        if encoding == "gb18030" and _mostly_alone(text):
            continue
        return text
    return None


def _mostly_alone(text):
    """Whether most of the non-ASCII characters of ``text`` stand alone among ASCII, an ASCII letter after them."""
    wide = alone = 0
    for position, char in enumerate(text):
        if char.isascii():
            continue
        wide += 1
        before = text[position - 1] if position else "a"
        after = text[position + 1] if position + 1 < len(text) else ","
        alone += before.isascii() and after.isascii() and after.isalpha()
    return alone * 2 > wide


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


def unguarded(text):
    """A cell's text without the apostrophe ``safe_text`` put before it: an exported file imports back as the
    records were, not with an apostrophe more in each such cell."""
    return text[1:] if text.startswith("'") and FORMULA_START.match(text[1:]) else text


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
