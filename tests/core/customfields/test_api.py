"""Custom fields through the API: definitions, values on every write path, filters, ordering, hiding and purging."""

import pytest
from django.core.management import call_command
from django.db import connection
from django.test.utils import CaptureQueriesContext

from companies.models import Company
from core.models import CustomField
from customers.models import Customer
from opportunities.models import Opportunity
from tests.factories import CompanyFactory, CustomerFactory, OpportunityFactory

pytestmark = pytest.mark.django_db


def define(model="customers", key="industry", field_type="text", **extra):
    return CustomField.objects.create(
        model=model, key=key, label=extra.pop("label", key.title()), field_type=field_type, **extra
    )


def errors(response):
    body = response.json()
    assert body["success"] is False, body
    return body["error"].get("fields", {})


def test_manager_defines_a_field_and_sets_it(api):
    response = api.post(
        "/api/custom-fields",
        {
            "model": "customers",
            "key": "tier",
            "label": "Tier",
            "label_zh": "等级",
            "field_type": "choice",
            "choices": ["gold", "silver"],
            "required": False,
        },
        format="json",
    )
    assert response.status_code == 201, response.content
    created = api.post("/api/customers", {"name": "Ann", "custom_fields": {"tier": "gold"}}, format="json")
    assert created.status_code == 201, created.content
    assert created.json()["data"]["custom_fields"] == {"tier": "gold"}
    assert Customer.objects.get(pk=created.json()["data"]["id"]).custom_fields == {"tier": "gold"}


@pytest.mark.parametrize(
    ("body", "field", "status"),
    [
        ({"model": "customers", "key": "Bad Key", "label": "x"}, "key", 400),
        ({"model": "customers", "key": "email", "label": "x"}, "key", 400),
        ({"model": "customers", "key": "custom_fields", "label": "x"}, "key", 400),
        ({"model": "customers", "key": "a__b", "label": "x"}, "key", 400),
        ({"model": "widgets", "key": "x", "label": "x"}, "model", 400),
        ({"model": "customers", "key": "x", "label": "x", "field_type": "choice"}, "choices", 400),
        (
            {"model": "customers", "key": "x", "label": "x", "field_type": "choice", "choices": ["a", "A"]},
            "choices",
            400,
        ),
        ({"model": "customers", "key": "x", "label": "x", "field_type": "choice", "choices": ["a,b"]}, "choices", 400),
        ({"model": "customers", "key": "x", "label": "x", "choices": ["a"]}, "choices", 400),
        ({"model": "customers", "key": "x", "label": "x", "field_type": "colour"}, "field_type", 400),
        # JSON of the wrong type is refused, not turned into text.
        ({"model": "customers", "key": 7, "label": "x"}, "key", 400),
        ({"model": "customers", "key": "x", "label": 7}, "label", 400),
    ],
)
def test_bad_definitions_are_refused(api, body, field, status):
    response = api.post("/api/custom-fields", body, format="json")
    assert response.status_code == status, response.content
    assert field in errors(response)


@pytest.mark.parametrize(
    ("body", "field", "message"),
    [
        ({"required": "yes"}, "required", "Must be a valid boolean."),
        ({"show_in_list": 1}, "show_in_list", "Must be a valid boolean."),
        ({"filterable": "true"}, "filterable", "Must be a valid boolean."),
        ({"field_type": "choice", "choices": ["a", 12]}, "choices", "1: Not a valid string."),
    ],
)
def test_definitions_of_the_wrong_json_type_are_refused_not_converted(api, body, field, message):
    created = api.post(
        "/api/custom-fields", {"model": "customers", "key": "tier", "label": "Tier", **body}, format="json"
    )
    assert created.status_code == 400, created.content
    assert errors(created) == {field: [message]}
    assert not CustomField.objects.exists()
    defined = define(key="region", field_type="choice", choices=["a"])
    changed = api.patch(f"/api/custom-fields/{defined.pk}", body, format="json")
    assert changed.status_code == 400, changed.content
    assert errors(changed) == {field: [message]}
    assert CustomField.objects.filter(
        pk=defined.pk, choices=["a"], required=False, show_in_list=False, filterable=False
    ).exists()


