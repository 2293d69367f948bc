"""Phone numbers: the text as entered is kept; its E.164 form (``+8613800138000``) is stored beside it.

Numbers are read with ``phonenumbers`` (Google's libphonenumber); one written
without a country code follows ``settings.CRM_PHONE_REGION``. A number that is
not a valid one (old data, an extension typed as text) stays as entered, with no
E.164 form: the admin flags it. Search finds a record by its number however it
is written ("138 0013 8000", "+86 138-0013-8000", "13800138000").
"""

import re

import phonenumbers
from django.conf import settings
from django.db.models import Q

# What a number may be written with besides digits; a search term of only these reads as a number.
_NUMBER_TEXT = re.compile(r"^\+?[\d\s().\-/]+$")
MIN_SEARCH_DIGITS = 6
E164_MAX_LENGTH = 16  # "+" and at most 15 digits


def e164(text, region=None):
    """``text`` as an E.164 number, or None when it is empty or not a valid number."""
    text = (text or "").strip()
    if not text or len(text) > 64:
        return None
    try:
        number = phonenumbers.parse(text, region or settings.CRM_PHONE_REGION)
    except phonenumbers.NumberParseException:
        return None
    if not phonenumbers.is_valid_number(number):
        return None
    return phonenumbers.format_number(number, phonenumbers.PhoneNumberFormat.E164)


def e164_each(texts, region):
    """:func:`e164` of each of ``texts`` in ``region``: a bulk writer's numbers, read in one call (in a helper
    process, say, that has no settings)."""
    return [e164(text, region) for text in texts]


def search_q(term, field="phone_e164"):
    """A condition matching records whose number is ``term``, if ``term`` reads as a phone number; else None."""
    if not _NUMBER_TEXT.match(term) or sum(ch.isdigit() for ch in term) < MIN_SEARCH_DIGITS:
        return None
    number = e164(term)
    return None if number is None else Q(**{field: number})
