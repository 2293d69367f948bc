"""A customer's summary figures (interaction count, open pipeline value, last interaction).

A list annotates them in its one query (``Customer.objects.with_summary()``).
One customer, read by primary key on every detail request and after every
write, comes with them from the same annotations in one query (the kernel's
detail reader, ``core.api.fastsql.AnnotatedRow``).
"""

from core.api.fastsql import AnnotatedRow

from .models import Customer

SUMMARY_FIELDS = ("interaction_count", "open_pipeline_value", "last_interaction_at")

# The customer's row and its summary figures: what ``with_summary()`` gives for one customer.
WITH_SUMMARY = AnnotatedRow(lambda queryset: queryset.with_summary(), SUMMARY_FIELDS)


def customer_with_summary(pk, using="default"):
    """The customer with primary key ``pk`` and its summary figures (one query), or None."""
    return WITH_SUMMARY.read(Customer, pk, using)
