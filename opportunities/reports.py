"""Pipeline figures, computed in the database.

One function serves both the reports API and the admin dashboard, so that the
two can never disagree.
"""

import calendar
from decimal import ROUND_HALF_UP, Decimal

from django.db.models import Count, DecimalField, ExpressionWrapper, F, Q, Sum, Value
from django.db.models.functions import Coalesce
from django.utils import timezone

from .models import Opportunity

CENT = Decimal("0.01")
ZERO = Decimal("0")

_MONEY = DecimalField(max_digits=20, decimal_places=4)


def weighted_value_expression():
    """value x probability / 100, as a database expression."""
    return ExpressionWrapper(F("value") * F("probability") / Value(Decimal("100")), output_field=_MONEY)


def _money(value):
    return Decimal(value or 0).quantize(CENT, rounding=ROUND_HALF_UP)


def _ratio(part, whole):
    if not whole:
        return None
    return float((Decimal(part) / Decimal(whole)).quantize(Decimal("0.0001"), rounding=ROUND_HALF_UP))


def closing_in_month(day=None):
    """Filter: open opportunities expected to close in ``day``'s month (this month by default)."""
    day = day or timezone.localdate()
    last = calendar.monthrange(day.year, day.month)[1]
    return Q(
        stage__in=Opportunity.OPEN_STAGES,
        expected_close_date__gte=day.replace(day=1),
        expected_close_date__lte=day.replace(day=last),
    )


def pipeline_summary(queryset=None, today=None):
    """Count, total and weighted value per stage; open/won/lost totals; win rates.

    Runs exactly one aggregate query over ``queryset`` (all opportunities by default).
    Win rate is won / (won + lost), by count and by value; ``None`` while nothing has closed.
    ``closing_this_month``: the open opportunities whose expected close date falls in the
    current month (``today``'s month, the local date by default).
    """
    if queryset is None:
        queryset = Opportunity.objects.all()
    aggregates = {}
    closing = closing_in_month(today)
    aggregates["closing_count"] = Count("id", filter=closing)
    aggregates["closing_value"] = Coalesce(Sum("value", filter=closing), Value(ZERO), output_field=_MONEY)
    aggregates["closing_weighted"] = Coalesce(
        Sum(weighted_value_expression(), filter=closing), Value(ZERO), output_field=_MONEY
    )
    for stage in Opportunity.Stage:
        in_stage = Q(stage=stage)
        aggregates[f"{stage}_count"] = Count("id", filter=in_stage)
        aggregates[f"{stage}_value"] = Coalesce(Sum("value", filter=in_stage), Value(ZERO), output_field=_MONEY)
        aggregates[f"{stage}_weighted"] = Coalesce(
            Sum(weighted_value_expression(), filter=in_stage), Value(ZERO), output_field=_MONEY
        )
    row = queryset.order_by().aggregate(**aggregates)

    stages = []
    for stage in Opportunity.Stage:
        stages.append(
            {
                "stage": stage.value,
                "label": str(stage.label),
                "count": row[f"{stage}_count"],
                "total_value": _money(row[f"{stage}_value"]),
                "weighted_value": _money(row[f"{stage}_weighted"]),
            }
        )
    by_stage = {item["stage"]: item for item in stages}

    def total(stage_names):
        return {
            "count": sum(by_stage[s]["count"] for s in stage_names),
            "total_value": sum((by_stage[s]["total_value"] for s in stage_names), ZERO),
            "weighted_value": sum((by_stage[s]["weighted_value"] for s in stage_names), ZERO),
        }

    won = by_stage[Opportunity.Stage.CLOSED]
    lost = by_stage[Opportunity.Stage.LOST]
    return {
        "stages": stages,
        "open": total(Opportunity.OPEN_STAGES),
        "won": total([Opportunity.Stage.CLOSED]),
        "lost": total([Opportunity.Stage.LOST]),
        "closing_this_month": {
            "count": row["closing_count"],
            "total_value": _money(row["closing_value"]),
            "weighted_value": _money(row["closing_weighted"]),
        },
        "win_rate": {
            "by_count": _ratio(won["count"], won["count"] + lost["count"]),
            "by_value": _ratio(won["total_value"], won["total_value"] + lost["total_value"]),
        },
    }


def value_totals(queryset):
    """Total and weighted value of ``queryset``, in one aggregate query."""
    row = queryset.order_by().aggregate(
        total_value=Coalesce(Sum("value"), Value(ZERO), output_field=_MONEY),
        weighted_value=Coalesce(Sum(weighted_value_expression()), Value(ZERO), output_field=_MONEY),
        count=Count("id"),
    )
    return {
        "count": row["count"],
        "total_value": _money(row["total_value"]),
        "weighted_value": _money(row["weighted_value"]),
    }
