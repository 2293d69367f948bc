"""A customer's create is validated before its write transaction begins (``validate_before_write``):
the answers are those of validating inside it, case by case (the twin test), and the races it opens
are settled as before (``tests/live/test_api_races.py``)."""

import json

import pytest
from django.db import transaction
from rest_framework.test import APIClient

from companies.models import Company
from core.models import CustomField
from customers.models import Customer
from customers.views import CustomerViewSet
from tests.factories import CompanyFactory, CustomerFactory

pytestmark = pytest.mark.django_db

# Answer headers that name the request, the record's id and time or the rate limit's count, not the outcome:
# compared by name only.
VARYING_HEADERS = {"X-Request-ID", "ETag", "Location", "RateLimit"}
VARYING_FIELDS = {"id", "created_at", "updated_at"}


@pytest.fixture
def world(user, rep):
    CustomField.objects.create(model="customers", key="region", label="Region")
    CustomField.objects.create(
        model="customers", key="tier", label="Tier", field_type=CustomField.Type.CHOICE, choices=["gold", "silver"]
    )
    CustomField.objects.create(model="customers", key="seats", label="Seats", field_type=CustomField.Type.NUMBER)
    CustomerFactory(name="Taken", email="taken@example.com", external_id="EXT-1")
    return {
        "company": CompanyFactory(name="Acme", owner=user),
        "reps_company": CompanyFactory(name="Rep Co", owner=rep),
        "others_company": CompanyFactory(name="Hidden Co", owner=user),
        "rep": rep,
        "manager": user,
    }


def client_of(user):
    from knox.models import get_token_model

    client = APIClient()
    client.credentials(HTTP_AUTHORIZATION=f"Bearer {get_token_model().objects.create(user)[1]}")
    return client


# (who asks, body: a dict sent as JSON, or raw bytes and their content type)
CASES = {
    "minimal": ("manager", {"name": "Ada"}),
    "every field": (
        "manager",
        {
            "name": "  Grace Hopper ",
            "company": " Acme  ",
            "email": " grace@example.com ",
            "phone": "+86 138 0013 8000",
            "status": "lead",
            "external_id": " EXT-2 ",
            "tags": ["vip", "Beta"],
            "custom_fields": {"region": "north", "tier": "gold", "seats": 12},
        },
    ),
    "a new company by name": ("manager", {"name": "Linus", "company": "Brand New Ltd"}),
    "company by id": ("manager", {"name": "Ada", "company_id": "company"}),
    "company by id and the same name": ("manager", {"name": "Ada", "company_id": "company", "company": "ACME"}),
    "company by id and another name": ("manager", {"name": "Ada", "company_id": "company", "company": "Other"}),
    "a company the rep does not see": ("rep", {"name": "Ada", "company_id": "others_company"}),
    "the rep's company": ("rep", {"name": "Ada", "company_id": "reps_company"}),
    "no such company": ("manager", {"name": "Ada", "company_id": 999999}),
    "owner named by a manager": ("manager", {"name": "Ada", "owner_id": "rep"}),
    "owner named by a rep": ("rep", {"name": "Ada", "owner_id": "manager"}),
    "no owner": ("manager", {"name": "Ada", "owner_id": None}),
    "the email taken, in other letters": ("manager", {"name": "Ada", "email": "TAKEN@example.com"}),
    "the external id taken": ("manager", {"name": "Ada", "external_id": "EXT-1"}),
    "blank name": ("manager", {"name": "   "}),
    "no name": ("manager", {"email": "x@example.com"}),
    "name of the wrong type": ("manager", {"name": 12}),
    "unknown status": ("manager", {"name": "Ada", "status": "gone"}),
    "bad email": ("manager", {"name": "Ada", "email": "not-an-email"}),
    "unknown custom field": ("manager", {"name": "Ada", "custom_fields": {"nope": 1}}),
    "custom field of the wrong type": ("manager", {"name": "Ada", "custom_fields": {"seats": "many"}}),
    "custom fields not an object": ("manager", {"name": "Ada", "custom_fields": [1]}),
    "several errors at once": ("manager", {"name": "", "email": "taken@example.com", "custom_fields": {"x": 1}}),
    "bad tags": ("manager", {"name": "Ada", "tags": ["a,b"]}),
    "a list, not an object": ("manager", [{"name": "Ada"}]),
    "malformed JSON": ("manager", (b'{"name": "Ada"', "application/json")),
    "not JSON": ("manager", (b"name=Ada", "text/plain")),
    "a form": ("manager", (b"name=Ada&email=form%40example.com", "application/x-www-form-urlencoded")),
}


def resolved(value, world):
    if isinstance(value, dict):
        return {key: resolved(item, world) for key, item in value.items()}
    if isinstance(value, str) and value in world:
        return world[value].pk
    return value


