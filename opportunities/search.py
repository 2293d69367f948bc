"""Opportunity search: the admin's search box matches the title (and, through the customer's own
search, the customer's name and company), case-insensitively.

The result is exactly Django's ``icontains`` on the title; the indexes that make it fast (a
trigram GIN index on PostgreSQL, an FTS5 table on SQLite, made by migration
``opportunities.0010_search_indexes``) are described in ``core/search.py``.
"""

from core.search import TextSearch

SEARCH = TextSearch(table="opportunities_opportunity", columns={"title": "title"}, index_prefix="opportunity")