def test_key_is_unique_per_model_but_not_across_models(api):
    define(key="region")
    again = api.post("/api/custom-fields", {"model": "customers", "key": "region", "label": "R"}, format="json")
    assert again.status_code == 400 and "key" in errors(again)
    other = api.post("/api/custom-fields", {"model": "companies", "key": "region", "label": "R"}, format="json")
    assert other.status_code == 201


def test_key_and_model_cannot_change(api):
    field = define(key="region")
    response = api.patch(f"/api/custom-fields/{field.pk}", {"key": "area"}, format="json")
    assert response.status_code == 400 and "key" in errors(response)


@pytest.mark.parametrize(
    ("field_type", "extra", "good", "stored", "bad"),
    [
        ("text", {}, "hello", "hello", 12),
        ("long_text", {}, "a\nb", "a\nb", ["x"]),
        ("number", {}, 42, 42, 4.5),
        ("number", {}, 3.0, 3, "3"),
        ("decimal", {}, 12.25, 12.25, "12.25"),
        ("decimal", {}, 7, 7, True),
        ("date", {}, "2026-02-28", "2026-02-28", "2026-02-30"),
        ("boolean", {}, True, True, "yes"),
        ("choice", {"choices": ["a", "b"]}, "a", "a", "c"),
        ("multi_choice", {"choices": ["a", "b"]}, ["b", "a", "b"], ["b", "a"], ["a", "z"]),
        ("url", {}, "https://example.com/x", "https://example.com/x", "not a url"),
        ("email", {}, "a@example.com", "a@example.com", "nope"),
        ("text", {}, "ok", "ok", "x" * 1001),
        ("text", {}, "ok", "ok", "nul\x00"),
        ("number", {}, 2**53 - 1, 2**53 - 1, 2**53),
    ],
)
def test_each_type_takes_its_values_and_refuses_others(api, field_type, extra, good, stored, bad):
    define(key="f", field_type=field_type, **extra)
    ok = api.post("/api/customers", {"name": "A", "custom_fields": {"f": good}}, format="json")
    assert ok.status_code == 201, ok.content
    assert ok.json()["data"]["custom_fields"] == {"f": stored}
    refused = api.post("/api/customers", {"name": "B", "custom_fields": {"f": bad}}, format="json")
    assert refused.status_code == 400, refused.content
    assert list(errors(refused)) == ["custom_fields.f"]


def test_unknown_keys_and_non_objects_are_refused(api):
    define(key="f")
    response = api.post("/api/customers", {"name": "A", "custom_fields": {"nope": 1}}, format="json")
    assert response.status_code == 400 and "custom_fields.nope" in errors(response)
    response = api.post("/api/customers", {"name": "A", "custom_fields": ["f"]}, format="json")
    assert response.status_code == 400 and "custom_fields" in errors(response)


def test_required_on_create_and_on_removal_not_on_other_updates(api):
    customer = CustomerFactory()
    define(key="contract", required=True)
    missing = api.post("/api/customers", {"name": "A"}, format="json")
    assert missing.status_code == 400 and "custom_fields.contract" in errors(missing)
    # Both errors at once: a field's and a custom field's.
    both = api.post("/api/customers", {"name": "", "custom_fields": {}}, format="json")
    assert set(errors(both)) == {"name", "custom_fields.contract"}
    # A record from before the field became required can still be edited otherwise...
    assert api.patch(f"/api/customers/{customer.pk}", {"phone": "123"}, format="json").status_code == 200
    # ...but a required value cannot be removed.
    api.patch(f"/api/customers/{customer.pk}", {"custom_fields": {"contract": "C-1"}}, format="json")
    removed = api.patch(f"/api/customers/{customer.pk}", {"custom_fields": {"contract": None}}, format="json")
    assert removed.status_code == 400 and "custom_fields.contract" in errors(removed)


def test_partial_update_merges_and_null_deletes(api):
    define(key="a")
    define(key="b", field_type="number")
    customer = CustomerFactory(custom_fields={"a": "x", "b": 1})
    response = api.put(f"/api/customers/{customer.pk}", {"custom_fields": {"b": 2}}, format="json")
    assert response.json()["data"]["custom_fields"] == {"a": "x", "b": 2}
    response = api.patch(f"/api/customers/{customer.pk}", {"custom_fields": {"a": None}}, format="json")
    assert response.json()["data"]["custom_fields"] == {"b": 2}
    customer.refresh_from_db()
    assert customer.custom_fields == {"b": 2}