def answer(world, who, body, *, early, monkeypatch, key=None):
    """The create's answer, with what names the request or the new record's id and time left out;
    its writes are rolled back, so that the other way starts from the same data."""
    monkeypatch.setattr(CustomerViewSet, "validate_before_write", early)
    client = client_of(world[who])
    extra = {} if key is None else {"HTTP_IDEMPOTENCY_KEY": key}
    with transaction.atomic():
        if isinstance(body, tuple):
            response = client.generic("POST", "/api/customers", body[0], content_type=body[1], **extra)
        else:
            response = client.post("/api/customers", resolved(body, world), format="json", **extra)
        rows = sorted(Customer.objects.values_list("name", "email", "company_name", "owner_id", "custom_fields"))
        companies = dict(Company.objects.values_list("pk", "name"))
        transaction.set_rollback(True)
    content = json.loads(response.content)
    data = content.get("data")
    if isinstance(data, dict):
        content["data"] = {name: value for name, value in data.items() if name not in VARYING_FIELDS}
        if data.get("company_id") is not None:
            # A company created by the save has a new id each time (PostgreSQL's sequences do not roll back).
            content["data"]["company_id"] = companies[data["company_id"]]
    headers = [(name, None if name in VARYING_HEADERS else value) for name, value in response.items()]
    return response.status_code, content, headers, rows


@pytest.mark.parametrize("case", CASES)
def test_a_create_validated_before_its_transaction_answers_as_one_validated_inside(world, monkeypatch, case):
    who, body = CASES[case]
    early = answer(world, who, body, early=True, monkeypatch=monkeypatch)
    inside = answer(world, who, body, early=False, monkeypatch=monkeypatch)

    assert early == inside
    assert early[0] in (201, 400, 415)


def test_the_cases_cover_both_outcomes_and_every_way_in(world, monkeypatch):
    """The twin test means something only if its cases are created and refused, early and under the lock."""
    statuses = {case: answer(world, *CASES[case], early=True, monkeypatch=monkeypatch)[0] for case in CASES}

    assert statuses["every field"] == statuses["company by id"] == statuses["owner named by a manager"] == 201
    assert statuses["the email taken, in other letters"] == statuses["malformed JSON"] == 400
    assert statuses["not JSON"] == 415


def test_a_replayed_key_answers_its_stored_answer_not_a_new_validation(api):
    """The body is validated before the key's claim, but a replay answers what was stored: here a 201,
    whose email the body's validation would now refuse."""
    body = {"name": "Ada", "email": "ada@example.com"}
    first = api.post("/api/customers", body, format="json", HTTP_IDEMPOTENCY_KEY="k-1")
    again = api.post("/api/customers", body, format="json", HTTP_IDEMPOTENCY_KEY="k-1")
    fresh = api.post("/api/customers", body, format="json", HTTP_IDEMPOTENCY_KEY="k-2")

    assert (first.status_code, again.status_code, fresh.status_code) == (201, 201, 400)
    assert again.content == first.content
    assert again["Idempotent-Replayed"] == "true"


def test_a_refusal_under_a_key_is_stored_and_replayed(api):
    body = (b'{"name": "Ada"', "application/json")
    first = api.generic("POST", "/api/customers", body[0], content_type=body[1], HTTP_IDEMPOTENCY_KEY="k-3")
    again = api.generic("POST", "/api/customers", body[0], content_type=body[1], HTTP_IDEMPOTENCY_KEY="k-3")

    assert first.status_code == again.status_code == 400
    assert again.content == first.content
    assert again["Idempotent-Replayed"] == "true"


@pytest.mark.parametrize("field", ["company_id", "owner_id"])
def test_a_create_naming_a_related_record_is_validated_again_under_the_lock(world, field):
    """The rows a create names by id are read as the write finds them: its validation runs again in the
    transaction, so the company (or the owner) is read twice, once early and once under the lock."""
    client = client_of(world["manager"])
    table = '"companies_company"' if field == "company_id" else '"auth_user"'

    def reads_of(body):
        reads = []

        def count(execute, sql, params, many, context):
            # (Not the hold of the company before the write, on PostgreSQL: ``CRMModelViewSet.hold_parents``.)
            if sql.startswith("SELECT") and table in sql and not sql.endswith("FOR KEY SHARE"):
                reads.append(sql)
            return execute(sql, params, many, context)

        with transaction.get_connection().execute_wrapper(count):
            assert client.post("/api/customers", body, format="json").status_code == 201
        return len(reads)

    related = world["company"] if field == "company_id" else world["rep"]
    # (The token's query joins its user: what tells the cases apart is the difference.)
    assert reads_of({"name": "Ada", field: related.pk}) - reads_of({"name": "Bo"}) == 2
