"""Writes on customers that do more than save validated fields."""

from django.db import transaction

from interactions.models import Interaction
from opportunities.models import Opportunity, StageChange


def delete_customer(customer):
    """Delete a customer with its interactions and opportunities; return the counts per kind.

    Children go first, one bulk statement per table, so the number of queries
    does not grow with the customer's history (a customer with 50,000
    interactions takes the same five queries as one with five). That holds
    while no ``pre_delete``/``post_delete`` receivers are attached to the child
    models: with receivers (an audit trail, say) Django must load every child to
    send its signals. Such a receiver should then record the children in bulk
    here instead (see docs/benchmarks.md, "Deleting a customer").
    """
    with transaction.atomic():
        StageChange.objects.filter(opportunity__customer=customer).delete()
        interactions, _ = Interaction.objects.filter(customer=customer).delete()
        opportunities, _ = Opportunity.objects.filter(customer=customer).delete()
        customer.delete()
    return {"customers": 1, "interactions": interactions, "opportunities": opportunities}
