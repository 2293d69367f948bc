"""What interactions add to their company (``companies.parts``), registered by ``InteractionsConfig.ready()``."""

from django.db.models import OuterRef, Subquery

from companies import parts
from customers.company_parts import of_people_seen_by

from .models import Interaction


def last_interaction_at(viewer=None):
    """When one of the company's people (those ``viewer`` sees) was last in touch."""
    interactions = of_people_seen_by(viewer, Interaction.objects.filter(customer__company=OuterRef("pk")), "customer")
    latest = interactions.order_by("-occurred_at")
    return Subquery(latest.values("occurred_at")[:1])


def register():
    parts.add_figure("last_interaction_at", last_interaction_at)
