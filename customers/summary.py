"""A customer's summary figures (interaction count, open pipeline value, last interaction).

A list annotates them in its one query (``Customer.objects.with_summary()``).
One customer, read by primary key on every detail request and after every
write, comes with them from the same query compiled once per process.
"""

from functools import cache

from core.api.fastsql import PreparedValues

from .models import Customer

SUMMARY_FIELDS = ("interaction_count", "open_pipeline_value", "last_interaction_at")


@cache
def _query(using):
    attnames = [field.attname for field in Customer._meta.concrete_fields]
    prepared = PreparedValues(
        lambda pk: Customer.objects.using(using).filter(pk=pk).with_summary().values_list(*attnames, *SUMMARY_FIELDS),
        using,
    )
    return attnames, prepared


def customer_with_summary(pk, using="default"):
    """The customer with primary key ``pk`` and its summary figures (one query), or None."""
    attnames, prepared = _query(using)
    row = prepared.get(pk)
    if row is None:
        return None
    customer = Customer.from_db(using, attnames, row[: len(attnames)])
    for name, value in zip(SUMMARY_FIELDS, row[len(attnames) :], strict=True):
        setattr(customer, name, value)
    return customer
