"""Task search: the admin's search box matches the title and notes (and, through the customer's own
search, the customer's name and company), case-insensitively.

The result is exactly Django's ``icontains`` on the title and notes; the indexes that make it fast (trigram
GIN indexes on PostgreSQL, an FTS5 table on SQLite, made by migration ``tasks.0004_search_indexes``) are
described in ``core/search.py``.
"""

from core.search import TextSearch

SEARCH = TextSearch(table="tasks_task", columns={"title": "title", "notes": "notes"}, index_prefix="task")
