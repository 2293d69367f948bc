import pytest

from interactions.models import Interaction
from tests.factories import CustomerFactory, InteractionFactory

URL = "/api/interactions"


def test_create_interaction(api):
    customer = CustomerFactory()
    response = api.post(
        URL, {"customer_id": customer.pk, "interaction_type": "call", "notes": "初次沟通"}, format="json"
    )
    assert response.status_code == 201
    data = response.json()["data"]
    assert data["customer_id"] == customer.pk
    assert data["interaction_type"] == "call"
    assert data["notes"] == "初次沟通"
    assert data["created_at"].endswith("Z")
    assert data["occurred_at"]
    stored = Interaction.objects.get(pk=data["id"])
    assert (stored.customer_id, stored.notes) == (customer.pk, "初次沟通")


def test_notes_are_optional(api):
    customer = CustomerFactory()
    response = api.post(URL, {"customer_id": customer.pk, "interaction_type": "email"}, format="json")
    assert response.status_code == 201
    assert response.json()["data"]["notes"] is None


def test_occurred_at_may_be_in_the_past(api):
    customer = CustomerFactory()
    payload = {"customer_id": customer.pk, "interaction_type": "meeting", "occurred_at": "2025-03-01T10:00:00+08:00"}
    data = api.post(URL, payload, format="json").json()["data"]
    assert data["occurred_at"] == "2025-03-01T02:00:00Z"


@pytest.mark.parametrize(
    ("payload", "field"),
    [
        ({"interaction_type": "call"}, "customer_id"),
        ({"customer_id": 999999, "interaction_type": "call"}, "customer_id"),
        ({"customer_id": "abc", "interaction_type": "call"}, "customer_id"),
        ({"customer_id": None, "interaction_type": "call"}, "customer_id"),
        ({"customer_id": 99999999999999999999999, "interaction_type": "call"}, "customer_id"),
        ({"customer_id": "CUSTOMER", "interaction_type": "fax"}, "interaction_type"),
        ({"customer_id": "CUSTOMER"}, "interaction_type"),
        ({"customer_id": "CUSTOMER", "interaction_type": "call", "notes": "a\x00b"}, "notes"),
        ({"customer_id": "CUSTOMER", "interaction_type": "call", "notes": "x" * 20_001}, "notes"),
        ({"customer_id": "CUSTOMER", "interaction_type": "call", "occurred_at": "tomorrow"}, "occurred_at"),
    ],
)
def test_create_rejects_invalid_field(api, payload, field):
    customer = CustomerFactory()
    payload = {k: (customer.pk if v == "CUSTOMER" else v) for k, v in payload.items()}
    response = api.post(URL, payload, format="json")
    assert response.status_code == 400
    assert field in response.json()["error"]["fields"]
    assert not Interaction.objects.exists()


def test_update_notes_partially(api):
    interaction = InteractionFactory(interaction_type="call", notes="old")
    response = api.put(f"{URL}/{interaction.pk}", {"notes": "更新的备注"}, format="json")
    assert response.status_code == 200
    assert response.json()["data"]["notes"] == "更新的备注"
    assert response.json()["data"]["interaction_type"] == "call"
    interaction.refresh_from_db()
    assert interaction.notes == "更新的备注"


def test_update_to_unknown_customer_is_400(api):
    interaction = InteractionFactory()
    response = api.patch(f"{URL}/{interaction.pk}", {"customer_id": 424242}, format="json")
    assert response.status_code == 400
    assert "customer_id" in response.json()["error"]["fields"]


def test_detail_and_delete(api):
    interaction = InteractionFactory()
    assert api.get(f"{URL}/{interaction.pk}").json()["data"]["id"] == interaction.pk
    response = api.delete(f"{URL}/{interaction.pk}")
    assert response.json() == {"success": True, "message": "Interaction deleted.", "data": {"id": interaction.pk}}
    assert not Interaction.objects.exists()
    assert api.get(f"{URL}/{interaction.pk}").status_code == 404


def test_filter_by_customer_and_type(api):
    mine = CustomerFactory()
    call = InteractionFactory(customer=mine, interaction_type="call")
    mail = InteractionFactory(customer=mine, interaction_type="email")
    InteractionFactory(interaction_type="call")
    assert {r["id"] for r in api.get(URL, {"customer_id": mine.pk}).json()["data"]} == {call.pk, mail.pk}
    data = api.get(URL, {"customer_id": mine.pk, "interaction_type": "email"}).json()["data"]
    assert [r["id"] for r in data] == [mail.pk]
    assert api.get(URL, {"customer_id": 999999}).json()["data"] == []


def test_list_is_newest_first(api):
    items = InteractionFactory.create_batch(3)
    assert [r["id"] for r in api.get(URL).json()["data"]] == [i.pk for i in reversed(items)]


@pytest.mark.parametrize(
    "params",
    [
        {"customer_id": "abc"},
        {"customer_id": "1.5"},
        {"customer_id": "99999999999999999999999"},
        {"interaction_type": "fax"},
        {"ordering": "notes"},
    ],
)
def test_garbage_filters_are_a_400(api, params):
    response = api.get(URL, params)
    assert response.status_code == 400
    assert set(response.json()["error"]["fields"]) == set(params)
