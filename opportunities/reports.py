"""Pipeline figures, computed in the database.

One module serves both the reports API and the admin dashboard, so that the
two can never disagree.
"""

import calendar
from decimal import ROUND_HALF_UP, Decimal

from django.db.models import Count, DecimalField, ExpressionWrapper, F, Q, Sum, Value
from django.db.models.functions import Coalesce, TruncMonth
from django.utils import timezone
from django.utils.translation import gettext_lazy as _

from core.dates import add_months

from . import figures as kept_figures
from .models import Opportunity

CENT = Decimal("0.01")
ZERO = Decimal("0")

_MONEY = DecimalField(max_digits=20, decimal_places=4)


def weighted_value_expression():
    """value x probability / 100, as a database expression.

    Written as a product with 0.01: SQLite stores whole-number values as integers,
    and a division by 100 there would be an integer division (7 x 50 / 100 = 3).
    """
    return ExpressionWrapper(F("value") * F("probability") * Value(Decimal("0.01")), output_field=_MONEY)


def _money(value):
    return Decimal(value or 0).quantize(CENT, rounding=ROUND_HALF_UP)


def _ratio(part, whole):
    if not whole:
        return None
    return float((Decimal(part) / Decimal(whole)).quantize(Decimal("0.0001"), rounding=ROUND_HALF_UP))


def win_rate(won, lost):
    """The win rate rule: won / (won + lost), by count and by value; ``None`` while nothing has closed."""
    return {
        "by_count": _ratio(won["count"], won["count"] + lost["count"]),
        "by_value": _ratio(won["total_value"], won["total_value"] + lost["total_value"]),
    }


def closing_in_month(day=None):
    """Filter: open opportunities expected to close in ``day``'s month (this month by default)."""
    day = day or timezone.localdate()
    last = calendar.monthrange(day.year, day.month)[1]
    return Q(
        stage__in=Opportunity.OPEN_STAGES,
        expected_close_date__gte=day.replace(day=1),
        expected_close_date__lte=day.replace(day=last),
    )


def _figure_aggregates(prefix, condition):
    """Count, total value and weighted value of the rows matching ``condition``, named ``<prefix>_*``."""
    return {
        f"{prefix}_count": Count("id", filter=condition),
        f"{prefix}_value": Coalesce(Sum("value", filter=condition), Value(ZERO), output_field=_MONEY),
        f"{prefix}_weighted": Coalesce(
            Sum(weighted_value_expression(), filter=condition), Value(ZERO), output_field=_MONEY
        ),
    }


def _figures(row, prefix):
    return {
        "count": row[f"{prefix}_count"],
        "total_value": _money(row[f"{prefix}_value"]),
        "weighted_value": _money(row[f"{prefix}_weighted"]),
    }


# ``owner`` of ``pipeline_summary`` over the whole book: every deal.
EVERYONE = object()


def book_of(user):
    """``{"owner": ...}`` of ``pipeline_summary`` and ``pipeline_groups`` for the deals ``user`` sees, when
    those are everyone's or one owner's book (the figures are kept by the customer's owner); else ``None``:
    count the deals of their scope.
    """
    from core import access

    if access.sees_everything(user):
        return {"owner": EVERYONE}
    if access.sees_own_alone(Opportunity, user) and access.owner_path(Opportunity) == "customer__owner":
        return {"owner": user.pk}
    return None


def pipeline_summary(queryset=None, today=None, *, owner=EVERYONE, close_month=None):
    """Count, total and weighted value per stage; open/won/lost totals; win rates.

    Runs exactly one aggregate query over ``queryset``; for all opportunities (``None``, the
    default) on PostgreSQL, one read of the figures the database keeps (``figures.py``) instead.
    With ``queryset`` ``None``, ``owner`` (a user's id, or ``None`` for the customers without
    one) and ``close_month`` (a month's first day) narrow the book as the board's filters do.
    Win rate is won / (won + lost), by count and by value; ``None`` while nothing has closed.
    ``closing_this_month``: the open opportunities whose expected close date falls in the
    current month (``today``'s month, the local date by default).
    """
    if queryset is None and kept_figures.kept():
        this_month = (today or timezone.localdate()).replace(day=1)
        rows = [
            row
            for row in kept_figures.figure_rows()
            if (owner is EVERYONE or row[0] == owner) and (close_month is None or row[2] == close_month)
        ]
        row = _summary_of_figures(rows, this_month)
    else:
        if queryset is None:
            queryset = Opportunity.objects.all()
            if owner is not EVERYONE:
                queryset = queryset.filter(customer__owner_id=owner)
            if close_month is not None:
                last = close_month.replace(day=calendar.monthrange(close_month.year, close_month.month)[1])
                queryset = queryset.filter(expected_close_date__gte=close_month, expected_close_date__lte=last)
        aggregates = _figure_aggregates("closing", closing_in_month(today))
        for stage in Opportunity.Stage:
            aggregates.update(_figure_aggregates(stage.value, Q(stage=stage)))
        row = queryset.order_by().aggregate(**aggregates)

    stages = [
        {"stage": stage.value, "label": str(stage.label), **_figures(row, stage.value)} for stage in Opportunity.Stage
    ]
    by_stage = {item["stage"]: item for item in stages}

    def total(stage_names):
        # Summed before rounding, as one aggregate over those deals is (the forecast's total, a group's):
        # the stages' figures, each rounded to the cent, may add up to a cent or more apart.
        return {
            "count": sum(row[f"{s}_count"] for s in stage_names),
            "total_value": _money(sum((Decimal(row[f"{s}_value"] or 0) for s in stage_names), ZERO)),
            "weighted_value": _money(sum((Decimal(row[f"{s}_weighted"] or 0) for s in stage_names), ZERO)),
        }

    won = by_stage[Opportunity.Stage.CLOSED]
    lost = by_stage[Opportunity.Stage.LOST]
    return {
        "stages": stages,
        "open": total(Opportunity.OPEN_STAGES),
        "won": total([Opportunity.Stage.CLOSED]),
        "lost": total([Opportunity.Stage.LOST]),
        "closing_this_month": _figures(row, "closing"),
        "win_rate": win_rate(won, lost),
    }


