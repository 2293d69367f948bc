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


def _lock_names(keys):
    """``_lock_name`` of each of ``keys``, in their order, in one statement; whether locks were taken (PostgreSQL)."""
    if connection.vendor != "postgresql" or not keys:
        return False
    with connection.cursor() as cursor:
        cursor.execute(
            "SELECT pg_advisory_xact_lock(%s, hashtext(name.key)) "
            "FROM unnest(%s::text[]) WITH ORDINALITY AS name(key, position) ORDER BY name.position",
            [_NAME_LOCK_SPACE, list(keys)],
        )
    return True


class CompaniesByName:
    """``company_for_name`` for the records of one transaction that name their companies by name (an import's rows),
    with the lookups made once for them all instead of once or twice a record.

    The companies of ``names`` are read at once (among ``among``, the oldest of each name). The names no company has
    are then locked as ``company_for_name`` locks one, all in one statement and in one order (that of their keys,
    so that two such writers queue rather than deadlock), and read again: a company made meanwhile by a writer that
    held one of them is found. From then on no other writer makes a company of those names until the transaction
    ends, so the first record naming one makes it with no further lookup, and the records after it take that one.
    A name not among ``names`` is looked up by ``company_for_name``; outside a transaction nothing is read ahead.

    A company made for a record whose writes are then rolled back (a row of an import, in its savepoint) is
    forgotten by ``rolled_back(mark)``, ``mark`` taken by ``mark()`` before the record: the next record naming it
    makes it again.
    """

    def __init__(self, names, *, among=None):
        self.among = among
        # name key -> its company, or None for a name no company has (locked: the first record naming it makes it)
        self._known = {}
        self._made = []  # the keys of the companies made here, in order
        keys = sorted({name_key(name) for name in names} - {""})
        if not keys or connection.get_autocommit():
            return
        found = self._first_of(keys)
        missing = [key for key in keys if key not in found]
        if _lock_names(missing):
            found.update(self._first_of(missing))
        self._known = {key: found.get(key) for key in keys}

    def _first_of(self, keys):
        """{key: the oldest company of that name key} among ``among``, in one query."""
        companies = Company.objects.all() if self.among is None else self.among
        first = {}
        for company in companies.filter(name_key__in=keys).order_by("pk"):
            first.setdefault(company.name_key, company)
        return first

    def company_for(self, name, *, owner=None, created_by=None):
        """As ``company_for_name(name, owner=owner, created_by=created_by, among=among)``."""
        key = name_key(name)
        if key not in self._known:
            return company_for_name(name, owner=owner, created_by=created_by, among=self.among)
        company = self._known[key]
        if company is None:
            company = Company.objects.create(name=name, owner=owner, created_by=created_by)
            self._known[key] = company
            self._made.append(key)
        return company

    def mark(self):
        """Where the companies made so far end, for ``rolled_back``."""
        return len(self._made)

    def rolled_back(self, mark):
        """Forget the companies made since ``mark``: their writes were rolled back."""
        while len(self._made) > mark:
            self._known[self._made.pop()] = None


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
