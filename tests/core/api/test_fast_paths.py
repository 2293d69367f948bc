"""The hot-path shortcuts answer exactly what the plain DRF/ORM code would."""

from datetime import UTC, date, datetime, timedelta
from decimal import Decimal
from functools import partial

import pytest
from django.contrib.auth.models import Group
from django.utils import timezone
from django.utils.module_loading import import_string
from django.utils.translation import gettext_lazy
from knox.auth import TokenAuthentication
from knox.models import get_token_model
from rest_framework.exceptions import AuthenticationFailed, ErrorDetail
from rest_framework.renderers import JSONRenderer
from rest_framework.request import Request
from rest_framework.test import APIClient

from core.api.authentication import BearerTokenAuthentication
from core.api.fastsql import reader
from core.api.middleware import bearer_api_request
from core.api.renderers import EnvelopeJSONRenderer
from customers.models import Customer
from interactions.models import Interaction
from opportunities.models import Opportunity
from tasks.models import Task
from tests.factories import (
    CompanyFactory,
    CustomerFactory,
    InteractionFactory,
    ManagerFactory,
    OpportunityFactory,
    TaskFactory,
    UserFactory,
)


@pytest.mark.parametrize("model", [Customer, Interaction, Opportunity, Task])
def test_row_reader_builds_the_instance_the_orm_builds(db, model):
    OpportunityFactory(stage=Opportunity.Stage.CLOSED)
    InteractionFactory()
    TaskFactory(due_at=timezone.now(), due_is_date_only=True)
    expected = model.objects.order_by("pk").first()
    got = reader(model).get(expected.pk)

    for field in model._meta.concrete_fields:
        assert getattr(got, field.attname) == getattr(expected, field.attname), field.name
    assert got._state.adding is False
    assert reader(model).get(10**9) is None


def test_opportunity_read_by_primary_key_still_records_its_stage_changes(api, db):
    opportunity = OpportunityFactory()
    response = api.put(f"/api/opportunities/{opportunity.pk}", {"stage": "proposal"}, format="json")

    assert response.status_code == 200
    assert list(opportunity.stage_changes.order_by("pk").values_list("from_stage", "to_stage")) == [
        (None, "lead"),
        ("lead", "proposal"),
    ]


def test_detail_ignores_list_filters(api, db):
    customer = CustomerFactory(status=Customer.Status.ACTIVE)
    response = api.get(f"/api/customers/{customer.pk}", {"status": "lead", "search": "nothing like it"})

    assert response.status_code == 200
    assert response.json()["data"]["id"] == customer.pk


@pytest.mark.parametrize("pk", ["999999", str(2**63), "9" * 40])
def test_detail_of_a_missing_or_out_of_range_id_is_a_404(api, db, pk):
    response = api.get(f"/api/customers/{pk}")

    assert response.status_code == 404
    assert response.json()["error"]["code"] == "not_found"


def test_a_revoked_token_is_refused_at_once(api, db, token):
    assert api.get("/api/customers").status_code == 200
    assert api.post("/api/auth/logout").status_code == 200

    response = api.get("/api/customers")
    assert response.status_code == 401
    assert response.json()["error"]["code"] == "authentication_failed"


def test_an_expired_token_is_refused_and_deleted(db, user):
    instance, raw = get_token_model().objects.create(user)
    get_token_model().objects.filter(pk=instance.pk).update(expiry=timezone.now() - timedelta(seconds=1))
    client = APIClient()
    client.credentials(HTTP_AUTHORIZATION=f"Bearer {raw}")

    assert client.get("/api/customers").status_code == 401
    assert not get_token_model().objects.filter(pk=instance.pk).exists()


def test_an_inactive_users_token_is_refused(api, db, user):
    user.is_active = False
    user.save()

    assert api.get("/api/customers").status_code == 401


def _outcome(authenticate, request):
    try:
        user, auth_token = authenticate(request) or (None, None)
    except AuthenticationFailed as exc:
        return "refused", str(exc.detail)
    return user, auth_token and auth_token.pk


