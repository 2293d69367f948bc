"""A customer's history, newest first: the rows every timeline source adds (``customers.parts``).

The sources' tables (interactions, opportunity stage changes, ...) are merged in
the database with one ``UNION ALL`` ordered by time, so any page of the timeline
is a plain ``LIMIT``/``OFFSET`` over it. A company's timeline is the same union
over all its people (``timeline_of_customers``), each row naming its customer.
"""

from django.db.models import BigIntegerField, CharField, F, Value
from django.db.models.functions import Cast

from . import parts


def _columns():
    """The columns of every half of the union, in order: the source's name, then each source's own."""
    columns = {"source": CharField(), "timeline_customer_id": BigIntegerField()}
    for source in parts.TIMELINE_SOURCES.values():
        for name, (field, _expression) in source.columns.items():
            columns.setdefault(name, field)
    return columns


def _rows(source, condition, columns):
    """``source``'s rows of the customers ``condition`` names, as union rows: its columns, NULL for the others."""
    # A column the source lacks is a NULL of the column's type: PostgreSQL types an untyped NULL
    # as text when two halves in a row lack the column, and a later half's number would not match it.
    values = {
        name: source.columns[name][1] if name in source.columns else Cast(Value(None), output_field=field)
        for name, field in columns.items()
    }
    values["source"] = Value(source.name, output_field=CharField())
    values["timeline_customer_id"] = F(source.customer)
    lookup, value = condition
    rows = source.rows().filter(**{f"{source.customer}{lookup}": value})
    return rows.order_by().annotate(**values).values(*columns)


def _union(condition):
    columns = _columns()
    first, *others = (_rows(source, condition, columns) for source in parts.TIMELINE_SOURCES.values())
    return first.union(*others, all=True).order_by("-at", "-source", "-event_id")


def timeline_queryset(customer_id):
    """Rows (dicts of the sources' columns) of one customer's timeline, newest first."""
    return _union(("", customer_id))


def timeline_of_customers(customers):
    """Rows of the merged timelines of ``customers`` (a queryset of customer ids), newest first."""
    return _union(("__in", customers))


def timeline_entries(rows):
    """A page of union rows as the API shows them (each source ``prepare``s its rows of the page first)."""
    rows = [dict(row) for row in rows]
    for source in parts.TIMELINE_SOURCES.values():
        if source.prepare is not None:
            own = [row for row in rows if row["source"] == source.name]
            if own:
                source.prepare(own)
    return [parts.TIMELINE_SOURCES[row["source"]].entry(row) for row in rows]
