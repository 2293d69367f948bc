"""What interactions add to their company (``companies.parts``), registered by ``InteractionsConfig.ready()``."""

from django.db.models import OuterRef, Subquery

from companies import parts

from .models import Interaction


def last_interaction_at():
    """When one of the company's people was last in touch."""
    latest = Interaction.objects.filter(customer__company=OuterRef("pk")).order_by("-occurred_at")
    return Subquery(latest.values("occurred_at")[:1])


def register():
    parts.add_figure("last_interaction_at", last_interaction_at)
