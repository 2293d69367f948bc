"""Writes on companies that do more than save validated fields."""

import functools

from django.db import connection, router, transaction

from core import merges
from core.prepared import PreparedInstances

from . import parts
from .models import Company
from .names import name_key

# First key of the advisory locks taken on company names (any number the project uses for nothing else).
_NAME_LOCK_SPACE = 7301


def company_for_name(name, *, owner=None, created_by=None, among=None):
    """The company named ``name`` (ignoring case and spacing; the oldest of several), created if there is none.

    ``among`` narrows the companies it may be (those the writer sees: a rep does not reach
    another rep's company by typing its name); a new company is owned like the record that
    named it (``owner``).
    """
    existing = _first_named(name, among)
    if existing is not None:
        return existing
    with transaction.atomic():
        # Two writers naming one new company at once make one: the second waits for the
        # first's transaction here and then finds its company. SQLite's IMMEDIATE
        # transactions serialise writers already; PostgreSQL takes a lock on the name.
        _lock_name(name_key(name))
        existing = _first_named(name, among)
        if existing is not None:
            return existing
        return Company.objects.create(name=name, owner=owner, created_by=created_by)


def _first_named(name, among):
    """``among.named(name).first()``; among every company (``among`` None) by a query compiled once."""
    if among is not None:
        return among.named(name).first()
    return _named_query(router.db_for_read(Company)).get(name_key(name))


@functools.cache
def _named_query(using):
    # A sentinel that name_key() leaves as it is: the value given is the key.
    return PreparedInstances(Company, lambda key: Company.objects.using(using).named(key)[:1], using, ("\x00key",))


def _lock_name(key):
    """Hold, until the transaction ends, a PostgreSQL advisory lock for the company name ``key``."""
    if connection.vendor != "postgresql":
        return
    with connection.cursor() as cursor:
        cursor.execute("SELECT pg_advisory_xact_lock(%s, hashtext(%s))", [_NAME_LOCK_SPACE, key])


def delete_company(company):
    """Delete ``company``; its people and opportunities stay, without a company. Returns the counts.

    Each app whose records point at a company unlinks them first (its unlinker in
    ``companies.parts``), recording the change in their history.
    """
    with transaction.atomic():
        counts = {name: unlink(company) for name, unlink in parts.UNLINKERS.items()}
        company.delete()
    return {"deleted": {"companies": 1}, "unlinked": counts}


# The fields a merge takes from one of the records (the survivor's, unless chosen or empty).
MERGE_FIELDS = ("name", "domain", "website", "phone", "address", "industry", "size", "notes", "owner", "external_id")


def merge_companies(survivor, others, *, choices=None, user, versions=None):
    """Merge the companies ``others`` into ``survivor``; as ``customers.services.merge_customers``.

    The people and opportunities of the others (and whatever else the apps
    register in ``companies.parts``) point at the survivor afterwards.
    """
    return merges.merge_records(
        Company, MERGE_FIELDS, parts.MOVERS, survivor, others, choices=choices, user=user, versions=versions
    )
