"""Context of the admin's index page: the pipeline at a glance and the latest interactions."""

from core.access import scope
from interactions.models import Interaction

from .models import Opportunity
from .reports import closing_in_month, pipeline_summary

LIST_LENGTH = 10


def _percent(part, whole):
    return round(float(part) * 100 / float(whole), 1) if whole else 0


def dashboard_context(request):
    user = request.user
    context = {}
    if user.has_perm("opportunities.view_opportunity"):
        # The figures of the user's book (everything for managers and read-only users).
        opportunities = scope(Opportunity.objects.all(), user)
        summary = pipeline_summary(opportunities)
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
        context["closing_this_month"] = list(
            opportunities.filter(closing_in_month())
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
