"""Counting a list without counting a million rows: the one rule of the API's lists and the admin's."""

# Lists count exactly up to this many rows; above it they say "more than" the cap.
COUNT_CAP = 10_000


def capped_count(queryset, cap=COUNT_CAP):
    """``(count, capped)``: the rows of ``queryset`` up to ``cap``, and whether there are more.

    Counts ``SELECT id ... LIMIT cap + 1``: at most ``cap + 1`` index entries are read,
    and annotations (a customer's summary figures) are not computed just to be counted.
    """
    counted = queryset.order_by().values("pk")[: cap + 1].count()
    return min(counted, cap), counted > cap
