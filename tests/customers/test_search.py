import pytest
from django.db import connection

from customers.models import Customer
from customers.search import FTS_TABLE, icontains_q, search_customers
from tests.factories import CustomerFactory

NAMES = [
    ("王伟", "上海星辰科技有限公司", "wei.wang@example.cn"),
    ("李娜", "北京华信贸易集团", "na.li@example.cn"),
    ("Alice Brooks", "Acme Robotics Inc", "alice@example.com"),
    ("ÄNNE Müller", "Zürich Café GmbH", "anne@example.de"),
    ("Bob O'Neil", 'The "Quoted" Co', None),
    ("Percent 100% Sure", "Under_score Ltd", "p_s@example.com"),
    ("Zyxwvut Unique", "Unique Holdings", "zyxwvut.unique@example.com"),
]
TERMS = [
    "星辰科技", "科技", "王", "北京华信", "acme", "ACME ROB", "alice@", "example", "ünne", "änne", "müller",
    "MÜLLER", "café", '"quoted"', "o'neil", "100%", "_score", "p_s", "zyxwvut", "Zyx", "ab", "no such thing",
    "e.c", "NEAR", "AND OR", "*", "-", "a:b",
]  # fmt: skip


@pytest.fixture
def customers(db):
    return [CustomerFactory(name=name, company=company, email=email) for name, company, email in NAMES]


def ids(queryset):
    return sorted(queryset.values_list("pk", flat=True))


@pytest.mark.parametrize("term", TERMS)
def test_search_returns_exactly_what_icontains_returns(customers, term):
    expected = ids(Customer.objects.filter(icontains_q(term)))
    assert ids(search_customers(Customer.objects.all(), term)) == expected


def test_search_through_the_api_matches_name_company_and_email(api, customers):
    for term, expected in [("星辰科", ["王伟"]), ("acme rob", ["Alice Brooks"]), ("na.li@", ["李娜"])]:
        response = api.get("/api/customers", {"search": term})
        assert response.status_code == 200
        assert [row["name"] for row in response.json()["data"]] == expected


def test_search_index_follows_updates_and_deletes(api, customers):
    alice = Customer.objects.get(name="Alice Brooks")
    assert api.put(f"/api/customers/{alice.pk}", {"name": "Alicia Renamed"}, format="json").status_code == 200

    assert ids(search_customers(Customer.objects.all(), "Alicia Ren")) == [alice.pk]
    assert ids(search_customers(Customer.objects.all(), "Alice Bro")) == []

    assert api.delete(f"/api/customers/{alice.pk}").status_code == 200
    assert ids(search_customers(Customer.objects.all(), "Alicia Ren")) == []


@pytest.mark.skipif(connection.vendor != "sqlite", reason="the FTS5 index exists on SQLite only")
def test_sqlite_search_reads_the_trigram_table_for_terms_of_three_characters(customers):
    def plan(term):
        sql, params = search_customers(Customer.objects.all(), term).query.sql_with_params()
        with connection.cursor() as cursor:
            cursor.execute(f"EXPLAIN QUERY PLAN {sql}", params)
            return " ".join(str(row[-1]) for row in cursor.fetchall())

    assert f"{FTS_TABLE} VIRTUAL TABLE" in plan("星辰科")
    assert FTS_TABLE not in plan("科技")


@pytest.mark.skipif(connection.vendor != "postgresql", reason="the trigram indexes exist on PostgreSQL only")
def test_postgres_search_uses_the_trigram_indexes(customers):
    # The filter as the API runs it (its count query has no ORDER BY; a page's
    # query may instead walk the newest-first index when most rows match).
    queryset = search_customers(Customer.objects.all(), "zyxwvut").order_by()
    sql, params = queryset.query.sql_with_params()
    with connection.cursor() as cursor:
        # On a handful of rows a scan is cheaper than any index: take it off the
        # table so that the plan shows whether the indexes match the expression.
        cursor.execute("SET LOCAL enable_seqscan = off")
        cursor.execute(f"EXPLAIN {sql}", params)
        plan = "\n".join(row[0] for row in cursor.fetchall())
    for index in ("customer_name_trgm_idx", "customer_company_trgm_idx", "customer_email_trgm_idx"):
        assert index in plan, plan


