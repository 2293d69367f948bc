"""Activity figures, computed in the database: interactions over time and customers going cold."""

import datetime

from django.db.models import Count, Exists, F, OuterRef, Subquery
from django.db.models.functions import TruncMonth, TruncWeek
from django.utils import timezone

from core.dates import day_bounds, periods
from customers.models import Customer

from .models import Interaction

GROUPINGS = {"week": TruncWeek, "month": TruncMonth}


def interactions_over_time(first_day, last_day, group_by, queryset=None):
    """Interactions per type per week or month, by ``occurred_at`` on days ``first_day``..``last_day``.

    One query; periods without interactions are listed with zeros.
    """
    if queryset is None:
        queryset = Interaction.objects.all()
    since, until = day_bounds(first_day, last_day)
    rows = (
        queryset.filter(occurred_at__gte=since, occurred_at__lt=until)
        .order_by()
        .annotate(period=GROUPINGS[group_by]("occurred_at"))
        .values("period", "interaction_type")
        .annotate(count=Count("id"))
    )
    counts = {}
    for row in rows:
        period = row["period"]
        day = period.date() if isinstance(period, datetime.datetime) else period
        counts[(day, row["interaction_type"])] = row["count"]

    types = [choice.value for choice in Interaction.Type]
    result = []
    for start in periods(first_day, last_day, group_by):
        by_type = {kind: counts.get((start, kind), 0) for kind in types}
        result.append({"period": start, "total": sum(by_type.values()), "by_type": by_type})
    totals = {kind: sum(item["by_type"][kind] for item in result) for kind in types}
    return {"periods": result, "totals": {"total": sum(totals.values()), "by_type": totals}}


def going_cold(cutoff, limit, customers=None, *, now=None):
    """Customers without any interaction from ``cutoff`` to ``now`` (those with none at all included).

    An interaction logged ahead (a meeting set for next week) is no contact yet: it neither warms its
    customer nor is their last interaction. Coldest first: never contacted, then by oldest last
    interaction. Two queries: the count, and the first ``limit`` customers.
    """
    if customers is None:
        customers = Customer.objects.all()
    past = Interaction.objects.filter(customer=OuterRef("pk"), occurred_at__lte=now or timezone.now())
    recent = past.filter(occurred_at__gte=cutoff)
    latest = past.order_by("-occurred_at").values("occurred_at")[:1]
    cold = customers.filter(~Exists(recent)).order_by()
    rows = (
        cold.annotate(last_interaction_at=Subquery(latest))
        .order_by(F("last_interaction_at").asc(nulls_first=True), "id")
        .values("id", "name", "company_name", "email", "status", "last_interaction_at")[:limit]
    )
    customers = [{**row, "company": row["company_name"]} for row in rows]
    for row in customers:
        del row["company_name"]
    return {"count": cold.count(), "customers": customers}


def activities_by_owner(since, queryset=None, *, until=None):
    """``{owner id: number of interactions since ``since``}`` (and before ``until``, when given), counted for the
    customer's owner, in one query.

    An interaction counts for the rep who owns its customer (the rep's book), whoever logged it;
    interactions of customers without an owner are left out.
    """
    if queryset is None:
        queryset = Interaction.objects.all()
    if until is not None:
        queryset = queryset.filter(occurred_at__lt=until)
    return dict(
        queryset.filter(occurred_at__gte=since, customer__owner__isnull=False)
        .order_by()
        .values_list("customer__owner_id")
        .annotate(count=Count("id"))
    )