def _add(row, prefix, count, total, weighted):
    row[f"{prefix}_count"] = row.get(f"{prefix}_count", 0) + count
    row[f"{prefix}_value"] = row.get(f"{prefix}_value", ZERO) + total
    row[f"{prefix}_weighted"] = row.get(f"{prefix}_weighted", ZERO) + weighted


def _empty(prefixes):
    row = {}
    for prefix in prefixes:
        _add(row, prefix, 0, ZERO, ZERO)
    return row


def _summary_of_figures(rows, month):
    """The aggregate row of ``pipeline_summary`` from the kept figures (``month``: this month's first day)."""
    row = _empty(["closing", *Opportunity.Stage.values])
    for _owner, stage, close_month, count, total, weighted in rows:
        _add(row, stage, count, total, weighted)
        if stage in Opportunity.OPEN_STAGES and close_month == month:
            _add(row, "closing", count, total, weighted)
    return row


# At most this many reasons in ``lost_reasons`` (a free text: there may be as many as lost deals).
LOST_REASON_LIMIT = 50


def lost_reasons(queryset, limit=LOST_REASON_LIMIT):
    """The lost deals of ``queryset`` grouped by their lost reason, in one aggregate query.

    Each group: ``reason`` (``None`` for the deals lost with no reason given), its ``label`` (the reason,
    or "No reason given"), ``count`` and ``total_value``; the most frequent first, then the largest
    total, then by reason; at most ``limit`` groups. Reasons are grouped as kept (on one line,
    ``services.lost_reason_text``).
    """
    rows = (
        queryset.filter(stage=Opportunity.Stage.LOST)
        .order_by()
        .values("lost_reason")
        .annotate(count=Count("id"), total=Coalesce(Sum("value"), Value(ZERO), output_field=_MONEY))
        .order_by("-count", "-total", "lost_reason")[:limit]
    )
    return [
        {
            "reason": row["lost_reason"] or None,
            "label": row["lost_reason"] or str(_("No reason given")),
            "count": row["count"],
            "total_value": _money(row["total"]),
        }
        for row in rows
    ]


def value_totals(queryset):
    """Count, total and weighted value of ``queryset``, in one aggregate query."""
    return _figures(queryset.order_by().aggregate(**_figure_aggregates("all", Q())), "all")


def forecast(today, months, queryset=None):
    """Weighted open pipeline by expected close month, for ``months`` months from ``today``'s month.

    Open opportunities fall in exactly one bucket: ``overdue`` (expected close
    date before ``today``), one of the ``months`` (from ``today`` to the end of
    the last month), ``later`` (after that) or ``unscheduled`` (no date).
    Two queries, whatever ``months`` is.
    """
    if queryset is None:
        queryset = Opportunity.objects.all()
    open_pipeline = queryset.filter(stage__in=Opportunity.OPEN_STAGES).order_by()
    horizon_end = add_months(today, months)  # exclusive
    in_horizon = Q(expected_close_date__gte=today, expected_close_date__lt=horizon_end)

    row = open_pipeline.aggregate(
        **_figure_aggregates("overdue", Q(expected_close_date__lt=today)),
        **_figure_aggregates("later", Q(expected_close_date__gte=horizon_end)),
        **_figure_aggregates("unscheduled", Q(expected_close_date__isnull=True)),
        **_figure_aggregates("all", Q()),
    )
    per_month = {
        item["month"]: item
        for item in open_pipeline.filter(in_horizon)
        .annotate(month=TruncMonth("expected_close_date"))
        .values("month")
        .annotate(**_figure_aggregates("month", Q()))
    }

    buckets = []
    for offset in range(months):
        start = add_months(today, offset)
        item = per_month.get(start)
        figures = (
            _figures(item, "month") if item else {"count": 0, "total_value": _money(0), "weighted_value": _money(0)}
        )
        buckets.append({"month": start.strftime("%Y-%m"), **figures})
    return {
        "today": today,
        "months": buckets,
        "overdue": _figures(row, "overdue"),
        "later": _figures(row, "later"),
        "unscheduled": _figures(row, "unscheduled"),
        "total": _figures(row, "all"),
    }


