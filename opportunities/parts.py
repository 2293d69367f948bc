"""What apps built on opportunities add to an opportunity's representation.

``opportunities`` knows none of those apps (tasks, say); they register here, from
their ``AppConfig.ready()``, the annotations an opportunity is read with: an
expression over the opportunity's rows (``OuterRef("pk")``) per name. The
serializer lists the fields they feed (the API contract); a field whose
annotations are missing reads as null.
"""

from functools import cache

from core.api.fastsql import AnnotatedRow

ANNOTATIONS = {}


def add_annotation(name, build):
    """Annotate every opportunity the API reads with ``build()`` (a fresh expression) as ``name``."""
    ANNOTATIONS[name] = build
    detail_reader.cache_clear()


def annotate(queryset):
    if not ANNOTATIONS:
        return queryset
    return queryset.annotate(**{name: build() for name, build in ANNOTATIONS.items()})


@cache
def detail_reader():
    """The opportunity's row with every registered annotation, in one query (``core.api.fastsql``)."""
    return AnnotatedRow(annotate, tuple(ANNOTATIONS))


# The pipeline board's further marks on a card (``opportunities/board.py``): name -> build(now).
CARD_ANNOTATIONS = {}


def add_card_annotation(name, build):
    """Annotate every card of the pipeline board with ``build(now)`` as ``name`` (such as ``is_stale``).

    Only the board's cards are read with these (a few per column), never the API's lists.
    """
    CARD_ANNOTATIONS[name] = build


def annotate_cards(queryset, now):
    """``queryset`` with the API's annotations (:func:`annotate`) and the board's own."""
    queryset = annotate(queryset)
    if not CARD_ANNOTATIONS:
        return queryset
    return queryset.annotate(**{name: build(now) for name, build in CARD_ANNOTATIONS.items()})


# What follows a deal given to another customer (its tasks, say): each ``follow(opportunity)``, after its save.
MOVED = []


def on_customer_change(follow):
    """Call ``follow(opportunity)`` after each save that gives an opportunity another customer, in its transaction."""
    if follow not in MOVED:
        MOVED.append(follow)
