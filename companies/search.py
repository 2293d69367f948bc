"""Company search: ``?search=`` matches name or domain, case-insensitively (see ``core/search.py``).

Indexes: trigram GIN on PostgreSQL, FTS5 on SQLite, created by migration
``companies.0002_search_indexes``.
"""

from core.search import TextSearch

SEARCH = TextSearch(
    table="companies_company",
    columns={"name": "name", "domain": "domain"},
    index_prefix="company",
    phone_field="phone_e164",
)