def test_unchanged_values_write_no_history(api):
    define(key="a")
    customer = CustomerFactory(custom_fields={"a": "x"})
    before = customer.history.count()
    api.patch(f"/api/customers/{customer.pk}", {"custom_fields": {"a": "x"}}, format="json")
    assert customer.history.count() == before


def test_batch_checks_each_item(api):
    define(key="size", field_type="number")
    response = api.post(
        "/api/customers/batch",
        {"create": [{"name": "A", "custom_fields": {"size": 3}}, {"name": "B", "custom_fields": {"size": "x"}}]},
        format="json",
    )
    body = response.json()
    assert response.status_code == 207, body
    results = body["data"]["create"] if "create" in body["data"] else body["data"]["results"]
    assert any("custom_fields.size" in str(item) for item in results)
    assert Customer.objects.filter(custom_fields__size=3).count() == 1


@pytest.mark.parametrize(
    ("resource", "factory"), [("companies", CompanyFactory), ("opportunities", OpportunityFactory)]
)
def test_companies_and_opportunities_have_their_own_fields(api, resource, factory):
    define(model=resource, key="code")
    define(model="customers", key="other")
    record = factory()
    ok = api.patch(f"/api/{resource}/{record.pk}", {"custom_fields": {"code": "X1"}}, format="json")
    assert ok.status_code == 200, ok.content
    assert ok.json()["data"]["custom_fields"] == {"code": "X1"}
    wrong = api.patch(f"/api/{resource}/{record.pk}", {"custom_fields": {"other": "y"}}, format="json")
    assert wrong.status_code == 400 and "custom_fields.other" in errors(wrong)
    assert api.get(f"/api/{resource}", {"cf_code": "X1"}).json()["data"][0]["id"] == record.pk


@pytest.fixture
def book():
    define(key="tier", field_type="choice", choices=["gold", "silver", "bronze"])
    define(key="labels", field_type="multi_choice", choices=["vip", "eu", "cn"])
    define(key="seats", field_type="number")
    define(key="score", field_type="decimal")
    define(key="renewal", field_type="date")
    define(key="active", field_type="boolean")
    define(key="note")
    rows = {
        "a": CustomerFactory(
            name="a",
            custom_fields={
                "tier": "gold",
                "labels": ["vip", "eu"],
                "seats": 5,
                "score": 1.5,
                "renewal": "2026-01-10",
                "active": True,
                "note": "x",
            },
        ),
        "b": CustomerFactory(
            name="b",
            custom_fields={
                "tier": "silver",
                "labels": ["eu"],
                "seats": 50,
                "score": 10.25,
                "renewal": "2026-03-01",
                "active": False,
            },
        ),
        "c": CustomerFactory(
            name="c",
            custom_fields={"tier": "gold", "labels": ["cn"], "seats": 500, "score": -2, "renewal": "2025-12-31"},
        ),
        "d": CustomerFactory(name="d"),
    }
    return rows


def names(api, params):
    response = api.get("/api/customers", {"page_size": 50, **params})
    assert response.status_code == 200, response.content
    return sorted(row["name"] for row in response.json()["data"])


@pytest.mark.parametrize(
    ("params", "expected"),
    [
        ({"cf_tier": "gold"}, ["a", "c"]),
        ({"cf_tier": "GOLD"}, ["a", "c"]),
        ({"cf_tier": ["gold", "silver"]}, ["a", "b", "c"]),
        ({"cf_labels": "eu"}, ["a", "b"]),
        ({"cf_labels": ["eu", "vip"]}, ["a"]),
        ({"cf_seats": "50"}, ["b"]),
        ({"cf_seats__gte": "50"}, ["b", "c"]),
        ({"cf_seats__lte": "50", "cf_seats__gte": "6"}, ["b"]),
        ({"cf_score__gte": "1.5"}, ["a", "b"]),
        ({"cf_score": "10.25"}, ["b"]),
        ({"cf_renewal__lte": "2026-01-10"}, ["a", "c"]),
        ({"cf_renewal": "2026-03-01"}, ["b"]),
        ({"cf_active": "true"}, ["a"]),
        ({"cf_active": "no"}, ["b"]),
        ({"cf_note": "x"}, ["a"]),
    ],
)
def test_filters(api, book, params, expected):
    assert names(api, params) == expected


