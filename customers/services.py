"""Writes on customers that do more than save validated fields."""

from django.db import transaction
from django.utils import timezone
from simple_history.utils import bulk_update_with_history

from core.history import current_history_user, delete_with_history
from interactions.models import Interaction
from opportunities.models import Opportunity, StageChange

from .models import Customer


def delete_customer(customer):
    """Delete a customer with its interactions and opportunities; return the counts per kind.

    Children go first, in bulk: their "deleted" history records with one
    ``INSERT ... SELECT`` per table and the rows with one ``DELETE``, so the
    number of queries does not grow with the customer's history (a customer with
    50,000 interactions takes as many as one with five). The customer itself goes
    through the ORM, which records its own history.
    """
    with transaction.atomic():
        StageChange.objects.filter(opportunity__customer=customer).delete()
        interactions = delete_with_history(Interaction.objects.filter(customer=customer))
        opportunities = delete_with_history(Opportunity.objects.filter(customer=customer))
        customer.delete()
    return {"customers": 1, "interactions": interactions, "opportunities": opportunities}


def reassign_customers(customers, owner):
    """Give ``customers`` to ``owner``, recording each change in the history; return the counts.

    Interactions and opportunities belong to their customer's owner, so they
    follow without being written. Customers that already belong to ``owner`` are
    left alone.
    """
    with transaction.atomic():
        # Locked by primary key: the caller's queryset may carry joins and annotations.
        moving = list(Customer.objects.filter(pk__in=customers.values("pk")).exclude(owner=owner).select_for_update())
        now = timezone.now()
        for customer in moving:
            customer.owner = owner
            customer.updated_at = now
        bulk_update_with_history(
            moving, Customer, ["owner", "updated_at"], batch_size=500, default_user=current_history_user()
        )
        ids = [customer.pk for customer in moving]
        open_opportunities = Opportunity.objects.filter(customer_id__in=ids, stage__in=Opportunity.OPEN_STAGES)
    return {"customers": len(moving), "open_opportunities": open_opportunities.count() if ids else 0}
