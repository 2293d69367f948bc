"""Records read with their summary figures start from a queryset annotated once per viewset class.

``CRMModelViewSet.summary_queryset`` keeps ``queryset.with_summary()`` for the class; each request
scopes a copy of it. Here each resource read with figures is asked for its list and its detail rows,
for every role, both ways: the plain path (the queryset scoped, then annotated anew) and the one
annotated once, and the SQL and the rows must be the same, request after request.
"""

import pytest
from rest_framework.test import APIRequestFactory, force_authenticate

from core import access
from crm_site.api_router import router
from tests.factories import CompanyFactory, CustomerFactory, InteractionFactory, OpportunityFactory, member

WITH_FIGURES = [
    (prefix, viewset)
    for prefix, viewset, _basename in router.registry
    if getattr(viewset, "summary_defaults", None) is not None
]


def test_the_resources_with_figures_are_compared():
    assert {prefix for prefix, _viewset in WITH_FIGURES} >= {"customers", "companies"}


def view_for(viewset, user, action):
    request = APIRequestFactory().get("/api/x")
    force_authenticate(request, user=user)
    view = viewset()
    view.action_map = {"get": action}
    view.args, view.kwargs, view.format_kwarg = (), {}, None
    view.request = view.initialize_request(request)
    view.action = action
    return view


def plain(view):
    """The queryset as the viewset built it before: the class's queryset scoped, then annotated (for the user,
    where the figures are those of what the user sees)."""
    queryset, user = access.scope(view.queryset.all(), view.request.user), view.request.user
    return view.detail_reader.annotated(queryset, None if access.sees_everything(user) else user)


@pytest.fixture
def users(db):
    return [
        member("boss", "Sales manager"),
        member("rep", "Sales rep"),
        member("other", "Sales rep"),
        member("reader", "Read-only"),
        member("nobody"),
    ]


@pytest.fixture
def records(users):
    _manager, rep, other, *_ = users
    for owner in (rep, other, None):
        company = CompanyFactory(owner=owner)
        customer = CustomerFactory(owner=owner, company=company)
        InteractionFactory(customer=customer)
        OpportunityFactory(customer=customer, company=company)
    CustomerFactory(owner=rep)  # without figures


def rows(queryset):
    return [(record.pk, *sorted(vars(record).items())) for record in queryset.order_by("pk")]


@pytest.mark.parametrize("action", ["list", "retrieve"])
@pytest.mark.parametrize("prefix, viewset", WITH_FIGURES, ids=[prefix for prefix, _viewset in WITH_FIGURES])
def test_annotated_once_is_annotated_anew(records, users, prefix, viewset, action):
    seen = set()
    for _round in range(2):  # the second round reads from the annotated queryset kept for the class
        for user in users:
            view = view_for(viewset, user, action)
            ours, theirs = view.get_queryset(), plain(view)
            assert ours.query.is_empty() == theirs.query.is_empty(), user.username
            if not ours.query.is_empty():  # (a user without a role sees nothing: no SQL to compare)
                assert str(ours.query) == str(theirs.query), user.username
            found = [(pk, [item for item in items if item[0] != "_state"]) for pk, *items in rows(ours)]
            expected = [(pk, [item for item in items if item[0] != "_state"]) for pk, *items in rows(theirs)]
            assert found == expected, user.username
            seen.update(pk for pk, _items in found)
    assert seen, "some role sees records"
    assert viewset.__dict__.get("_summary_queryset") is not None


def test_a_request_does_not_change_the_annotated_queryset(records, users):
    viewset = dict(WITH_FIGURES)["customers"]
    kept = viewset.summary_queryset()
    before = str(kept.query)
    view = view_for(viewset, users[1], "list")
    list(view.get_queryset().filter(name__startswith="x").order_by("-name")[:3])
    assert str(viewset.summary_queryset().query) == before
    assert viewset.summary_queryset() is kept
    assert kept._result_cache is None
