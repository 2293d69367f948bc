"""The webhook deliveries in the admin: the delivery log as managers read it."""

import re

import pytest

from tests.conftest import browser
from tests.factories import member
from webhooks.models import Delivery, Endpoint

pytestmark = pytest.mark.django_db


def test_a_delivery_page_shows_the_log_in_the_readers_language_without_the_workers_lease():
    endpoint = Endpoint.objects.create(url="https://hooks.example.com/crm")
    delivery = Delivery.objects.create(
        endpoint=endpoint, message_id="evt_1", event_type="customer.created", payload={}, status=Delivery.Status.FAILED
    )
    client = browser(member("boss", "Sales manager", is_staff=True))

    page = client.get(
        f"/admin/webhooks/delivery/{delivery.pk}/change/", HTTP_ACCEPT_LANGUAGE="zh-hans"
    ).content.decode()

    labels = re.findall(r"<label>([^<]*)</label>", page)
    assert "响应码:" in labels
    # Every label is in Chinese ("ID" is Chinese too): none is a field name Django turned into English words.
    assert [label for label in labels if re.fullmatch(r"[A-Za-z ():]+", label) and label != "ID:"] == []
