"""Interaction search: the admin's search box matches the notes (and, through the customer's own
search, the customer's name and company), case-insensitively.

The result is exactly Django's ``icontains`` on the notes; the indexes that make it fast (a
trigram GIN index on PostgreSQL, an FTS5 table on SQLite, made by migration
``interactions.0007_search_indexes``) are described in ``core/search.py``.
"""

from core.search import TextSearch

SEARCH = TextSearch(table="interactions_interaction", columns={"notes": "notes"}, index_prefix="interaction")
