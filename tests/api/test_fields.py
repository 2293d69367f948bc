from decimal import Decimal

import pytest

from opportunities.models import Opportunity
from tests.factories import CustomerFactory

pytestmark = pytest.mark.django_db


@pytest.mark.parametrize(
    ("sent", "stored"),
    [
        (19.999, Decimal("20.00")),
        (0.004, Decimal("0.00")),
        ("1234.5", Decimal("1234.50")),
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


@pytest.mark.parametrize("sent", [-0.001, -1, 1e12, 1e300, "NaN", "Infinity", "abc"])
def test_opportunity_value_out_of_range_is_refused(api, sent):
    response = api.post(
        "/api/opportunities", {"customer_id": CustomerFactory().pk, "title": "Deal", "value": sent}, format="json"
    )

    assert response.status_code == 400
    assert list(response.json()["error"]["fields"]) == ["value"]
    assert not Opportunity.objects.exists()
