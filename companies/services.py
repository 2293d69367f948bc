"""Writes on companies that do more than save validated fields."""

from django.db import transaction

from . import parts
from .models import Company


def company_for_name(name, *, owner=None, created_by=None, among=None):
    """The company named ``name`` (ignoring case and spacing; the oldest of several), created if there is none.

    ``among`` narrows the companies it may be (those the writer sees: a rep does not reach
    another rep's company by typing its name); a new company is owned like the record that
    named it (``owner``).
    """
    companies = Company.objects.all() if among is None else among
    existing = companies.named(name).first()
    if existing is not None:
        return existing
    return Company.objects.create(name=name, owner=owner, created_by=created_by)


def delete_company(company):
    """Delete ``company``; its people and opportunities stay, without a company. Returns the counts.

    Each app whose records point at a company unlinks them first (its unlinker in
    ``companies.parts``), recording the change in their history.
    """
    with transaction.atomic():
        counts = {name: unlink(company) for name, unlink in parts.UNLINKERS.items()}
        company.delete()
    return {"deleted": {"companies": 1}, "unlinked": counts}
