"""Kept for the landed migrations that name ``crm_site.dates.validate_record_date``; the code lives in ``core.dates``."""

from core.dates import validate_record_date

__all__ = ["validate_record_date"]