@pytest.mark.parametrize(
    "header",
    [
        None,
        "",
        "Bearer",
        "bearer",
        "Bearer a b",
        "Token abc",
        "Basic dTpw",
        "Bearer\xa0abc",
        "Bearer nope",
        "Bearer {valid}",
        "  BEARER  {valid}  ",
        "Bearer {valid} x",
        "Bearer {valid}\xff",
    ],
)
def test_bearer_header_is_read_as_knox_reads_it(db, rf, token, user, header):
    extra = {} if header is None else {"HTTP_AUTHORIZATION": header.format(valid=token)}
    request = Request(rf.get("/api/customers", **extra))
    ours = BearerTokenAuthentication()

    # knox's own authenticate (reading request.headers), with the same token lookup.
    assert _outcome(ours.authenticate, request) == _outcome(partial(TokenAuthentication.authenticate, ours), request)
    assert bearer_api_request(request._request) is (
        header is not None and _outcome(ours.authenticate, request)[0] is not None
    )


@pytest.mark.parametrize("header", ["Bearer ", "Bearer \xff\xfe", "Bearer abc def", "Bearer " + "x" * 300])
def test_malformed_tokens_are_a_401(db, header):
    client = APIClient()
    client.credentials(HTTP_AUTHORIZATION=header)

    assert client.get("/api/customers").status_code == 401


@pytest.mark.parametrize(
    "payload",
    [
        {"id": 1, "name": "王伟", "value": Decimal("1234.50"), "zero": Decimal("0.00"), "none": None},
        [{"a": "line\u2028separator\u2029"}, {"lazy": gettext_lazy("Customer deleted.")}],
        {"fields": {"name": [ErrorDetail("This field is required.", code="required")]}},
        {"when": datetime(2026, 1, 2, 3, 4, 5, 678901, tzinfo=UTC), "day": date(2026, 1, 2), "big": 2**70},
        {"nested": [[1, 2.5, True, False], {"x": {"y": []}}]},
    ],
)
def test_json_renderer_writes_the_bytes_drf_writes(payload):
    ours = EnvelopeJSONRenderer().render(payload)
    drf = JSONRenderer().render({"success": True, "data": payload} if not isinstance(payload, dict) else payload)
    if isinstance(payload, dict):
        drf = JSONRenderer().render({"success": True, "data": payload})
    assert ours == drf.replace(b"\\u2028", b"\\u2028")


@pytest.mark.parametrize("query", ["", "?other=1", "?format=api"])
@pytest.mark.parametrize("accept", ["", "*/*", "application/json", "application/json; indent=2", "text/html"])
def test_negotiation_shortcut_picks_what_drf_would(api, db, accept, query):
    customer = CustomerFactory()
    headers = {"HTTP_ACCEPT": accept} if accept else {}
    response = api.get(f"/api/customers/{customer.pk}{query}", **headers)

    if query == "?format=api" and accept.startswith("application/json"):
        # DRF's answer: the format asked for is not one the client accepts.
        assert response.status_code == 406
        return
    assert response.status_code == 200
    html = accept == "text/html" or query == "?format=api"
    expected = "text/html; charset=utf-8" if html else "application/json"
    assert response["Content-Type"] == expected
    if accept.endswith("indent=2") and not html:
        assert response.content.startswith(b'{\n  "success"')


@pytest.mark.parametrize(
    "path, factory",
    [
        ("/api/customers", lambda owner: CustomerFactory(owner=owner, company="星辰科技")),
        ("/api/interactions", lambda owner: InteractionFactory(customer=CustomerFactory(owner=owner))),
        ("/api/opportunities", lambda owner: OpportunityFactory(customer=CustomerFactory(owner=owner))),
        ("/api/tasks", lambda owner: TaskFactory(customer=CustomerFactory(owner=owner), due_at=timezone.now())),
    ],
)
def test_detail_reader_answers_what_the_queryset_path_answers(db, path, factory):
    """A manager's detail is read by the viewset's detail_reader; the owning rep's through the scoped queryset."""
    rep = UserFactory(username="rep")
    rep.groups.add(Group.objects.get(name="Sales rep"))
    record = factory(rep)
    if path == "/api/customers":
        InteractionFactory(customer=record)
        OpportunityFactory(customer=record, value=Decimal("120.50"))
    if path == "/api/opportunities":
        # Its next task, annotated by the reader and by the queryset alike.
        TaskFactory(customer=record.customer, opportunity=record, due_at=timezone.now(), title="下一步")
    answers = []
    for user in (rep, ManagerFactory()):
        client = APIClient()
        client.force_authenticate(user)
        answers.append(client.get(f"{path}/{record.pk}"))

    by_queryset, by_reader = answers
    assert by_queryset.status_code == by_reader.status_code == 200
    assert by_queryset.content == by_reader.content
    assert by_queryset["ETag"] == by_reader["ETag"]
    if path == "/api/opportunities":
        assert by_reader.json()["data"]["next_task"]["title"] == "下一步"


