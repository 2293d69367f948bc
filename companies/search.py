"""Company search: ``?search=`` matches name or domain, case-insensitively (see ``core/search.py``).

Indexes: trigram GIN on PostgreSQL, FTS5 on SQLite, created by migration
``companies.0002_search_indexes``. A term that reads as a phone number also finds the
company with that number, however it is written (``core.phones.search_q``).
"""

from core.search import TextSearch

SEARCH = TextSearch(
    table="companies_company",
    columns={"name": "name", "domain": "domain"},
    index_prefix="company",
    phone_field="phone_e164",
    phone_national_field="phone_national",
)
