"""What the customer adds to its own timeline (``customers.parts``): its history, created and changed.

Registered by ``CustomersConfig.ready()`` like the other apps' sources, so that the customer page and
``/api/customers/{id}/timeline`` tell the record's own changes beside its interactions and deals.
"""

from django.db.models import BigIntegerField, CharField, DateTimeField, F

from . import parts
from .models import Customer

TIMELINE_SOURCE = "customer_history"
TYPES = {"+": "customer_created", "~": "customer_changed"}


def timeline_entry(row):
    return {
        "type": TYPES[row["event_history_type"]],
        "at": row["at"],
        "history": {"id": row["event_id"], "user_id": row["event_history_user_id"]},
    }


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
        )
    )
