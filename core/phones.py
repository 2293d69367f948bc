"""Phone numbers: the text as entered is kept; its E.164 form (``+8613800138000``) is stored beside it,
and its national significant number (``13800138000``: the digits after the country code).

Numbers are read with ``phonenumbers`` (Google's libphonenumber); one written
without a country code follows ``settings.CRM_PHONE_REGION``. A number that is
not a valid one (old data, an extension typed as text) stays as entered, with no
E.164 form: the admin flags it. Search finds a record by its number however it
is written ("138 0013 8000", "+86 138-0013-8000", "13800138000"), in whichever
country it is (:func:`search_q`).
"""

import re
import unicodedata
from functools import reduce
from operator import or_

import phonenumbers
from django.conf import settings
from django.db import connections
from django.db.models import Q

# What a number may be written with besides digits; a search term of only these reads as a number.
_NUMBER_TEXT = re.compile(r"^\+?[\d\s().\-/]+$")
MIN_SEARCH_DIGITS = 6
E164_MAX_LENGTH = 16  # "+" and at most 15 digits
# Country codes are a prefix code of one to three digits (ITU-T E.164).
_COUNTRY_CODES = frozenset(str(code) for code in phonenumbers.COUNTRY_CODE_TO_REGION_CODE)


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


def national_number(number):
    """The national significant number of the E.164 ``number`` (its digits after the country code), or None."""
    if not number:
        return None
    digits = number.removeprefix("+")
    for length in (1, 2, 3):
        if digits[:length] in _COUNTRY_CODES:
            return digits[length:]
    return None


def stored_forms(text, region=None):
    """``(E.164 form, national significant number)`` of ``text``, as a record stores them; (None, None) when
    it is not a valid number."""
    number = e164(text, region)
    return number, national_number(number)


def stored_forms_each(texts, region):
    """:func:`stored_forms` of each of ``texts`` in ``region``: a bulk writer's numbers, read in one call (in
    a helper process, say, that has no settings)."""
    return [stored_forms(text, region) for text in texts]


def fill_national_numbers(model, using, batch_size=2000):
    """Store the national significant number of each row of ``model`` that has an E.164 form and no
    national number yet: for the migrations that added it. One ``UPDATE`` a row, sent ``batch_size`` at a
    time (``executemany``: one round trip on PostgreSQL), each batch committed in a migration that is not
    atomic; ``bulk_update``'s ``CASE`` of 2,000 branches took a second a batch."""
    connection = connections[using]
    quote = connection.ops.quote_name
    meta = model._meta
    update = (
        f"UPDATE {quote(meta.db_table)} SET {quote(meta.get_field('phone_national').column)} = %s "
        f"WHERE {quote(meta.pk.column)} = %s"
    )
    missing = model._base_manager.using(using).filter(phone_e164__isnull=False, phone_national__isnull=True)
    last = 0
    while batch := list(missing.filter(pk__gt=last).order_by("pk").values_list("pk", "phone_e164")[:batch_size]):
        with connection.cursor() as cursor:
            cursor.executemany(update, [(national_number(number), pk) for pk, number in batch])
        last = batch[-1][0]


def national_forms(digits):
    """The national significant numbers the ``digits`` of a number written without its country code may
    be: the digits as they are, and without a leading trunk 0 ("020 7946 0000" in the UK, "010 6552 9988"
    in China)."""
    return [digits, digits[1:]] if digits.startswith("0") else [digits]


def search_q(term, field="phone_e164", national_field=None):
    """A condition matching the records whose number ``term`` is, if it reads as a phone number; else None.

    ``term`` is a number when it holds at least :data:`MIN_SEARCH_DIGITS` digits and nothing but
    digits, spaces, ``( ) . - /`` and a leading "+". Its E.164 form (read in ``CRM_PHONE_REGION`` when it
    has no country code) is looked up in ``field``. Written without "+", its digits are also looked up in
    ``national_field`` among the national significant numbers (:func:`national_forms`): the number of
    a customer in any country is found as it is dialled there, whatever the region. Each is an equality
    on an indexed column.
    """
    if not _NUMBER_TEXT.match(term):
        return None
    digits = "".join(str(unicodedata.decimal(ch)) for ch in term if ch.isdecimal())
    if len(digits) < MIN_SEARCH_DIGITS:
        return None
    conditions = []
    number = e164(term)
    if number is not None:
        conditions.append(Q(**{field: number}))
    if national_field is not None and not term.startswith("+"):
        conditions.append(Q(**{f"{national_field}__in": national_forms(digits)}))
    return reduce(or_, conditions) if conditions else None