@pytest.mark.parametrize(
    "params",
    [
        {"cf_nope": "1"},
        {"cf_seats": "many"},
        {"cf_seats__gte": "1.5"},
        {"cf_renewal__gte": "2026-13-01"},
        {"cf_tier": "platinum"},
        {"cf_tier__gte": "gold"},
        {"cf_seats__between": "1"},
        {"cf_active": "maybe"},
        {"cf_note": "a\x00b"},
        {"cf_seats": str(10**30)},
        {"cf_score": "NaN"},
        {"cf_score__lte": "1e400"},
        # Past the decimal context's exponent limit (abs() overflows), past any memory (int()).
        {"cf_score": "1e1000000"},
        {"cf_score__gte": "-1e999999999999999999"},
        {"cf_seats": "1e999999999999999999"},
    ],
)
def test_bad_filter_values_are_400s(api, book, params):
    response = api.get("/api/customers", params)
    assert response.status_code == 400, response.content
    assert set(errors(response)) == set(params)


@pytest.mark.parametrize(
    ("ordering", "expected"),
    [
        ("cf_seats", ["a", "b", "c", "d"]),
        ("-cf_seats", ["c", "b", "a", "d"]),
        ("cf_renewal", ["c", "a", "b", "d"]),
        ("-cf_score", ["b", "a", "c", "d"]),
        ("cf_tier,name", ["a", "c", "b", "d"]),
    ],
)
def test_ordering(api, book, ordering, expected):
    response = api.get("/api/customers", {"ordering": ordering, "page_size": 50})
    assert response.status_code == 200, response.content
    assert [row["name"] for row in response.json()["data"]] == expected


def test_ordering_by_an_unknown_custom_field_is_a_400(api, book):
    response = api.get("/api/customers", {"ordering": "cf_nope"})
    assert response.status_code == 400


def test_export_filters_and_columns(api, book):
    response = api.get("/api/customers/export", {"cf_tier": "gold", "ordering": "name"})
    text = b"".join(response.streaming_content).decode("utf-8-sig")
    lines = text.strip().splitlines()
    header = lines[0].split(",")
    assert header[-7:] == ["tier", "labels", "seats", "score", "renewal", "active", "note"]
    assert lines[1].endswith('gold,"vip, eu",5,1.5,2026-01-10,true,x')
    assert len(lines) == 3


def test_deleting_a_definition_hides_values_until_recreated_then_purge_removes_them(api, book):
    customer = book["a"]
    tier = CustomField.objects.get(key="tier")
    assert api.delete(f"/api/custom-fields/{tier.pk}").status_code == 200
    data = api.get(f"/api/customers/{customer.pk}").json()["data"]
    assert "tier" not in data["custom_fields"]
    # Not validated either: another write keeps it stored, and naming it is refused.
    assert (
        api.patch(f"/api/customers/{customer.pk}", {"custom_fields": {"note": "y"}}, format="json").status_code == 200
    )
    refused = api.patch(f"/api/customers/{customer.pk}", {"custom_fields": {"tier": "gold"}}, format="json")
    assert refused.status_code == 400
    customer.refresh_from_db()
    assert customer.custom_fields["tier"] == "gold"
    # Re-created, the values come back.
    again = api.post(
        "/api/custom-fields",
        {
            "model": "customers",
            "key": "tier",
            "label": "Tier",
            "field_type": "choice",
            "choices": ["gold", "silver", "bronze"],
        },
        format="json",
    )
    assert again.status_code == 201, again.content
    assert api.get(f"/api/customers/{customer.pk}").json()["data"]["custom_fields"]["tier"] == "gold"
    # Re-created with choices the stored values do not fit: refused.
    CustomField.objects.filter(key="tier").delete()
    misfit = api.post(
        "/api/custom-fields",
        {"model": "customers", "key": "tier", "label": "Tier", "field_type": "choice", "choices": ["gold"]},
        format="json",
    )
    assert misfit.status_code == 400 and "field_type" in errors(misfit)
    # Purged, they are gone.
    call_command("purge_custom_field", "customers", "tier")
    assert not Customer.objects.filter(custom_fields__has_key="tier").exists()
    customer.refresh_from_db()
    assert customer.custom_fields["note"] == "y"


