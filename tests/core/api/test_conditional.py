import hashlib
import json
import uuid
from datetime import UTC, date, datetime
from decimal import Decimal

import pytest
from rest_framework.utils.encoders import JSONEncoder

from core.api.conditional import compute_etag
from customers.models import Customer
from interactions.models import Interaction
from tests.factories import CustomerFactory, InteractionFactory, OpportunityFactory

pytestmark = pytest.mark.django_db

RESOURCES = [
    ("/api/customers", CustomerFactory, {"name": "Renamed"}),
    ("/api/interactions", InteractionFactory, {"notes": "Changed"}),
    ("/api/opportunities", OpportunityFactory, {"title": "Changed"}),
]


@pytest.mark.parametrize(("path", "factory", "change"), RESOURCES)
def test_every_detail_response_carries_the_same_etag_for_the_same_version(api, path, factory, change):
    created = api.post(path, {**_create_body(path), **change}, format="json")
    url = f"{path}/{created.json()['data']['id']}"
    fetched = api.get(url)

    assert created["ETag"].startswith('"') and created["ETag"] == fetched["ETag"]
    assert api.get(url)["ETag"] == fetched["ETag"]
    for method in (api.patch, api.put):
        updated = method(url, change, format="json")
        assert updated["ETag"] == api.get(url)["ETag"]


def _create_body(path):
    if path == "/api/customers":
        return {}
    customer = CustomerFactory()
    if path == "/api/interactions":
        return {"customer_id": customer.pk, "interaction_type": Interaction.Type.CALL}
    return {"customer_id": customer.pk}


@pytest.mark.parametrize(("path", "factory", "change"), RESOURCES)
@pytest.mark.parametrize("method", ["put", "patch"])
def test_stale_if_match_is_refused_and_changes_nothing(api, path, factory, change, method):
    record = factory()
    url = f"{path}/{record.pk}"
    stale = api.get(url)["ETag"]
    assert api.patch(url, change, format="json").status_code == 200  # someone else edits
    current = api.get(url)

    response = getattr(api, method)(url, {**change, **_other_value(path)}, format="json", HTTP_IF_MATCH=stale)

    assert response.status_code == 412
    assert response.json() == {
        "success": False,
        "error": {"code": "precondition_failed", "message": response.json()["error"]["message"]},
    }
    assert api.get(url).json() == current.json()


def _other_value(path):
    return {"/api/customers": {"name": "Lost"}, "/api/interactions": {"notes": "Lost"}}.get(path, {"title": "Lost"})


@pytest.mark.parametrize(("path", "factory", "change"), RESOURCES)
def test_current_if_match_lets_the_change_through_and_returns_the_new_etag(api, path, factory, change):
    record = factory()
    url = f"{path}/{record.pk}"
    etag = api.get(url)["ETag"]

    response = api.patch(url, change, format="json", HTTP_IF_MATCH=etag)

    assert response.status_code == 200
    assert response["ETag"] != etag
    assert response["ETag"] == api.get(url)["ETag"]
    assert all(response.json()["data"][field] == value for field, value in change.items())


def test_if_match_accepts_star_and_any_of_a_list(api):
    customer = CustomerFactory()
    url = f"/api/customers/{customer.pk}"
    etag = api.get(url)["ETag"]

    assert api.patch(url, {"name": "A"}, format="json", HTTP_IF_MATCH="*").status_code == 200
    etag = api.get(url)["ETag"]
    assert api.patch(url, {"name": "B"}, format="json", HTTP_IF_MATCH=f'"nope", {etag}').status_code == 200


def test_weak_etag_never_satisfies_if_match(api):
    customer = CustomerFactory()
    url = f"/api/customers/{customer.pk}"
    etag = api.get(url)["ETag"]

    assert api.patch(url, {"name": "A"}, format="json", HTTP_IF_MATCH=f"W/{etag}").status_code == 412


def test_requests_without_if_match_work_as_before(api):
    customer = CustomerFactory(name="Old")
    response = api.put(f"/api/customers/{customer.pk}", {"name": "New"}, format="json")

    assert response.status_code == 200
    assert Customer.objects.get(pk=customer.pk).name == "New"


def test_delete_with_stale_if_match_keeps_the_record(api):
    customer = CustomerFactory()
    url = f"/api/customers/{customer.pk}"
    stale = api.get(url)["ETag"]
    api.patch(url, {"phone": "555"}, format="json")

    response = api.delete(url, HTTP_IF_MATCH=stale)

    assert response.status_code == 412
    assert response.json()["error"]["code"] == "precondition_failed"
    assert Customer.objects.filter(pk=customer.pk).exists()


