"""Saving a record's admin page as a browser posts it: the values the page showed come back as the browser
sends them (line breaks as CRLF, text as typed), and a record nobody else changed is saved, whatever it holds."""

import pytest
from django.urls import reverse

from core.models import CustomField
from tests.core.admin.helpers import browser_form_data
from tests.factories import CompanyFactory, CustomerFactory, OpportunityFactory, TaskFactory

pytestmark = pytest.mark.django_db


def save_as_a_browser(client, url, **changes):
    page = client.get(url)
    assert page.status_code == 200
    data = browser_form_data(page.content.decode())
    data.update({name: [value] for name, value in changes.items()})
    data["_save"] = ["Save"]
    return client.post(url, data)


def refused_fields(response):
    return dict(response.context["adminform"].form.errors) if response.context else None


@pytest.mark.parametrize(
    ("make", "admin_name", "changes"),
    [
        # Multi-line text stored with LF (the API, imports, the mail gateway store it so).
        (
            lambda: CompanyFactory(notes="line one\nline two", address="1 Road\nTown"),
            "companies_company",
            {"name": "Acme Ltd"},
        ),
        (lambda: TaskFactory(notes="x\ny"), "tasks_task", {"title": "Call back"}),
        # Text stored with spaces around it, which the form's reading strips.
        (lambda: CompanyFactory(name="Acme ", industry=" x"), "companies_company", {"phone": "+1 202 555 0100"}),
        (lambda: CustomerFactory(name="Ann"), "customers_customer", {"name": "Ann B"}),
        (lambda: OpportunityFactory(title="Deal"), "opportunities_opportunity", {"title": "Deal 2"}),
    ],
)
def test_a_record_nobody_else_changed_is_saved(admin_client, make, admin_name, changes):
    record = make()
    response = save_as_a_browser(admin_client, reverse(f"admin:{admin_name}_change", args=[record.pk]), **changes)
    assert response.status_code == 302, refused_fields(response)
    record.refresh_from_db()
    for name, value in changes.items():
        assert getattr(record, name) == value


@pytest.mark.parametrize(
    ("kind", "value"),
    [
        ("text", " pad "),
        ("long_text", "a\nb"),
        ("decimal", 12.5),
        ("number", 3),
        ("date", "2026-05-01"),
        ("boolean", False),
        ("url", "https://x.example/"),
    ],
)
def test_a_custom_field_left_as_shown_lets_the_record_be_saved(admin_client, kind, value):
    CustomField.objects.create(model="customers", key="f", label="F", field_type=kind)
    customer = CustomerFactory(name="Ann", custom_fields={"f": value})
    url = reverse("admin:customers_customer_change", args=[customer.pk])
    response = save_as_a_browser(admin_client, url, name="Ann 2")
    assert response.status_code == 302, refused_fields(response)
    customer.refresh_from_db()
    assert customer.name == "Ann 2"


def test_a_list_saved_as_shown_writes_no_row(admin_client):
    first, second = OpportunityFactory(title="A"), OpportunityFactory(title="B")
    url = reverse("admin:opportunities_opportunity_changelist")
    page = admin_client.get(url)
    data = browser_form_data(page.content.decode(), r"changelist-form")
    data["_save"] = ["Save"]
    history = {deal.pk: deal.history.count() for deal in (first, second)}
    assert admin_client.post(url, data).status_code == 302
    assert {deal.pk: deal.history.count() for deal in (first, second)} == history
