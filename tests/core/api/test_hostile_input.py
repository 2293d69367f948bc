"""Input built to break the server gets a 4xx in the envelope, never a 500."""

import base64
import json

import pytest

from opportunities.models import Opportunity
from tests.factories import CustomerFactory, OpportunityFactory


def test_deeply_nested_json_is_malformed_not_a_crash(api):
    response = api.generic("POST", "/api/customers", "[" * 100_000, content_type="application/json")
    assert response.status_code == 400
    assert response.json()["error"]["code"] == "malformed_request"


@pytest.mark.parametrize("moment", ["9999-12-31T23:59:59-14:00", "0001-01-01T00:00:00+14:00"])
def test_cursor_outside_the_range_of_dates_is_a_400(api, moment):
    CustomerFactory()
    cursor = base64.urlsafe_b64encode(f"{moment}|5".encode()).decode().rstrip("=")
    response = api.get("/api/customers", {"cursor": cursor})
    assert response.status_code == 400
    assert response.json()["error"]["fields"] == {"cursor": ["Invalid cursor."]}


@pytest.mark.parametrize(
    ("path", "payload", "field"),
    [
        ("/api/customers", {"name": "x", "status": "\ud800"}, "status"),
        ("/api/interactions", {"customer_id": "C", "interaction_type": "\ud800"}, "interaction_type"),
        ("/api/opportunities", {"customer_id": "C", "title": "x", "stage": "\udfff"}, "stage"),
    ],
)
def test_lone_surrogate_in_a_choice_is_a_400(api, path, payload, field):
    customer = CustomerFactory()
    payload = {key: customer.pk if value == "C" else value for key, value in payload.items()}
    # json.dumps escapes the surrogate (\\ud800), as a client's JSON would carry it.
    response = api.generic("POST", path, json.dumps(payload), content_type="application/json")
    assert response.status_code == 400
    assert field in response.json()["error"]["fields"]


def test_lone_surrogate_in_a_login_is_a_400(anon_client, db):
    body = json.dumps({"username": "\ud800", "password": "x"})
    response = anon_client.generic("POST", "/api/auth/token", body, content_type="application/json")
    assert response.status_code == 400


@pytest.mark.parametrize(
    ("path", "param"),
    [
        ("/api/customers", "owner"),
        ("/api/companies", "owner"),
        ("/api/opportunities", "owner"),
        ("/api/tasks", "assignee"),
        ("/api/customers/export", "owner"),
    ],
)
@pytest.mark.parametrize("value", ["²", "١٢"])
def test_owner_that_is_not_ascii_digits_is_a_400(api, path, param, value):
    # Both pass str.isdigit(); int() cannot read the first and reads the second as 12.
    response = api.get(path, {param: value})
    assert response.status_code == 400
    assert list(response.json()["error"]["fields"]) == [param]


@pytest.mark.parametrize("path", ["/api/docs/", "/api/redoc/"])
def test_options_on_the_documentation_pages_is_not_a_crash(anon_client, db, path):
    assert anon_client.options(path).status_code == 405


def test_negative_zero_value_reads_back_as_answered(api):
    opportunity = OpportunityFactory()
    response = api.patch(f"/api/opportunities/{opportunity.pk}", {"value": -0.0}, format="json")
    assert response.status_code == 200
    assert response.json()["data"]["value"] == 0
    assert str(Opportunity.objects.get(pk=opportunity.pk).value) == "0.00"
    assert api.get(f"/api/opportunities/{opportunity.pk}")["ETag"] == response["ETag"]


@pytest.mark.parametrize("model", ["customers/customer", "interactions/interaction", "opportunities/opportunity"])
def test_admin_history_of_a_non_numeric_id_is_not_a_crash(client, staff_user, model):
    client.force_login(staff_user)
    response = client.get(f"/admin/{model}/abc/history/")
    # Answered like an unknown id: the "not found" page.
    assert response.status_code == 404
    assert "There is no such" in response.content.decode()
