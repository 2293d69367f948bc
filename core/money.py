"""Amounts as the admin shows them: the deployment's currency symbol and thousands separators.

The currency is ``settings.CRM_CURRENCY`` (env ``CRM_CURRENCY``, an ISO 4217 code). Symbols
come from a small table of common codes; another code is shown as itself (``CHF 1,234.50``).
"""

from decimal import Decimal, InvalidOperation

from django.conf import settings
from django.utils.formats import number_format

SYMBOLS = {
    "CNY": "¥",
    "USD": "$",
    "EUR": "€",
    "GBP": "£",
    "JPY": "¥",
    "HKD": "HK$",
    "TWD": "NT$",
    "SGD": "S$",
    "AUD": "A$",
    "CAD": "C$",
    "KRW": "₩",
    "INR": "₹",
    "RUB": "₽",
    "MOP": "MOP$",
}
# Currencies written without cents.
NO_DECIMALS = {"JPY", "KRW"}


def currency():
    return settings.CRM_CURRENCY


def currency_symbol(code=None):
    code = code or currency()
    return SYMBOLS.get(code, f"{code} ")


def format_money(value, code=None):
    """``value`` with the currency's symbol and grouped thousands (``¥1,234,567.50``); "" for None."""
    if value is None or value == "":
        return ""
    try:
        amount = Decimal(value)
    except (InvalidOperation, TypeError, ValueError):
        return str(value)
    code = code or currency()
    places = 0 if code in NO_DECIMALS else 2
    sign = "-" if amount < 0 else ""
    return f"{sign}{currency_symbol(code)}{number_format(abs(amount), places, force_grouping=True)}"
