"""Finding duplicates: the one home of the rebuild, the check of one new record, and the review decisions.

Candidates come from blocking keys (``duplicates.matching``) stored in ``DuplicateKey``:
two records are compared only when they share a key, and a key shared by more than
``matching.MAX_GROUP`` records is skipped, so the work grows with the records, not
with their pairs. The pairs that score at least ``matching.THRESHOLD`` are the
open ``DuplicateCandidate`` rows; a pair decided "not a duplicate" keeps its
decision through every rebuild.
"""

from collections import defaultdict

from django.db import connection, transaction
from django.db.models import Q
from django.utils import timezone

from core import access
from core.rowlocks import locking

from . import matching
from .models import DuplicateCandidate, DuplicateKey, Kind, models_by_kind

CHUNK = 5000


# Reading records and their keys.


def _customer_rows(ids=None):
    rows = models_by_kind()[Kind.CUSTOMER]._default_manager.order_by()
    if ids is not None:
        rows = rows.filter(pk__in=ids)
    return rows.values_list("id", "name", "email", "phone_e164", "company_id")


def _company_rows(ids=None):
    """``(id, name, domains)`` of companies: their domain, website and the domains of their people's emails."""
    companies = models_by_kind()[Kind.COMPANY]._default_manager.order_by()
    people = (
        models_by_kind()[Kind.CUSTOMER]._default_manager.order_by().filter(company__isnull=False, email__isnull=False)
    )
    if ids is not None:
        companies, people = companies.filter(pk__in=ids), people.filter(company_id__in=ids)
    email_domains = defaultdict(set)
    for company_id, email in people.values_list("company_id", "email").iterator(chunk_size=CHUNK):
        domain = matching.email_parts(email)[1]
        if domain:
            email_domains[company_id].add(domain)
    for pk, name, domain, website in companies.values_list("id", "name", "domain", "website").iterator(
        chunk_size=CHUNK
    ):
        yield pk, name, matching.company_domains(domain, website, email_domains.get(pk, ()))


def _row_of(kind, record):
    """The row of a record just created, as ``_rows`` reads it (a new company has no people yet)."""
    if kind == Kind.CUSTOMER:
        return record.pk, record.name, record.email, record.phone_e164, record.company_id
    return record.pk, record.name, matching.company_domains(record.domain, record.website)


def _rows(kind, ids=None):
    return _customer_rows(ids) if kind == Kind.CUSTOMER else _company_rows(ids)


def _keys(kind, row):
    if kind == Kind.CUSTOMER:
        return matching.keys_for_customer(*row[1:])
    return matching.keys_for_company(row[1], row[2])


def _score(kind, a, b):
    return matching.score_customers(a, b) if kind == Kind.CUSTOMER else matching.score_companies(a, b)


def _write_keys(kind, rows):
    batch = []
    for row in rows:
        batch.extend(DuplicateKey(kind=kind, record_id=row[0], key=key[:300]) for key in _keys(kind, row))
        if len(batch) >= CHUNK:
            DuplicateKey.objects.bulk_create(batch, ignore_conflicts=True)
            batch = []
    if batch:
        DuplicateKey.objects.bulk_create(batch, ignore_conflicts=True)


# The whole list.


def _pairs(kind):
    """Each pair of records sharing a blocking key of a small enough group, once, in chunks."""
    table = connection.ops.quote_name(DuplicateKey._meta.db_table)
    sql = (
        f"SELECT DISTINCT a.record_id, b.record_id FROM {table} a "
        f"JOIN {table} b ON b.kind = a.kind AND b.key = a.key AND b.record_id > a.record_id "
        f"WHERE a.kind = %s AND a.key IN ("
        f"SELECT key FROM {table} WHERE kind = %s GROUP BY key HAVING COUNT(*) BETWEEN 2 AND %s)"
    )
    with connection.cursor() as cursor:
        cursor.execute(sql, [kind, kind, matching.MAX_GROUP])
        while chunk := cursor.fetchmany(CHUNK):
            yield chunk


