"""Context of the admin's index page: the pipeline at a glance and the latest interactions."""

import datetime

from django.utils import timezone

from core import access
from core.access import scope
from core.admin.owners import owners
from core.models import UserPreferences
from interactions.models import Interaction
from interactions.reports import activities_by_owner

from .models import Opportunity
from .reports import book_of, closing_in_month, lost_reasons, pipeline_groups, pipeline_summary

LIST_LENGTH = 10


def _percent(part, whole):
    return round(float(part) * 100 / float(whole), 1) if whole else 0


def period_starts(user, now=None):
    """The start of ``user``'s month and week (Monday), at midnight in their time zone."""
    zone = UserPreferences.for_user(user).zone
    local = (now or timezone.now()).astimezone(zone)
    midnight = local.replace(hour=0, minute=0, second=0, microsecond=0)
    month = midnight.replace(day=1)
    week = midnight - datetime.timedelta(days=midnight.weekday())
    # Rebuilt from the date so that a change of UTC offset within the period is honoured.
    return (
        datetime.datetime(month.year, month.month, month.day, tzinfo=zone),
        datetime.datetime(week.year, week.month, week.day, tzinfo=zone),
    )


def _rate_percent(ratio):
    return None if ratio is None else round(ratio * 100, 1)


def rep_table(user, now=None):
    """One row per rep (a rep's own row only): open pipeline, weighted, won this month, win rate, activities this week.

    Three queries whatever the number of reps and deals: the owners, one aggregate
    of the opportunities grouped by owner (``opportunities.reports.pipeline_groups``,
    the rules of ``GET /api/reports/pipeline?group_by=owner``), and one count of the
    interactions of this week grouped by the customer's owner.
    """
    month_start, week_start = period_starts(user, now)
    # The week ends where the next begins: an interaction logged ahead for a later week is none of this one's.
    week_end = datetime.datetime.combine(
        week_start.date() + datetime.timedelta(days=7), datetime.time(), tzinfo=week_start.tzinfo
    )
    if access.sees_everything(user):
        people = list(owners().values_list("pk", "username"))
    else:
        people = [(user.pk, user.get_username())]
    # A whole book (everyone's, or one owner's) is read from the figures the database keeps
    # (opportunities/figures.py).
    book = book_of(user)
    opportunities = scope(Opportunity.objects.all(), user) if book is None else None
    figures = {
        group["key"]: group
        for group in pipeline_groups(opportunities, "owner", limit=None, won_since=month_start, **(book or {}))
        if group["key"] is not None
    }
    activities = activities_by_owner(week_start, scope(Interaction.objects.all(), user), until=week_end)
    rows = []
    for pk, username in people:
        group = figures.get(pk)
        rows.append(
            {
                "pk": pk,
                "username": username,
                "open_value": group["open"]["total_value"] if group else 0,
                "weighted_value": group["open"]["weighted_value"] if group else 0,
                "won_month_count": group["won_since"]["count"] if group else 0,
                "won_month_value": group["won_since"]["total_value"] if group else 0,
                "win_rate_percent": _rate_percent(group["win_rate"]["by_count"]) if group else None,
                "activities_week": activities.get(pk, 0),
            }
        )
    return rows


def dashboard_context(request, now=None):
    user = request.user
    context = {}
    if user.has_perm("opportunities.view_opportunity"):
        # "This month" is the viewer's, in their time zone, as the per-rep table's.
        this_month = period_starts(user, now)[0].date()
        # The figures of the user's book (everything for managers and read-only users).
        opportunities = scope(Opportunity.objects.all(), user)
        # A whole book (everyone's, or one owner's) is read from the figures the database keeps.
        book = book_of(user)
        summary = (
            pipeline_summary(opportunities, this_month) if book is None else pipeline_summary(None, this_month, **book)
        )
        peak = max((stage["total_value"] for stage in summary["stages"]), default=0)
        context["pipeline"] = summary
        context["pipeline_bars"] = [
            {
                **stage,
                "value_width": _percent(stage["total_value"], peak),
                "weighted_width": _percent(stage["weighted_value"], peak),
            }
            for stage in summary["stages"]
        ]
        context["win_rate_percent"] = {
            key: None if ratio is None else round(ratio * 100, 1) for key, ratio in summary["win_rate"].items()
        }
        # The pipeline report's lost deals by reason, over the same book.
        context["lost_reasons"] = lost_reasons(opportunities)
        if user.has_perm("interactions.view_interaction"):
            context["rep_table"] = rep_table(user, now)
            context["rep_table_is_own"] = not access.sees_everything(user)
        context["closing_this_month"] = list(
            opportunities.filter(closing_in_month(this_month))
            .select_related("customer")
            .order_by("expected_close_date", "-value", "id")[:LIST_LENGTH]
        )
    if user.has_perm("interactions.view_interaction"):
        context["latest_interactions"] = list(
            scope(Interaction.objects.all(), user)
            .select_related("customer")
            .order_by("-occurred_at", "-id")[:LIST_LENGTH]
        )
    return context
