"""Customer search: ``?search=`` matches name, company or email, case-insensitively.

The result is always exactly Django's ``icontains`` on those three columns
(``tests/customers/test_search.py`` holds the two side by side); the indexes
that make it fast (trigram GIN on PostgreSQL, FTS5 on SQLite, created by
migration ``customers.0004_search_indexes``) are described in ``core/search.py``.
The company column is the name of the customer's company, kept beside the link
(``Customer.company_name``). A term that reads as a phone number also finds the
customer with that number, however it is written ("138 0013 8000",
"+86 138-0013-8000", "13800138000"): ``phone_e164`` equals its E.164 form, or,
written without "+", ``phone_national`` its digits (``core.phones.search_q``).
"""

from core.search import TRIGRAM_MIN_LENGTH, TextSearch

SEARCH = TextSearch(
    table="customers_customer",
    columns={"name": "name", "company_name": "company", "email": "email"},
    index_prefix="customer",
    phone_field="phone_e164",
    phone_national_field="phone_national",
)
FTS_TABLE = SEARCH.fts_table
SEARCH_COLUMNS = tuple(SEARCH.columns.values())
SQLITE_TRIGGERS = SEARCH.sqlite_triggers
icontains_q = SEARCH.icontains_q
search_customers = SEARCH.filter
postgres_index_statements = SEARCH.postgres_index_statements
postgres_drop_statements = SEARCH.postgres_drop_statements
ensure_sqlite_search_index = SEARCH.ensure_sqlite_index
drop_sqlite_search_index = SEARCH.drop_sqlite_index

__all__ = [
    "FTS_TABLE",
    "SEARCH_COLUMNS",
    "SQLITE_TRIGGERS",
    "TRIGRAM_MIN_LENGTH",
    "drop_sqlite_search_index",
    "ensure_sqlite_search_index",
    "icontains_q",
    "postgres_drop_statements",
    "postgres_index_statements",
    "search_customers",
]