def test_purge_refuses_a_defined_field(book):
    from django.core.management.base import CommandError

    with pytest.raises(CommandError):
        call_command("purge_custom_field", "customers", "tier")
    with pytest.raises(CommandError):
        call_command("purge_custom_field", "widgets", "tier")


def test_type_change_converts_when_every_value_fits_and_is_refused_otherwise(api, book):
    seats = CustomField.objects.get(key="seats")
    ok = api.patch(f"/api/custom-fields/{seats.pk}", {"field_type": "text"}, format="json")
    assert ok.status_code == 200, ok.content
    assert Customer.objects.get(name="b").custom_fields["seats"] == "50"
    note = CustomField.objects.get(key="note")
    refused = api.patch(f"/api/custom-fields/{note.pk}", {"field_type": "number"}, format="json")
    assert refused.status_code == 400 and "field_type" in errors(refused)
    tier = CustomField.objects.get(key="tier")
    shrink = api.patch(f"/api/custom-fields/{tier.pk}", {"choices": ["gold"]}, format="json")
    assert shrink.status_code == 400 and "choices" in errors(shrink)


def test_list_and_detail_query_counts_stay_constant(api):
    define(key="a")
    for _ in range(3):
        CustomerFactory(custom_fields={"a": "x"})
    with CaptureQueriesContext(connection) as small:
        api.get("/api/customers", {"page_size": 2, "cf_a": "x", "ordering": "cf_a"})
    for _ in range(6):
        CustomerFactory(custom_fields={"a": "x"})
    with CaptureQueriesContext(connection) as large:
        api.get("/api/customers", {"page_size": 2, "cf_a": "x", "ordering": "cf_a"})
    assert len(small) == len(large) <= 4


def test_definitions_list_filters_by_model(api):
    define(key="a")
    define(model="companies", key="b")
    data = api.get("/api/custom-fields", {"model": "companies"}).json()["data"]
    assert [row["key"] for row in data] == ["b"]


def test_models_have_the_column(db):
    assert Company().custom_fields == {} and Opportunity().custom_fields == {}


def test_definitions_list_refuses_an_unknown_model(api):
    response = api.get("/api/custom-fields", {"model": "widgets"})
    assert response.status_code == 400 and "model" in errors(response)


def test_detail_query_count_does_not_grow_with_values(api):
    for key in ("a", "b", "c"):
        define(key=key)
    customer = CustomerFactory(custom_fields={"a": "x"})
    with CaptureQueriesContext(connection) as one:
        api.get(f"/api/customers/{customer.pk}")
    customer.custom_fields = {"a": "x", "b": "y", "c": "z"}
    customer.save()
    with CaptureQueriesContext(connection) as three:
        assert api.get(f"/api/customers/{customer.pk}").json()["data"]["custom_fields"] == {
            "a": "x",
            "b": "y",
            "c": "z",
        }
    assert len(one) == len(three) == 3  # token, the record with its figures, the definitions


def test_rep_reads_definitions_but_cannot_write_them(db):
    from django.contrib.auth.models import Group
    from knox.models import get_token_model
    from rest_framework.test import APIClient

    from tests.factories import UserFactory

    rep = UserFactory()
    rep.groups.add(Group.objects.get(name="Sales rep"))
    client = APIClient()
    client.credentials(HTTP_AUTHORIZATION=f"Bearer {get_token_model().objects.create(rep)[1]}")
    field = define(key="a")
    assert client.get("/api/custom-fields").status_code == 200
    assert (
        client.post("/api/custom-fields", {"model": "customers", "key": "b", "label": "B"}, format="json").status_code
        == 403
    )
    assert client.patch(f"/api/custom-fields/{field.pk}", {"label": "X"}, format="json").status_code == 403
    assert client.delete(f"/api/custom-fields/{field.pk}").status_code == 403
    # ...and sets values on their own customers.
    own = client.post("/api/customers", {"name": "Mine", "custom_fields": {"a": "v"}}, format="json")
    assert own.status_code == 201 and own.json()["data"]["custom_fields"] == {"a": "v"}
