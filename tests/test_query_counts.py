"""The number of queries per request does not grow with rows or related rows."""

import pytest

from tests.factories import CustomerFactory, InteractionFactory, OpportunityFactory

# Token lookup (with its user), COUNT for the page, the page itself. Pages are
# smaller than the results, so the count cannot be skipped.
LIST_QUERIES = 3
PAGE = {"page_size": 1}
DETAIL_QUERIES = 2


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


@pytest.mark.parametrize("resource", ["customers", "interactions", "opportunities"])
def test_detail_queries_stay_constant(api, django_assert_num_queries, resource):
    populate(3, 5)
    path = {
        "customers": lambda: f"/api/customers/{CustomerFactory().pk}",
        "interactions": lambda: f"/api/interactions/{InteractionFactory().pk}",
        "opportunities": lambda: f"/api/opportunities/{OpportunityFactory().pk}",
    }[resource]()
    with django_assert_num_queries(DETAIL_QUERIES):
        assert api.get(path).status_code == 200