def _scored(kind, pairs):
    """``{(a, b): (score, reasons)}`` of the ``pairs`` that score at least the threshold."""
    ids = {pk for pair in pairs for pk in pair}
    rows = {row[0]: row for row in _rows(kind, ids)}
    found = {}
    for a, b in pairs:
        if a in rows and b in rows:
            score, reasons = _score(kind, rows[a], rows[b])
            if reasons and score >= matching.THRESHOLD:
                found[(a, b)] = (score, reasons)
    return found


def rebuild(kind, *, progress=None):
    """Recompute the keys and the open candidates of ``kind``; decided pairs keep their decision.

    Returns ``{"records", "pairs_compared", "open", "added", "removed"}``. ``progress(n)`` is told of
    each chunk of pairs compared.
    """
    with transaction.atomic():
        DuplicateKey.objects.filter(kind=kind).delete()
        records = 0

        def counted(rows):
            nonlocal records
            for row in rows:
                records += 1
                yield row

        _write_keys(kind, counted(_rows(kind).iterator(chunk_size=CHUNK) if kind == Kind.CUSTOMER else _rows(kind)))
        if connection.vendor == "postgresql":
            # Statistics of the keys just written (ANALYZE counts this transaction's rows): without them
            # the planner takes the table for tiny and the pair query's grouping spills to disk.
            with connection.cursor() as cursor:
                cursor.execute(f"ANALYZE {connection.ops.quote_name(DuplicateKey._meta.db_table)}")
        found, compared = {}, 0
        for chunk in _pairs(kind):
            found.update(_scored(kind, chunk))
            compared += len(chunk)
            if progress is not None:
                progress(len(chunk))
        existing = {
            (a, b): (pk, status)
            for pk, a, b, status in DuplicateCandidate.objects.filter(kind=kind).values_list(
                "pk", "a_id", "b_id", "status"
            )
        }
        stale = [
            pk
            for pair, (pk, status) in existing.items()
            if status == DuplicateCandidate.Status.OPEN and pair not in found
        ]
        for start in range(0, len(stale), CHUNK):
            # Still open as the DELETE finds them: a pair dismissed since it was read above keeps its decision.
            DuplicateCandidate.objects.filter(
                pk__in=stale[start : start + CHUNK], status=DuplicateCandidate.Status.OPEN
            ).delete()
        new, refreshed, reopened = [], [], []
        for (a, b), (score, reasons) in found.items():
            if (a, b) not in existing:
                new.append(DuplicateCandidate(kind=kind, a_id=a, b_id=b, score=score, reasons=reasons))
            elif existing[(a, b)][1] == DuplicateCandidate.Status.OPEN:
                refreshed.append(DuplicateCandidate(pk=existing[(a, b)][0], score=score, reasons=reasons))
            elif existing[(a, b)][1] == DuplicateCandidate.Status.MERGED:
                # Both records are back (the merge was undone): the pair is open again.
                reopened.append(existing[(a, b)][0])
        # A pair the API found meanwhile is already there: left as it is.
        DuplicateCandidate.objects.bulk_create(new, batch_size=CHUNK, ignore_conflicts=True)
        DuplicateCandidate.objects.bulk_update(refreshed, ["score", "reasons"], batch_size=CHUNK)
        for start in range(0, len(reopened), CHUNK):
            DuplicateCandidate.objects.filter(pk__in=reopened[start : start + CHUNK]).update(
                status=DuplicateCandidate.Status.OPEN, decided_by=None, decided_at=None
            )
        open_count = DuplicateCandidate.objects.filter(kind=kind, status=DuplicateCandidate.Status.OPEN).count()
    return {
        "records": records,
        "pairs_compared": compared,
        "open": open_count,
        "added": len(new),
        "removed": len(stale),
    }


# One record.


