"""What the apps whose records belong to a company add to it.

``companies`` imports no other domain app: ``customers`` (a customer belongs to
at most one company), ``opportunities`` and ``interactions`` build on it and
register their part here from their ``AppConfig.ready()``:

- a figure: an expression over the company's rows (``OuterRef("pk")``), which
  ``Company.objects.with_summary()`` annotates (people, open pipeline, last
  interaction), over the people a rep sees when built for one;
- the timeline: the rows of the timelines of the company's people, merged
  (registered by ``customers``, which owns the customer timeline);
- unlinkers: what "deleting a company" does to the records that point at it,
  returning how many were unlinked (its people keep existing, without a company);
- movers: what follows a company merged into another; create hints: what the API's
  answer to creating a company adds.

Figures, unlinkers, movers and create hints are ``core.parts.Registry``s, as the customer's parts are.
"""

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from core.parts import Registry

# Name -> build(viewer=None): an expression over the company's rows, annotated by ``Company.objects.with_summary()``;
# given a rep, over the people they see and those people's records (``customers.company_parts.of_people_seen_by``).
FIGURES = Registry()
# Name (the count's key in the answer) -> unlink(company) returning how many records were unlinked.
UNLINKERS = Registry()
# Name (the count's key in a merge's answer) -> move(from_ids, survivor) returning the number of rows moved:
# how an app's rows follow their company when it is merged into another (``merge_companies``), pointed at
# ``survivor`` in bulk and with their history (``core.history.update_with_history``).
MOVERS = Registry()
# Name -> hint(record, request): a further key of the API's answer to creating a company
# (``duplicates`` adds the records the new one probably duplicates).
CREATE_HINTS = Registry()
# Called with a company whose name changed (its people's company text follows it).
RENAMED = []

add_figure = FIGURES.add
add_unlinker = UNLINKERS.add
add_mover = MOVERS.add
add_create_hint = CREATE_HINTS.add


@dataclass(frozen=True)
class Timeline:
    rows: Callable[[int, Any], Any]  # company id, user -> the union queryset of the timelines of its people
    # that the user sees, newest first
    entries: Callable[[list], list]  # a page of rows as the API shows them


TIMELINE = []


def on_rename(follow):
    if follow not in RENAMED:
        RENAMED.append(follow)


def set_timeline(timeline):
    TIMELINE[:] = [timeline]
