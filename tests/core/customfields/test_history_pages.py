"""The admin's history pages of a record with custom fields: a line per custom field changed, labelled as on the
record's page (in the reader's language) and with its values shown as there, for the entries where the API's history
lists the column changed; a custom field deleted since by its key; a past version's page with that version's values.
"""

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext
from django.urls import reverse

from core.models import CustomField
from opportunities.models import Opportunity
from tests.conftest import browser
from tests.core.admin.helpers import change_form_data, staff
from tests.factories import CustomerFactory, OpportunityFactory

pytestmark = pytest.mark.django_db


# key, label, Chinese label, type, choices; in this order.
DEFINITIONS = [
    ("tier", "Tier", "等级", "choice", ["gold", "silver"]),
    ("seats", "Seats", "席位", "number", []),
    ("vip", "VIP", "", "boolean", []),
    ("areas", "Areas", "", "multi_choice", ["east", "west"]),
    ("gone", "Gone soon", "", "text", []),
]


@pytest.fixture
def fields():
    return {
        key: CustomField.objects.create(
            model="customers", key=key, label=label, label_zh=zh, field_type=kind, choices=choices, order=order
        )
        for order, (key, label, zh, kind, choices) in enumerate(DEFINITIONS)
    }


@pytest.fixture
def customer(fields, rep):
    """Created with three values, then changed: two changed, one added, one removed, one kept; its "gone"
    custom field deleted since."""
    customer = CustomerFactory(name="Ann", owner=rep, custom_fields={"tier": "gold", "seats": 3, "gone": "old note"})
    customer.custom_fields = {"tier": "silver", "seats": 3, "vip": True, "areas": ["east", "west"]}
    customer.save()
    fields["gone"].delete()
    return customer


def history(client, record, **headers):
    """Each entry of ``record``'s history page as ``client`` sees it, newest first: its changes as (field, old, new),
    or the values of a first entry as (field, None, value)."""
    opts = record._meta
    response = client.get(reverse(f"admin:{opts.app_label}_{opts.model_name}_history", args=[record.pk]), **headers)
    assert response.status_code == 200
    return [
        [(str(c["field"]), c["old"], c["new"]) for c in getattr(entry, "history_delta_changes", [])]
        or [(str(v["field"]), None, v["new"]) for v in getattr(entry, "history_initial_values", [])]
        for entry in response.context["page_obj"].object_list
    ]


def custom_lines(entry, labels):
    return [line for line in entry if line[0] in labels]


LABELS = {"Tier", "Seats", "VIP", "Areas", "gone (deleted custom field)"}


@pytest.mark.parametrize("viewer", ["rep", "manager"])
def test_each_custom_field_changed_is_a_line_of_its_own(customer, viewer, rep, manager):
    changed, created = history(browser(rep if viewer == "rep" else manager), customer)

    # In the definitions' order, then the deleted one's by its key; the one kept the same is no line.
    assert changed == [
        ("Tier", "gold", "silver"),
        ("VIP", "—", "true"),
        ("Areas", "—", "east, west"),
        ("gone (deleted custom field)", "old note", "—"),
    ]
    assert custom_lines(created, LABELS) == [
        ("Tier", None, "gold"),
        ("Seats", None, "3"),
        ("gone (deleted custom field)", None, "old note"),
    ]
    # Not the stored column as a whole.
    assert not [line for line in created if line[0] == "Custom fields"]


def test_the_page_shows_the_lines_in_html_in_the_readers_language(customer, manager):
    client = browser(manager)
    url = reverse("admin:customers_customer_history", args=[customer.pk])

    html = client.get(url).content.decode()
    assert "<strong>Tier:</strong> gold&nbsp;&rarr;&nbsp;&nbsp;silver" in html
    assert "<strong>Seats:</strong> 3</li>" in html

    changed, created = history(client, customer, HTTP_ACCEPT_LANGUAGE="zh-hans")
    assert changed[0] == ("等级", "gold", "silver")
    assert changed[-1] == ("gone（已删除的自定义字段）", "old note", "—")
    # A custom field without a Chinese label keeps its own.
    assert ("VIP", "—", "true") in changed and ("席位", None, "3") in created


