"""A customer's history: interactions and opportunity stage changes, newest first.

The two tables are merged in the database with one ``UNION ALL`` ordered by
time, so any page of the timeline is a plain ``LIMIT``/``OFFSET`` over it.
"""

from django.db.models import BigIntegerField, CharField, DateTimeField, F, TextField, Value

from interactions.models import Interaction
from opportunities.models import Opportunity, StageChange

INTERACTION = "interaction"
STAGE_CHANGE = "stage_change"


# The columns of both halves of the union, in order. Their names differ from
# model fields so that each half selects exactly these, in this order.
COLUMNS = {
    "source": CharField(),
    "at": DateTimeField(),
    "event_id": BigIntegerField(),
    "event_interaction_type": CharField(),
    "event_notes": TextField(),
    "event_opportunity_id": BigIntegerField(),
    "opportunity_title": CharField(),
    "event_from_stage": CharField(),
    "event_to_stage": CharField(),
}


def _rows(queryset, source, **columns):
    """``queryset`` as union rows: the given columns, NULL for the others."""
    values = {name: columns.get(name, Value(None, output_field=field)) for name, field in COLUMNS.items()}
    values["source"] = Value(source, output_field=CharField())
    return queryset.order_by().annotate(**values).values(*COLUMNS)


def timeline_queryset(customer_id):
    """Rows (dicts of ``COLUMNS``) of one customer's timeline, newest first."""
    interactions = _rows(
        Interaction.objects.filter(customer_id=customer_id),
        INTERACTION,
        at=F("occurred_at"),
        event_id=F("id"),
        event_interaction_type=F("interaction_type"),
        event_notes=F("notes"),
    )
    stage_changes = _rows(
        StageChange.objects.filter(opportunity__customer_id=customer_id),
        STAGE_CHANGE,
        at=F("changed_at"),
        event_id=F("id"),
        event_opportunity_id=F("opportunity_id"),
        opportunity_title=F("opportunity__title"),
        event_from_stage=F("from_stage"),
        event_to_stage=F("to_stage"),
    )
    return interactions.union(stage_changes, all=True).order_by("-at", "-source", "-event_id")


def stage_change_type(from_stage, to_stage):
    if from_stage is None:
        return "opportunity_created"
    if to_stage == Opportunity.Stage.CLOSED:
        return "opportunity_won"
    if to_stage == Opportunity.Stage.LOST:
        return "opportunity_lost"
    if from_stage in (Opportunity.Stage.CLOSED, Opportunity.Stage.LOST):
        return "opportunity_reopened"
    return "opportunity_stage_changed"


def timeline_entry(row):
    """One union row as the API shows it."""
    if row["source"] == INTERACTION:
        return {
            "type": INTERACTION,
            "at": row["at"],
            "interaction": {
                "id": row["event_id"],
                "interaction_type": row["event_interaction_type"],
                "notes": row["event_notes"],
            },
        }
    return {
        "type": stage_change_type(row["event_from_stage"], row["event_to_stage"]),
        "at": row["at"],
        "opportunity": {"id": row["event_opportunity_id"], "title": row["opportunity_title"]},
        "from_stage": row["event_from_stage"],
        "to_stage": row["event_to_stage"],
    }
