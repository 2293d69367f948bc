"""Queries per request stay the same as rows and related rows grow."""

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext

from tests.factories import CompanyFactory, CustomerFactory, InteractionFactory, OpportunityFactory


def grow(size):
    """``size`` customers, each with ``size`` interactions and opportunities."""
    for _ in range(size):
        customer = CustomerFactory()
        InteractionFactory.create_batch(size, customer=customer)
        OpportunityFactory.create_batch(size, customer=customer)
    return customer


def queries(api, path, params=None):
    with CaptureQueriesContext(connection) as captured:
        response = api.get(path, params or {})
    assert response.status_code == 200, response.content
    return len(captured)


LISTS = ["/api/customers", "/api/interactions", "/api/opportunities"]


@pytest.mark.parametrize("path", LISTS)
@pytest.mark.parametrize(
    "params",
    [{"page_size": 2}, {"page_size": 2, "page": 2}, {"page_size": 2, "search": "Customer"}],
    ids=["first-page", "second-page", "filtered"],
)
def test_list_queries_do_not_grow_with_rows(api, db, path, params):
    grow(3)
    small = queries(api, path, params)
    grow(6)
    # Token, page, capped count: nothing per row.
    assert queries(api, path, params) == small == 3


@pytest.mark.parametrize("path", LISTS)
def test_cursor_page_queries_do_not_grow_with_rows(api, db, path):
    grow(3)
    cursor = api.get(path, {"page_size": 2}).json()["meta"]["next_cursor"]
    small = queries(api, path, {"page_size": 2, "cursor": cursor})
    grow(6)
    cursor = api.get(path, {"page_size": 2}).json()["meta"]["next_cursor"]
    assert queries(api, path, {"page_size": 2, "cursor": cursor}) == small == 3


@pytest.mark.parametrize("path", LISTS)
def test_a_result_that_fits_on_one_page_is_not_counted_again(api, db, path):
    grow(2)
    assert queries(api, path, {"page_size": 500}) == 2


def test_interactions_by_customer_queries_do_not_grow(api, db):
    customer = grow(3)
    small = queries(api, "/api/interactions", {"customer_id": customer.pk, "page_size": 2})
    customer = grow(8)
    assert queries(api, "/api/interactions", {"customer_id": customer.pk, "page_size": 2}) == small


@pytest.mark.parametrize("resource", ["customers", "interactions", "opportunities"])
def test_detail_is_two_queries_however_many_related_rows(api, db, resource):
    customer = grow(2)
    ids = {
        "customers": customer.pk,
        "interactions": customer.interactions.first().pk,
        "opportunities": customer.opportunities.first().pk,
    }
    small = queries(api, f"/api/{resource}/{ids[resource]}")
    customer = grow(7)
    ids = {
        "customers": customer.pk,
        "interactions": customer.interactions.first().pk,
        "opportunities": customer.opportunities.first().pk,
    }
    # The token and the row; no count, no filter set, no related rows.
    assert queries(api, f"/api/{resource}/{ids[resource]}") == small == 2


# Exact counts, filters and ordering included.
# Token lookup (with its user), COUNT for the page, the page itself. Pages are
# smaller than the results, so the count cannot be skipped.
LIST_QUERIES = 3
PAGE = {"page_size": 1}


def populate(customers, children_each):
    for customer in CustomerFactory.create_batch(customers):
        InteractionFactory.create_batch(children_each, customer=customer)
        OpportunityFactory.create_batch(children_each, customer=customer)


@pytest.mark.parametrize(
    "path",
    [
        "/api/customers",
        "/api/customers?search=Customer&status=active&ordering=name",
        "/api/interactions",
        "/api/interactions?interaction_type=call&ordering=-created_at",
        "/api/opportunities",
        "/api/opportunities?stage=lead&min_value=1&ordering=-value",
    ],
)
def test_list_queries_stay_constant_as_data_grows(api, django_assert_num_queries, path):
    populate(2, 1)
    with django_assert_num_queries(LIST_QUERIES):
        small = api.get(path, PAGE)
    populate(20, 4)
    with django_assert_num_queries(LIST_QUERIES):
        large = api.get(path, PAGE)
    assert small.status_code == large.status_code == 200
    assert large.json()["meta"]["count"] > small.json()["meta"]["count"]


@pytest.mark.parametrize("path", ["/api/customers", "/api/companies", "/api/opportunities"])
@pytest.mark.parametrize("params", [{}, {"tag": ["a", "b"]}, {"tag_any": "a,c"}], ids=["plain", "tag", "tag-any"])
def test_tagged_list_queries_do_not_grow_with_rows_or_tags(api, db, path, params):
    """Tags are read from the row (no prefetch), and the tag filters are subqueries: nothing per row or tag."""

    def add(count, names):
        for _ in range(count):
            for record in (CustomerFactory(), CompanyFactory(), OpportunityFactory()):
                record.tags = names
                record.save()

    add(3, ["a", "b"])
    small = queries(api, path, {"page_size": 2, **params})
    add(6, ["a", "b", "c", "d"])
    assert queries(api, path, {"page_size": 2, **params}) == small == 3


def test_a_write_holds_the_parents_it_names_in_one_query(api, db):
    """A write holds every parent its body names in one statement on PostgreSQL (``CRMModelViewSet.hold_parents``,
    a deal's customer and company, a task's customer and deal; a batch's for all its items), and none on SQLite,
    whose writers queue; a write naming none holds none."""
    customer = CustomerFactory(company=CompanyFactory())
    deal = OpportunityFactory(customer=customer)
    writes = [
        ("post", "/api/opportunities", {"customer_id": customer.pk, "company_id": CompanyFactory().pk, "title": "D"}),
        ("patch", f"/api/opportunities/{deal.pk}", {"customer_id": customer.pk}),
        ("post", "/api/tasks", {"customer_id": customer.pk, "opportunity_id": deal.pk, "title": "Call"}),
        ("post", "/api/customers", {"name": "Ann", "company": "Acme"}),
        ("post", "/api/interactions/batch", {"create": [{"customer_id": customer.pk, "interaction_type": "call"}] * 3}),
        ("post", "/api/customers", {"name": "Bob"}),
        ("patch", f"/api/opportunities/{deal.pk}", {"title": "Renamed"}),
    ]
    held = []
    for method, path, body in writes:
        with CaptureQueriesContext(connection) as captured:
            response = getattr(api, method)(path, body, format="json")
        assert response.status_code < 300, response.json()
        held.append(sum("FOR KEY SHARE" in query["sql"] for query in captured))

    assert held == ([1] * 5 + [0] * 2 if connection.vendor == "postgresql" else [0] * 7)