def check_record(kind, record_id, *, record=None):
    """Key one (new or changed) record and compare it with the records sharing its keys or an indexed
    column (``_neighbours``).

    Its pairs are stored as candidates (a decided pair keeps its decision); returns the open
    candidates of the record, best first. ``record``, the instance just created, saves reading it.
    """
    if record is None:
        rows = list(_rows(kind, [record_id]))
        if not rows:
            return []
        row = rows[0]
        DuplicateKey.objects.filter(kind=kind, record_id=record_id).delete()
    else:
        row = _row_of(kind, record)
    keys = list(dict.fromkeys(key[:300] for key in _keys(kind, row)))
    if keys:
        DuplicateKey.objects.bulk_create(
            [DuplicateKey(kind=kind, record_id=record_id, key=key) for key in keys], ignore_conflicts=True
        )
    others = _neighbours(kind, keys, row)
    others.discard(record_id)
    if not others:
        return []
    pairs = [(min(record_id, other), max(record_id, other)) for other in others]
    found = _scored(kind, pairs)
    if not found:
        return []

    def stored():
        rows = DuplicateCandidate.objects.involving(kind, record_id).filter(
            a_id__in=[a for a, _b in found], b_id__in=[b for _a, b in found]
        )
        return {(candidate.a_id, candidate.b_id): candidate for candidate in rows}

    # A record just created has no pairs stored yet: no other transaction can see its id.
    existing = stored() if record is None else {}
    missing = [
        DuplicateCandidate(kind=kind, a_id=a, b_id=b, score=score, reasons=reasons)
        for (a, b), (score, reasons) in found.items()
        if (a, b) not in existing
    ]
    if missing:
        # A rebuild running meanwhile may store the same pair: whichever comes first stays.
        DuplicateCandidate.objects.bulk_create(missing, ignore_conflicts=True)
        existing = stored()
    result = []
    for pair, (score, reasons) in found.items():
        candidate = existing.get(pair)
        if candidate is None:
            continue
        if candidate.status == DuplicateCandidate.Status.OPEN and (candidate.score, candidate.reasons) != (
            score,
            reasons,
        ):
            candidate.score, candidate.reasons = score, reasons
            candidate.save(update_fields=["score", "reasons"])
        if candidate.status == DuplicateCandidate.Status.OPEN:
            result.append(candidate)
    return sorted(result, key=lambda candidate: (-candidate.score, candidate.pk))


def _neighbours(kind, keys, row):
    """The records sharing a group with ``row``, each group small enough (``matching.MAX_GROUP``): its
    blocking ``keys``' groups, and the records sharing an indexed column with it (``_live_columns``),
    keyed or not yet. One query.

    Each group is read through its index, one range of at most ``MAX_GROUP + 1`` rows, so a common
    key costs no more than a rare one (a ``GROUP BY ... HAVING`` over the keys let SQLite's planner
    walk every key of the kind instead: 3.5 ms at 10,000 customers, growing with them). The columns'
    groups are the ORM's ``filter(column=value)[:MAX_GROUP + 1]`` (or ``column__in``) of each, in the
    same union (``tests/duplicates/test_detection.py`` holds the two to the same records)."""
    limit = matching.MAX_GROUP + 1
    table = connection.ops.quote_name(DuplicateKey._meta.db_table)
    selects, params = [], []
    for key in keys:
        selects.append(f"SELECT record_id FROM {table} WHERE kind = %s AND key = %s LIMIT {limit}")
        params += [kind, key]
    model = models_by_kind()[kind]
    records, pk = connection.ops.quote_name(model._meta.db_table), connection.ops.quote_name(model._meta.pk.column)
    for name, values in _live_columns(kind, row):
        column = connection.ops.quote_name(model._meta.get_field(name).column)
        selects.append(
            f"SELECT {pk} FROM {records} WHERE {column} IN ({', '.join(['%s'] * len(values))}) LIMIT {limit}"
        )
        params += values
    if not selects:
        return set()
    sql = " UNION ALL ".join(f"SELECT {i} AS g, k{i}.* FROM ({select}) AS k{i}" for i, select in enumerate(selects))
    groups = defaultdict(list)
    with connection.cursor() as cursor:
        cursor.execute(sql, params)
        for group, record_id in cursor.fetchall():
            groups[group].append(record_id)
    return {pk for ids in groups.values() if len(ids) <= matching.MAX_GROUP for pk in ids}


