"""A list asked no filtering parameter skips building its filterset: the rows are the same without it.

``core.api.filters.FilterBackend`` returns the queryset as it is when the query string holds nothing
but paging parameters. Here every resource the router serves is filtered both ways, by the backend
and by django-filter's own ``filter_queryset`` (the filterset built, bound and applied), for each
role, and the SQL and the rows must be the same; a filtering parameter must still filter.
"""

import pytest
from django_filters.rest_framework import DjangoFilterBackend
from rest_framework.exceptions import PermissionDenied
from rest_framework.test import APIRequestFactory, force_authenticate

from core.api.filters import FilterBackend
from crm_site.api_router import router
from tests.factories import CustomerFactory, InteractionFactory, OpportunityFactory, TaskFactory

LISTS = [(prefix, viewset) for prefix, viewset, _basename in router.registry if hasattr(viewset, "list")]

UNASKED = [{}, {"page": "2"}, {"page_size": "10"}, {"page": "1", "page_size": "5"}, {"cursor": "bm90IGEgY3Vyc29y"}]


def filtered_both_ways(viewset, user, params):
    request = APIRequestFactory().get("/api/x", params)
    force_authenticate(request, user=user)
    view = viewset()
    view.action_map = {"get": "list"}
    view.action = "list"
    view.args, view.kwargs, view.format_kwarg = (), {}, None
    view.request = view.initialize_request(request)
    try:
        view.check_permissions(view.request)  # authenticates, as the view's initial() would
    except PermissionDenied:
        return None  # the role is refused the list: nothing to filter
    queryset = view.get_queryset()
    backend = FilterBackend()
    return backend.filter_queryset(view.request, queryset, view), DjangoFilterBackend.filter_queryset(
        backend, view.request, queryset, view
    )


@pytest.fixture
def records(rep, other_rep):
    customers = [CustomerFactory(owner=rep), CustomerFactory(owner=other_rep), CustomerFactory(owner=None)]
    for customer in customers:
        InteractionFactory(customer=customer)
        OpportunityFactory(customer=customer)
        TaskFactory(customer=customer, assignee=customer.owner or rep)
    return customers


@pytest.mark.parametrize("params", UNASKED, ids=lambda params: "&".join(params) or "none")
@pytest.mark.parametrize("prefix, viewset", LISTS, ids=[prefix for prefix, _viewset in LISTS])
def test_a_list_asked_no_filter_has_the_rows_of_its_filterset(db, records, manager, rep, prefix, viewset, params):
    for user in (manager, rep):
        both = filtered_both_ways(viewset, user, params)
        if both is None:
            assert user == rep
            continue
        skipped, built = both
        assert str(skipped.query) == str(built.query)
        assert list(skipped.values_list("pk", flat=True)) == list(built.values_list("pk", flat=True))


def test_a_filtering_parameter_still_filters(db, records, manager):
    everyone, _ = filtered_both_ways(dict(LISTS)["customers"], manager, {"page": "1"})
    one, built = filtered_both_ways(dict(LISTS)["customers"], manager, {"page": "1", "search": records[0].name})
    assert str(one.query) == str(built.query)
    assert everyone.count() == 3
    assert list(one.values_list("pk", flat=True)) == [records[0].pk]
