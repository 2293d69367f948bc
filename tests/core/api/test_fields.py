from decimal import Decimal

import pytest
from drf_spectacular.generators import EndpointEnumerator, SchemaGenerator
from drf_spectacular.settings import spectacular_settings

from core.api.serializers import StrictJSONTypesMixin
from opportunities.models import Opportunity
from tests.factories import CustomerFactory

pytestmark = pytest.mark.django_db


@pytest.mark.parametrize(
    ("sent", "stored"),
    [
        (19.999, Decimal("20.00")),
        (0.004, Decimal("0.00")),
        (1234.5, Decimal("1234.50")),
        (999999999999.99, Decimal("999999999999.99")),
        (999999999999.996, Decimal("999999999999.99")),  # rounding up would overflow: truncated
    ],
)
def test_opportunity_value_is_rounded_to_cents(api, sent, stored):
    response = api.post(
        "/api/opportunities", {"customer_id": CustomerFactory().pk, "title": "Deal", "value": sent}, format="json"
    )

    assert response.status_code == 201
    assert Opportunity.objects.get().value == stored


@pytest.mark.parametrize("sent", [-0.001, -1, 1e12, 1e300, "NaN", "Infinity", "abc", "1234.5", True])
def test_opportunity_value_out_of_range_is_refused(api, sent):
    response = api.post(
        "/api/opportunities", {"customer_id": CustomerFactory().pk, "title": "Deal", "value": sent}, format="json"
    )

    assert response.status_code == 400
    assert list(response.json()["error"]["fields"]) == ["value"]
    assert not Opportunity.objects.exists()


@pytest.mark.parametrize(
    ("path", "body", "field"),
    [
        ("/api/customers", {"name": 12}, "name"),
        ("/api/customers", {"name": "Ada", "company": 1.5}, "company"),
        ("/api/customers", {"name": "Ada", "status": 1}, "status"),
        ("/api/customers", {"name": ["Ada"]}, "name"),
        ("/api/opportunities", {"title": "Deal", "probability": "40"}, "probability"),
        ("/api/opportunities", {"title": "Deal", "probability": 40.5}, "probability"),
        ("/api/opportunities", {"title": "Deal", "customer_id": "CUSTOMER"}, "customer_id"),
        ("/api/interactions", {"interaction_type": "call", "notes": False}, "notes"),
    ],
)
def test_values_of_the_wrong_json_type_are_refused_not_converted(api, path, body, field):
    customer = CustomerFactory()
    body = {"customer_id": customer.pk, **body} if path != "/api/customers" else body
    if body.get("customer_id") == "CUSTOMER":
        body["customer_id"] = str(customer.pk)

    response = api.post(path, body, format="json")

    assert response.status_code == 400
    assert field in response.json()["error"]["fields"]


def test_whole_numbers_sent_as_floats_are_integers(api):
    customer = CustomerFactory()
    response = api.post(
        "/api/opportunities", {"customer_id": float(customer.pk), "title": "Deal", "probability": 40.0}, format="json"
    )

    assert response.status_code == 201
    assert response.json()["data"]["probability"] == 40


def request_serializers():
    """``(method, path, serializer)`` of every write of the API whose body the schema describes by a serializer."""
    generator = SchemaGenerator()
    for path, _regex, method, callback in EndpointEnumerator().get_api_endpoints():
        if method not in ("POST", "PUT", "PATCH"):
            continue
        view = generator.create_view(callback, method)
        view.request = spectacular_settings.GET_MOCK_REQUEST(method, path, view, None)
        view.schema.path, view.schema.method = path, method
        serializer = view.schema.get_request_serializer()
        if serializer is not None:
            yield method, path, serializer if isinstance(serializer, type) else type(serializer)


def test_every_request_body_is_read_with_strict_json_types():
    """Action bodies too (a task's completion, a merge, an undo, a reassign, webhooks, the login): a new
    endpoint whose body skipped the check would take {"outcome": 12} as the text "12"."""
    found = list(request_serializers())
    loose = [(method, path, cls.__name__) for method, path, cls in found if not issubclass(cls, StrictJSONTypesMixin)]
    assert len(found) > 30 and loose == []