def test_delete_with_current_if_match_deletes(api):
    customer = CustomerFactory()
    url = f"/api/customers/{customer.pk}"

    response = api.delete(url, HTTP_IF_MATCH=api.get(url)["ETag"])

    assert response.status_code == 200
    assert not Customer.objects.filter(pk=customer.pk).exists()


def test_if_none_match_with_current_etag_gives_304_without_body(api):
    customer = CustomerFactory()
    url = f"/api/customers/{customer.pk}"
    etag = api.get(url)["ETag"]

    response = api.get(url, HTTP_IF_NONE_MATCH=etag)
    assert response.status_code == 304
    assert response.content == b""
    assert response["ETag"] == etag
    assert api.get(url, HTTP_IF_NONE_MATCH=f"W/{etag}").status_code == 304  # weak comparison

    api.patch(url, {"name": "Changed"}, format="json")
    fresh = api.get(url, HTTP_IF_NONE_MATCH=etag)
    assert fresh.status_code == 200
    assert fresh.json()["data"]["name"] == "Changed"


def test_if_match_on_missing_record_is_404(api):
    response = api.patch("/api/customers/999999", {"name": "x"}, format="json", HTTP_IF_MATCH='"abc"')
    assert response.status_code == 404


@pytest.mark.parametrize("rows", [1, 5])
def test_detail_with_if_none_match_query_count_is_constant(api, django_assert_num_queries, rows):
    customer = CustomerFactory()
    InteractionFactory.create_batch(rows, customer=customer)
    url = f"/api/customers/{customer.pk}"
    etag = api.get(url)["ETag"]
    # token lookup + the record
    with django_assert_num_queries(2):
        assert api.get(url, HTTP_IF_NONE_MATCH=etag).status_code == 304


def test_customer_etag_ignores_figures_derived_from_other_records(api):
    from tests.factories import CustomerFactory, InteractionFactory

    customer = CustomerFactory()
    etag = api.get(f"/api/customers/{customer.pk}")["ETag"]
    InteractionFactory(customer=customer)
    assert api.get(f"/api/customers/{customer.pk}").json()["data"]["interaction_count"] == 1
    response = api.patch(f"/api/customers/{customer.pk}", {"phone": "1"}, format="json", HTTP_IF_MATCH=etag)
    assert response.status_code == 200
    assert response["ETag"] != etag


@pytest.mark.parametrize(
    "data",
    [
        {"id": 1, "name": "Zhang Wei 张伟", "tags": ["b", "a"], "notes": None, "meta": {"z": 1, "a": [1.5, True]}},
        {"amount": Decimal("12.50"), "when": datetime(2026, 1, 2, 3, 4, 5, tzinfo=UTC), "day": date(2026, 1, 2)},
        {"uuid": uuid.UUID(int=7), "quote": 'say "hi"\n', "emoji": "\U0001f600", "empty": {}},
    ],
)
def test_an_etag_is_the_digest_of_the_sorted_compact_json_as_before(data):
    payload = json.dumps(data, cls=JSONEncoder, sort_keys=True, ensure_ascii=False, separators=(",", ":"))
    expected = f'"{hashlib.sha256(payload.encode()).hexdigest()[:40]}"'

    assert compute_etag(data) == expected
    ignored = frozenset(list(data)[:1])
    rest = {key: value for key, value in data.items() if key not in ignored}
    assert compute_etag(data, ignored) == compute_etag(rest) != expected


@pytest.mark.parametrize(
    ("body", "content_type", "status"),
    [("{not json", "application/json", 400), ("<a/>", "application/xml", 415)],
)
def test_a_missing_or_changed_record_is_answered_before_a_body_that_cannot_be_read(api, body, content_type, status):
    customer = CustomerFactory()
    url = f"/api/customers/{customer.pk}"
    stale = api.get(url)["ETag"]
    assert api.patch(url, {"name": "Changed"}, format="json").status_code == 200

    missing = api.patch(f"/api/customers/{customer.pk + 1000}", body, content_type=content_type)
    changed = api.patch(url, body, content_type=content_type, HTTP_IF_MATCH=stale)
    unreadable = api.put(url, body, content_type=content_type)

    assert (missing.status_code, missing.json()["error"]["code"]) == (404, "not_found")
    assert (changed.status_code, changed.json()["error"]["code"]) == (412, "precondition_failed")
    assert unreadable.status_code == status and unreadable.json()["success"] is False
    customer.refresh_from_db()
    assert customer.name == "Changed"
