"""Writes on customers that do more than save validated fields."""

from django.db import transaction

from crm_site.history import delete_with_history
from interactions.models import Interaction
from opportunities.models import Opportunity, StageChange


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
