"""What opportunities add to their company (``companies.parts``), registered by ``OpportunitiesConfig.ready()``."""

from django.db.models import DecimalField, OuterRef, Subquery, Sum, Value
from django.db.models.functions import Coalesce
from django.utils import timezone
from simple_history.utils import bulk_update_with_history

from companies import parts
from core.history import current_history_user, update_with_history
from core.rowlocks import locking
from customers.company_parts import of_people_seen_by

from .models import Opportunity


def open_pipeline_value(viewer=None):
    deals = Opportunity.objects.filter(company=OuterRef("pk"), stage__in=Opportunity.OPEN_STAGES)
    totals = (
        of_people_seen_by(viewer, deals, "customer")
        .order_by()
        .values("company")
        .annotate(total=Sum("value"))
        .values("total")
    )
    return Coalesce(Subquery(totals), Value(0), output_field=DecimalField(max_digits=20, decimal_places=2))


def unlink_opportunities(company):
    """Leave the company's opportunities without a company (they stay with their customer); return how many."""
    # Changed, not deleted (``FOR NO KEY UPDATE``): the tasks being added to them meanwhile go on.
    opportunities = list(locking(Opportunity.objects.filter(company=company)))
    now = timezone.now()
    for opportunity in opportunities:
        opportunity.company, opportunity.updated_at = None, now
    bulk_update_with_history(
        opportunities, Opportunity, ["company", "updated_at"], batch_size=500, default_user=current_history_user()
    )
    return len(opportunities)


def move_opportunities(from_ids, survivor):
    return update_with_history(Opportunity.objects.filter(company_id__in=from_ids), company=survivor)


def register():
    parts.add_figure("open_pipeline_value", open_pipeline_value)
    parts.add_unlinker("opportunities", unlink_opportunities)
    parts.add_mover("opportunities", move_opportunities)