# Numbers of several countries, and numbers in names and emails, for the phone part of the search.
PHONES = [
    ("张三", "zhangsan@abc.com", "+86 138 0013 8000"),
    ("李四", "13800138000@example.cn", "+86 139 0013 9000"),
    ("王五", None, "(010) 6552 9988"),
    ("Alice 4155552671", None, "(415) 555-2671"),
    ("Bob Smith", None, "+44 20 7946 0000"),
    ("Carla", None, "+39 06 1234 5678"),
    ("Dee", None, "ext. 42"),
]
NUMBER_TERMS = [
    "13800138000", "138 0013 8000", "+86 138-0013-8000", "+8613800138000", "(010) 6552-9988", "010 6552 9988",
    "1065529988", "415 555 2671", "+1 415 555 2671", "4155552671", "020 7946 0000", "2079460000", "06 1234 5678",
    "612345678", "0612345678", "+44 2079460000", "13900139000", "123456", "4 2",
]  # fmt: skip


def expected_by_number(term):
    """The customers the phone part of the search must add, by its specification (core.phones.search_q)."""
    from core.phones import MIN_SEARCH_DIGITS, e164, national_number

    digits = "".join(ch for ch in term if ch.isdigit())
    # As typed, or less a trunk 0.
    nationals = {digits, digits[1:]} if digits.startswith("0") else {digits}
    if len(digits) < MIN_SEARCH_DIGITS or not all(ch.isdigit() or ch in " ()-.+/" for ch in term):
        return set()
    number, found = e164(term), set()
    for customer in Customer.objects.all():
        if number is not None and customer.phone_e164 == number:
            found.add(customer.pk)
        stored = national_number(e164(customer.phone))
        if not term.startswith("+") and stored is not None and stored in nationals:
            found.add(customer.pk)
    return found


@pytest.mark.parametrize("region", ["US", "CN"])
@pytest.mark.parametrize("term", NUMBER_TERMS)
def test_search_by_number_adds_exactly_the_customers_with_that_number(db, settings, region, term):
    settings.CRM_PHONE_REGION = region
    for name, email, phone in PHONES:
        CustomerFactory(name=name, email=email, phone=phone)

    expected = set(ids(Customer.objects.filter(icontains_q(term)))) | expected_by_number(term)
    assert set(ids(search_customers(Customer.objects.all(), term))) == expected


def _plan(queryset):
    sql, params = queryset.query.sql_with_params()
    with connection.cursor() as cursor:
        if connection.vendor == "postgresql":
            cursor.execute("SET LOCAL enable_seqscan = off")
            cursor.execute(f"EXPLAIN {sql}", params)
            return "\n".join(row[0] for row in cursor.fetchall())
        # Statistics another test left (seed_demo runs ANALYZE) describe a table of a few rows, which SQLite
        # rightly scans: the plan is read as for a table of unknown size (rolled back with the test).
        cursor.execute("SELECT 1 FROM sqlite_master WHERE name = 'sqlite_stat1'")
        if cursor.fetchone():
            cursor.execute("DELETE FROM sqlite_stat1")
            cursor.execute("ANALYZE sqlite_master")
        cursor.execute(f"EXPLAIN QUERY PLAN {sql}", params)
        return "\n".join(str(row[-1]) for row in cursor.fetchall())


@pytest.mark.parametrize("term", ["138 0013 8000", "(010) 6552 9988"])
def test_search_by_national_number_reads_its_index(customers, term):
    plan = _plan(search_customers(Customer.objects.all(), term).order_by())
    assert "customer_phone_national_idx" in plan, plan
