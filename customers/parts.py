"""What the apps whose records belong to a customer add to it.

``customers`` knows none of those apps: interactions, opportunities and the apps
to come build on ``customers`` and register their part here from their
``AppConfig.ready()``, so that the dependency runs one way. A part is:

- a figure: an expression over the customer's rows (``OuterRef("pk")``), which
  ``Customer.objects.with_summary()`` annotates; those ``in_summary`` are the
  summary every customer is read with, the others are annotated on request
  (the admin's columns);
- a timeline source: the rows it adds to the customer's timeline (one ``UNION
  ALL`` of every source, see ``customers.timeline``) and how one of them reads;
- a deleter: how its rows go when their customer is deleted, in bulk and with
  their history (``customers.services.delete_customer``);
- a mover: how its rows follow their customer merged into another;
- a create hint: what the API's answer to creating a customer adds.

Deleters, movers and create hints are ``core.parts.Registry``s, as the company's are.

The admin's customer page takes inlines and list filters the same way, from the
apps' ``admin.py`` (``customers.admin.customer_inline``, ``customer_list_filter``).
"""

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from core.parts import Registry


@dataclass(frozen=True)
class Figure:
    build: Callable[[], Any]  # an expression over the rows of OuterRef("pk") (built once: core.parts.built_once)
    in_summary: bool


@dataclass(frozen=True)
class TimelineSource:
    """Rows of a customer's timeline from one table.

    ``rows()`` is the table's queryset, ``customer`` the lookup from one of its
    rows to the customer's id (``customer_id``); ``columns`` maps each column the
    source fills (names unlike any model field, so that each half of the union
    selects exactly the timeline's columns) to its output field and expression,
    ``at`` and ``event_id`` included; ``entry(row)`` is one row as the API shows it.
    ``prepare(rows)``, if given, is called with a page's rows of the source before
    their ``entry()``, to add to them what one row cannot tell alone, in one query
    for the page (a customer change's fields, from the history entry before it).
    """

    name: str
    rows: Callable[[], Any]
    customer: str
    columns: dict
    entry: Callable[[dict], dict]
    prepare: Callable[[list], None] | None = None


FIGURES = {}
TIMELINE_SOURCES = {}
# Name (the count's key in a deletion's report) -> delete(customer) returning the number of rows deleted.
DELETERS = Registry()
# Name (the count's key in a merge's answer) -> move(from_ids, survivor) returning the number of rows moved:
# how an app's rows follow their customer when it is merged into another (``merge_customers``), in bulk
# and with their history (``core.history.update_with_history``).
MOVERS = Registry()
# Name -> hint(record, request): a further key of the API's answer to creating a customer
# (``duplicates`` adds the records the new one probably duplicates).
CREATE_HINTS = Registry()

add_deleter = DELETERS.add
add_mover = MOVERS.add
add_create_hint = CREATE_HINTS.add


def add_figure(name, build, *, in_summary=True):
    FIGURES[name] = Figure(build, in_summary)


def add_timeline_source(source):
    TIMELINE_SOURCES[source.name] = source
