"""What the apps whose records belong to a company add to it.

``companies`` imports no other domain app: ``customers`` (a customer belongs to
at most one company), ``opportunities`` and ``interactions`` build on it and
register their part here from their ``AppConfig.ready()``:

- a figure: an expression over the company's rows (``OuterRef("pk")``), which
  ``Company.objects.with_summary()`` annotates (people, open pipeline, last
  interaction);
- the timeline: the rows of the timelines of the company's people, merged
  (registered by ``customers``, which owns the customer timeline);
- unlinkers: what "deleting a company" does to the records that point at it,
  returning how many were unlinked (its people keep existing, without a company).
"""

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

FIGURES = {}
UNLINKERS = {}
# Called with a company whose name changed (its people's company text follows it).
RENAMED = []


@dataclass(frozen=True)
class Timeline:
    rows: Callable[[int], Any]  # company id -> the union queryset of its people's timelines, newest first
    entries: Callable[[list], list]  # a page of rows as the API shows them


TIMELINE = []


def add_figure(name, build):
    FIGURES[name] = build


def add_unlinker(name, unlink):
    UNLINKERS[name] = unlink


def on_rename(follow):
    if follow not in RENAMED:
        RENAMED.append(follow)


def set_timeline(timeline):
    TIMELINE[:] = [timeline]


# Name (the count's key in a merge's answer) -> move(from_ids, survivor) returning the number of rows moved.
MOVERS = {}


def add_mover(name, move):
    """How an app's rows follow their company when it is merged into another (``merge_companies``).

    ``move(from_ids, survivor)`` points the rows of the companies ``from_ids`` at
    ``survivor``, in bulk and with their history (``core.history.update_with_history``).
    """
    MOVERS[name] = move


# Name -> hint(record, request): a further key of the API's answer to creating a company
# (``duplicates`` adds the records the new one probably duplicates).
CREATE_HINTS = {}


def add_create_hint(name, hint):
    CREATE_HINTS[name] = hint
