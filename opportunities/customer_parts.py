"""What opportunities add to their customer (``customers.parts``), registered by ``OpportunitiesConfig.ready()``."""

from django.db.models import (
    BigIntegerField,
    CharField,
    Count,
    DateTimeField,
    DecimalField,
    F,
    OuterRef,
    Subquery,
    Sum,
    Value,
)
from django.db.models.functions import Coalesce

from core import changesets
from core.history import delete_with_history, update_with_history
from core.rowlocks import lock_rows
from customers import parts

from .models import Opportunity, StageChange

TIMELINE_SOURCE = "stage_change"


def _open_of_customer():
    return Opportunity.objects.filter(customer=OuterRef("pk"), stage__in=Opportunity.OPEN_STAGES).order_by()


def open_pipeline_value():
    totals = _open_of_customer().values("customer").annotate(total=Sum("value")).values("total")
    return Coalesce(Subquery(totals), Value(0), output_field=DecimalField(max_digits=20, decimal_places=2))


def open_opportunity_count():
    counts = _open_of_customer().values("customer").annotate(n=Count("id")).values("n")
    return Coalesce(Subquery(counts), Value(0))


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
    return {
        "type": stage_change_type(row["event_from_stage"], row["event_to_stage"]),
        "at": row["at"],
        "opportunity": {"id": row["event_opportunity_id"], "title": row["opportunity_title"]},
        "from_stage": row["event_from_stage"],
        "to_stage": row["event_to_stage"],
    }


def delete_opportunities(customer):
    deals = Opportunity.objects.filter(customer=customer)
    # Locked before their stage log is read: a deal moved at the same moment (the board, its page, the API) is
    # waited for, and the step it logged goes with the rest, rather than failing the delete at its COMMIT.
    lock_rows(deals)
    # The stage log first, in one statement: it keeps no history, and left to the
    # cascade it would make Django load every opportunity.
    log = StageChange.objects.filter(opportunity__customer=customer)
    changesets.log_rows_deleted(log)
    log.delete()
    return delete_with_history(deals)


def move_opportunities(from_ids, survivor):
    # Each keeps its own company (the deal was made with it); only the customer changes.
    return update_with_history(Opportunity.objects.filter(customer_id__in=from_ids), customer=survivor)


def register():
    # What the mover sets, put back in bulk by the undo of a merge (core/changesets.py).
    changesets.restore_in_bulk(Opportunity, "customer_id", "company_id")
    parts.add_figure("open_pipeline_value", open_pipeline_value)
    # Shown beside the summary in the admin, and reported when customers change owner.
    parts.add_figure("open_opportunity_count", open_opportunity_count, in_summary=False)
    parts.add_timeline_source(
        parts.TimelineSource(
            name=TIMELINE_SOURCE,
            rows=lambda: StageChange.objects.all(),
            customer="opportunity__customer_id",
            columns={
                "at": (DateTimeField(), F("changed_at")),
                "event_id": (BigIntegerField(), F("id")),
                "event_opportunity_id": (BigIntegerField(), F("opportunity_id")),
                "opportunity_title": (CharField(), F("opportunity__title")),
                "event_from_stage": (CharField(), F("from_stage")),
                "event_to_stage": (CharField(), F("to_stage")),
            },
            entry=timeline_entry,
        )
    )
    parts.add_deleter("opportunities", delete_opportunities)
    parts.add_mover("opportunities", move_opportunities)
