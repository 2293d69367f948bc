"""A customer's history, newest first: the rows every timeline source adds (``customers.parts``).

The sources' tables (interactions, opportunity stage changes, ...) are merged in
the database with one ``UNION ALL`` ordered by time, so any page of the timeline
is a plain ``LIMIT``/``OFFSET`` over it.
"""

from django.db.models import CharField, Value

from . import parts


def _columns():
    """The columns of every half of the union, in order: the source's name, then each source's own."""
    columns = {"source": CharField()}
    for source in parts.TIMELINE_SOURCES.values():
        for name, (field, _expression) in source.columns.items():
            columns.setdefault(name, field)
    return columns


def _rows(source, customer_id, columns):
    """``source``'s rows of the customer as union rows: its columns, NULL for the others."""
    values = {
        name: source.columns[name][1] if name in source.columns else Value(None, output_field=field)
        for name, field in columns.items()
    }
    values["source"] = Value(source.name, output_field=CharField())
    return source.rows(customer_id).order_by().annotate(**values).values(*columns)


def timeline_queryset(customer_id):
    """Rows (dicts of the sources' columns) of one customer's timeline, newest first."""
    columns = _columns()
    first, *others = (_rows(source, customer_id, columns) for source in parts.TIMELINE_SOURCES.values())
    return first.union(*others, all=True).order_by("-at", "-source", "-event_id")


def timeline_entry(row):
    """One union row as the API shows it."""
    return parts.TIMELINE_SOURCES[row["source"]].entry(row)