def _rep(name):
    rep = UserFactory(username=name)
    rep.groups.add(Group.objects.get(name="Sales rep"))
    return rep


def _records_around(path, rep, other):
    """Records of the resource at ``path``: some ``rep`` sees (owned, or along a further path), some not."""
    mine, theirs = CustomerFactory(owner=rep, company="星辰科技"), CustomerFactory(owner=other)
    if path == "/api/customers":
        InteractionFactory(customer=mine)
        OpportunityFactory(customer=mine, value=Decimal("120.50"))
        return [mine, theirs]
    if path == "/api/companies":
        seen_through_people = CompanyFactory(owner=other)
        CustomerFactory(owner=rep, company_id=seen_through_people.pk)
        return [mine.company, CompanyFactory(owner=rep), seen_through_people, CompanyFactory(owner=other)]
    if path == "/api/interactions":
        return [InteractionFactory(customer=mine), InteractionFactory(customer=theirs)]
    if path == "/api/opportunities":
        opportunity = OpportunityFactory(customer=mine)
        TaskFactory(customer=mine, opportunity=opportunity, due_at=timezone.now(), title="下一步")
        return [opportunity, OpportunityFactory(customer=theirs)]
    # Tasks: on the rep's customer, assigned to the rep on another's customer, and another's alone.
    return [
        TaskFactory(customer=mine, due_at=timezone.now()),
        TaskFactory(customer=theirs, assignee=rep, due_at=timezone.now(), due_is_date_only=True),
        TaskFactory(customer=theirs),
    ]


@pytest.mark.parametrize(
    "path, viewset",
    [
        ("/api/customers", "customers.views.CustomerViewSet"),
        ("/api/companies", "companies.views.CompanyViewSet"),
        ("/api/interactions", "interactions.views.InteractionViewSet"),
        ("/api/opportunities", "opportunities.views.OpportunityViewSet"),
        ("/api/tasks", "tasks.views.TaskViewSet"),
    ],
)
def test_a_reps_detail_by_the_scoped_reader_answers_what_the_queryset_answers(db, monkeypatch, path, viewset):
    """A rep's detail read by the viewset's reader, scoped, equals the scoped queryset's: the same
    answer byte for byte and ETag for what they see, the same 404 for what they do not."""
    rep, other = _rep("rep-a"), _rep("rep-b")
    records = _records_around(path, rep, other)
    client = APIClient()
    client.force_authenticate(rep)
    ids = [record.pk for record in records] + [10**9, "x"]

    by_reader = [client.get(f"{path}/{pk}") for pk in ids]
    monkeypatch.setattr(import_string(viewset), "detail_reader_for_reps", False)
    by_queryset = [client.get(f"{path}/{pk}") for pk in ids]

    for pk, mine, theirs in zip(ids, by_reader, by_queryset, strict=True):
        assert (pk, mine.status_code) == (pk, theirs.status_code)
        assert mine.content == theirs.content
        assert mine.get("ETag") == theirs.get("ETag")
    statuses = [response.status_code for response in by_reader]
    assert 200 in statuses and statuses.count(404) >= 3, statuses


def test_a_reps_detail_takes_the_reader_not_the_queryset(db, monkeypatch):
    rep = _rep("rep-a")
    customer = CustomerFactory(owner=rep)
    client = APIClient()
    client.force_authenticate(rep)

    def no_queryset(self):
        raise AssertionError("the queryset was asked")

    monkeypatch.setattr("customers.views.CustomerViewSet.get_queryset", no_queryset)
    response = client.get(f"/api/customers/{customer.pk}")
    assert response.status_code == 200
    assert response.json()["data"]["id"] == customer.pk