def test_the_lines_are_the_entries_and_keys_the_apis_history_lists_changed(customer, api, manager):
    customer.custom_fields = {**customer.custom_fields, "seats": 4}
    customer.name = "Ann Renamed"
    customer.save()
    customer.name = "Ann Again"
    customer.save()
    entries = api.get(f"/api/customers/{customer.pk}/history").json()["data"]
    shown = history(browser(manager), customer)

    labels = {"tier": "Tier", "seats": "Seats", "vip": "VIP", "areas": "Areas", "gone": "gone (deleted custom field)"}
    for entry, lines in zip(entries, shown, strict=True):
        [change] = [c for c in entry["changes"] if c["field"] == "custom_fields"] or [None]
        if change is None:
            assert custom_lines(lines, LABELS) == []
            continue
        old, new = change["old"] or {}, change["new"]
        keys = [key for key in labels if old.get(key) != new.get(key)]
        assert [line[0] for line in custom_lines(lines, LABELS)] == [labels[key] for key in keys]
    assert custom_lines(shown[1], LABELS) == [("Seats", "3", "4")]


def test_a_deal_changed_on_its_admin_page_shows_the_change_in_its_history(admin_client):
    CustomField.objects.create(model="opportunities", key="region", label="Region", field_type="text")
    deal = OpportunityFactory(title="Deal", custom_fields={"region": "North"})
    change = reverse("admin:opportunities_opportunity_change", args=[deal.pk])

    response = admin_client.post(change, {**change_form_data(admin_client.get(change)), "cf_region": "South"})

    assert response.status_code == 302
    changed, _created = history(admin_client, deal)
    assert changed == [("Region", "North", "South")]


def test_a_custom_field_whose_key_a_field_took_is_marked_as_on_the_records_page(admin_client):
    CustomField.objects.create(model="opportunities", key="lost_reason", label="Why lost (before)")
    deal = OpportunityFactory(
        stage=Opportunity.Stage.LOST, lost_reason="Price", custom_fields={"lost_reason": "Budget cut"}
    )
    deal.custom_fields = {"lost_reason": "Reorg"}
    deal.save()

    changed, _created = history(admin_client, deal)

    assert changed == [("Why lost (before) (custom field)", "Budget cut", "Reorg")]


def test_a_long_value_is_shortened_and_markup_is_text(admin_client, fields):
    fields["gone"].label = "<i>Gone</i>"
    fields["gone"].save()
    customer = CustomerFactory(custom_fields={"gone": "<b>x</b>" + "a" * 300})
    customer.custom_fields = {"gone": "<b>y</b>" + "a" * 300}
    customer.save()

    html = admin_client.get(reverse("admin:customers_customer_history", args=[customer.pk])).content.decode()
    changed, created = history(admin_client, customer)

    [(label, old, new)] = changed
    assert label == "<i>Gone</i>" and len(old) < 120 and "&lt;b&gt;x" in old and "&lt;b&gt;y" in new
    assert "<b>" not in html and "<i>" not in html and "&lt;i&gt;Gone&lt;/i&gt;" in html
    assert created[-1][2].endswith("…")


def _version_form(client, record, version):
    """The form of the page of ``record``'s past ``version``: {form field: initial value}."""
    opts = record._meta
    url = reverse(f"admin:{opts.app_label}_{opts.model_name}_simple_history", args=[record.pk, version.history_id])
    response = client.get(url)
    assert response.status_code == 200
    return response.context["adminform"].form.initial


@pytest.mark.parametrize("role", ["Sales manager", "Sales rep", "Read-only"])
def test_a_past_versions_page_shows_that_versions_values(customer, role):
    user, client = staff("viewer", role)
    if role == "Sales rep":
        customer.owner = user
        customer.save()
    earlier, later = customer.history.order_by("history_id")[:2]

    initial = _version_form(client, customer, earlier)
    assert (initial["cf_tier"], initial["cf_seats"]) == ("gold", 3) and "cf_vip" not in initial
    initial = _version_form(client, customer, later)
    assert (initial["cf_tier"], initial["cf_vip"], initial["cf_areas"]) == ("silver", "true", ["east", "west"])


def test_a_rep_of_another_book_sees_no_history_of_it(customer, other_rep):
    client = browser(other_rep)
    version = customer.history.earliest()

    for url in (
        reverse("admin:customers_customer_history", args=[customer.pk]),
        reverse("admin:customers_customer_simple_history", args=[customer.pk, version.history_id]),
    ):
        response = client.get(url)
        assert response.status_code == 404 and "silver" not in response.content.decode()


def test_the_history_pages_queries_do_not_grow_with_custom_field_changes(customer, manager):
    client = browser(manager)
    url = reverse("admin:customers_customer_history", args=[customer.pk])
    with CaptureQueriesContext(connection) as few:
        assert client.get(url).status_code == 200
    for n in range(20):
        customer.custom_fields = {**customer.custom_fields, "seats": n + 10, "tier": ["gold", "silver"][n % 2]}
        customer.save()

    with CaptureQueriesContext(connection) as many:
        entries = history(client, customer)

    assert len(entries) == 22 and ("Seats", "28", "29") in entries[0]
    assert len(many) == len(few)
