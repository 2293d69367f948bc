"""What interactions add to their customer (``customers.parts``), registered by ``InteractionsConfig.ready()``."""

from django.db.models import BigIntegerField, CharField, Count, DateTimeField, F, OuterRef, Subquery, TextField, Value
from django.db.models.functions import Coalesce

from core import changesets
from core.history import delete_with_history, update_with_history
from customers import parts

from .models import Interaction

TIMELINE_SOURCE = "interaction"


def _of_customer():
    return Interaction.objects.filter(customer=OuterRef("pk")).order_by()


def interaction_count():
    counts = _of_customer().values("customer").annotate(n=Count("id")).values("n")
    return Coalesce(Subquery(counts), Value(0))


def last_interaction_at():
    return Subquery(_of_customer().order_by("-occurred_at").values("occurred_at")[:1])


def timeline_entry(row):
    return {
        "type": TIMELINE_SOURCE,
        "at": row["at"],
        "interaction": {
            "id": row["event_id"],
            "interaction_type": row["event_interaction_type"],
            "notes": row["event_notes"],
        },
    }


def delete_interactions(customer):
    return delete_with_history(Interaction.objects.filter(customer=customer))


def move_interactions(from_ids, survivor):
    return update_with_history(Interaction.objects.filter(customer_id__in=from_ids), customer=survivor)


def register():
    # What the mover sets, put back in bulk by the undo of a merge (core/changesets.py).
    changesets.restore_in_bulk(Interaction, "customer_id")
    parts.add_figure("interaction_count", interaction_count)
    parts.add_figure("last_interaction_at", last_interaction_at)
    parts.add_timeline_source(
        parts.TimelineSource(
            name=TIMELINE_SOURCE,
            rows=lambda: Interaction.objects.all(),
            customer="customer_id",
            columns={
                "at": (DateTimeField(), F("occurred_at")),
                "event_id": (BigIntegerField(), F("id")),
                "event_interaction_type": (CharField(), F("interaction_type")),
                "event_notes": (TextField(), F("notes")),
            },
            entry=timeline_entry,
        )
    )
    parts.add_deleter("interactions", delete_interactions)
    parts.add_mover("interactions", move_interactions)