# ``?group_by=`` of the pipeline report: the key of each group, and the label shown with it.
GROUPINGS = {
    "company": ("company_id", "company__name"),
    "owner": ("customer__owner_id", "customer__owner__username"),
    "stage": ("stage", None),
}


def pipeline_groups(queryset, group_by, limit, won_since=None, *, owner=EVERYONE):
    """Open, won and lost figures per company, owner or stage, in one aggregate query.

    Groups with the largest open pipeline first (then by key); at most ``limit``.
    Opportunities without a company (or whose customer has no owner) form the
    group whose key is null. With ``won_since`` (an aware date-time), each group also
    has ``won_since`` (the deals won at or after it, by ``closed_at``) and its ``win_rate``:
    the admin dashboard's per-rep table.

    ``queryset`` ``None``: all opportunities, or ``owner``'s (a user's id, or ``None`` for the
    customers without one); by owner on PostgreSQL, from the figures the database keeps
    (``figures.py``), the deals won since ``won_since`` counted apart (two or three queries
    instead of one over every deal).
    """
    if queryset is None and group_by == "owner" and kept_figures.kept():
        return _owner_groups_of_figures(limit, won_since, owner)
    if queryset is None:
        queryset = Opportunity.objects.all()
        if owner is not EVERYONE:
            queryset = queryset.filter(customer__owner_id=owner)
    key, label = GROUPINGS[group_by]
    columns = [key] if label is None else [key, label]
    aggregates = {
        **_figure_aggregates("open", Q(stage__in=Opportunity.OPEN_STAGES)),
        **_figure_aggregates("won", Q(stage=Opportunity.Stage.CLOSED)),
        **_figure_aggregates("lost", Q(stage=Opportunity.Stage.LOST)),
    }
    if won_since is not None:
        aggregates.update(_figure_aggregates("since", Q(stage=Opportunity.Stage.CLOSED, closed_at__gte=won_since)))
    rows = (
        queryset.order_by()
        .values(*columns)
        .annotate(**aggregates)
        .order_by(F("open_value").desc(), F(key).asc(nulls_last=True))[:limit]
    )
    stage_labels = dict(Opportunity.Stage.choices)
    groups = []
    for row in rows:
        won, lost = _figures(row, "won"), _figures(row, "lost")
        group = {
            "key": row[key],
            "label": str(stage_labels.get(row[key], row[key])) if label is None else row[label],
            "open": _figures(row, "open"),
            "won": won,
            "lost": lost,
        }
        if won_since is not None:
            group["won_since"] = _figures(row, "since")
            group["win_rate"] = win_rate(won, lost)
        groups.append(group)
    return groups


def _owner_groups_of_figures(limit, won_since, only=EVERYONE):
    from django.contrib.auth import get_user_model

    rows = {}
    for owner, stage, _month, count, total, weighted in kept_figures.figure_rows():
        if only is not EVERYONE and owner != only:
            continue
        row = rows.setdefault(owner, _empty(["open", "won", "lost", "since"]))
        if stage in Opportunity.OPEN_STAGES:
            _add(row, "open", count, total, weighted)
        elif stage == Opportunity.Stage.CLOSED:
            _add(row, "won", count, total, weighted)
        elif stage == Opportunity.Stage.LOST:
            _add(row, "lost", count, total, weighted)
    if won_since is not None:
        won = Opportunity.objects.filter(stage=Opportunity.Stage.CLOSED, closed_at__gte=won_since)
        if only is not EVERYONE:
            won = won.filter(customer__owner_id=only)
        won = won.order_by().values("customer__owner_id").annotate(**_figure_aggregates("since", Q()))
        for item in won:
            row = rows.get(item["customer__owner_id"])
            if row is not None:
                row.update({name: value for name, value in item.items() if name.startswith("since_")})
    ordered = sorted(rows.items(), key=lambda item: (-item[1]["open_value"], item[0] is None, item[0] or 0))
    ordered = ordered if limit is None else ordered[:limit]
    names = dict(
        get_user_model()
        .objects.filter(pk__in=[owner for owner, _ in ordered if owner is not None])
        .values_list("pk", "username")
    )
    groups = []
    for owner, row in ordered:
        won, lost = _figures(row, "won"), _figures(row, "lost")
        group = {"key": owner, "label": names.get(owner), "open": _figures(row, "open"), "won": won, "lost": lost}
        if won_since is not None:
            group["won_since"] = _figures(row, "since")
            group["win_rate"] = win_rate(won, lost)
        groups.append(group)
    return groups
