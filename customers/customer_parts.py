"""What the customer adds to its own timeline (``customers.parts``): its history, created and changed.

Registered by ``CustomersConfig.ready()`` like the other apps' sources, so that the customer page and
``/api/customers/{id}/timeline`` tell the record's own changes beside its interactions and deals.
"""

from django.db.models import BigIntegerField, CharField, DateTimeField, F, OuterRef, Q, Subquery

from core.api.history import field_changes

from . import parts
from .models import Customer

TIMELINE_SOURCE = "customer_history"
TYPES = {"+": "customer_created", "~": "customer_changed"}


def timeline_entry(row):
    entry = {
        "type": TYPES[row["event_history_type"]],
        "at": row["at"],
        "history": {"id": row["event_id"], "user_id": row["event_history_user_id"]},
    }
    if row["event_history_type"] == "~":
        entry["changes"] = row.get("changes", [])
    return entry


def name_changes(rows):
    """Each "changed" row of a page gets ``changes``: ``[{field, old, new}]`` against the entry before it.

    One query for the page: the page's changed entries and, for each, the customer's entry just before it.
    """
    changed = [row["event_id"] for row in rows if row["event_history_type"] == "~"]
    if not changed:
        return
    records = Customer.history.model.objects
    before = (
        records.filter(id=OuterRef("id"))
        .filter(
            Q(history_date__lt=OuterRef("history_date"))
            | Q(history_date=OuterRef("history_date"), history_id__lt=OuterRef("history_id"))
        )
        .order_by("-history_date", "-history_id")
        .values("history_id")[:1]
    )
    previous_ids = records.filter(history_id__in=changed).annotate(previous=Subquery(before)).values("previous")
    by_customer = {}
    for record in records.filter(Q(history_id__in=changed) | Q(history_id__in=previous_ids)):
        by_customer.setdefault(record.id, []).append(record)
    found = {}
    for history in by_customer.values():
        history.sort(key=lambda record: (record.history_date, record.history_id))
        for previous, record in zip([None, *history], history, strict=False):
            found[record.history_id] = (record, previous)
    for row in rows:
        if row["event_id"] in found and row["event_history_type"] == "~":
            record, previous = found[row["event_id"]]
            row["changes"] = field_changes(record, previous)


def register():
    parts.add_timeline_source(
        parts.TimelineSource(
            name=TIMELINE_SOURCE,
            # A deleted customer has no timeline; its "deleted" entry is in its history.
            rows=lambda: Customer.history.model.objects.filter(history_type__in=list(TYPES)),
            customer="id",
            columns={
                "at": (DateTimeField(), F("history_date")),
                "event_id": (BigIntegerField(), F("history_id")),
                "event_history_type": (CharField(), F("history_type")),
                "event_history_user_id": (BigIntegerField(), F("history_user_id")),
            },
            entry=timeline_entry,
            prepare=name_changes,
        )
    )