def _live_columns(kind, row):
    """``(field, values)`` of the indexed columns a record's possible duplicates share with it, keyed or
    not yet (created since the last rebuild by an import or the admin): the same phone or company (a
    small one) for a customer, the same domain for a company. (No other customer has the same email: a
    unique index forbids it.)"""
    if kind == Kind.CUSTOMER:
        _pk, _name, _email, phone, company_id = row
        return [(name, [value]) for name, value in (("phone_e164", phone), ("company", company_id)) if value]
    return [("domain", sorted(row[2]))] if row[2] else []


def hint_for(kind):
    """The API's ``duplicates`` hint for a record of ``kind`` just created: the records it probably
    duplicates among those the user sees, as ``{"id", "score", "reasons"}``."""

    def hint(record, request):
        candidates = check_record(kind, record.pk, record=record)
        if not candidates:
            return []
        others = {candidate.other(record.pk): candidate for candidate in candidates}
        model = models_by_kind()[kind]
        seen = set(
            access.scope(model._default_manager.all(), request.user).filter(pk__in=others).values_list("pk", flat=True)
        )
        return [
            {"id": pk, "score": candidate.score, "reasons": candidate.reasons}
            for pk, candidate in others.items()
            if pk in seen
        ]

    return hint


# Decisions.


class NotAllowed(Exception):
    pass


class AlreadyMerged(Exception):
    pass


def dismiss(candidate, *, user):
    """Mark ``candidate`` "not a duplicate" for good (rebuilds keep it); a role that writes is needed. Returns the
    pair as now stored.

    The pair is locked and read again first: one whose records were merged meanwhile stays merged
    (``AlreadyMerged``), one a merge or a rebuild removed meanwhile is ``DuplicateCandidate.DoesNotExist``.
    """
    if not access.can_write(user):
        raise NotAllowed("Your role may not change this.")
    with transaction.atomic():
        current = locking(DuplicateCandidate.objects.filter(pk=candidate.pk)).first()
        if current is None:
            raise DuplicateCandidate.DoesNotExist("The pair is no longer in the list.")
        if current.status == DuplicateCandidate.Status.MERGED:
            raise AlreadyMerged("The pair has been merged.")
        current.status = DuplicateCandidate.Status.NOT_DUPLICATE
        current.decided_by = user
        current.decided_at = timezone.now()
        current.save(update_fields=["status", "decided_by", "decided_at"])
    return current


def open_candidates_of(kind, record_id, user):
    """The open candidates of one record whose two records ``user`` sees, best first."""
    return (
        DuplicateCandidate.objects.involving(kind, record_id)
        .filter(status=DuplicateCandidate.Status.OPEN)
        .visible_to(user)
        .order_by("-score", "id")
    )


def record_merge(sender, *, survivor, merged_ids, user, **kwargs):
    """After a merge (``core.merges.merged``): the pairs among the merged records are merged, and the
    other pairs of the records merged away go (the next rebuild compares the survivor as it is now)."""
    kind = next(kind for kind, model in models_by_kind().items() if model is sender)
    ids = [survivor.pk, *merged_ids]
    pairs = DuplicateCandidate.objects.filter(kind=kind)
    pairs.filter(a_id__in=ids, b_id__in=ids).update(
        status=DuplicateCandidate.Status.MERGED, decided_by=user, decided_at=timezone.now()
    )
    pairs.filter(Q(a_id__in=merged_ids) | Q(b_id__in=merged_ids)).exclude(a_id__in=ids, b_id__in=ids).delete()


def merge_url(kind, ids, site_name="admin"):
    """The admin's side-by-side merge page for ``ids`` (the merge feature serves it)."""
    from django.urls import NoReverseMatch, reverse

    model = models_by_kind()[kind]
    opts = model._meta
    try:
        base = reverse(f"{site_name}:{opts.app_label}_{opts.model_name}_changelist")
    except NoReverseMatch:
        base = f"/admin/{opts.app_label}/{opts.model_name}/"
    return f"{base}merge/?ids={','.join(str(pk) for pk in ids)}"
