"""Custom fields in the admin: typed form fields, list columns and filters, import/export round trip."""

from decimal import Decimal

import pytest
from django.contrib.auth.models import Group
from django.test import Client
from django.urls import reverse

from core.models import CustomField
from customers.models import Customer
from tests.core.admin.helpers import change_form_data, import_rows
from tests.factories import CustomerFactory, UserFactory

pytestmark = pytest.mark.django_db


@pytest.fixture
def fields():
    return {
        "tier": CustomField.objects.create(
            model="customers",
            key="tier",
            label="Tier",
            label_zh="等级",
            field_type="choice",
            choices=["gold", "silver"],
            show_in_list=True,
            filterable=True,
        ),
        "seats": CustomField.objects.create(
            model="customers", key="seats", label="Seats", field_type="number", required=True, show_in_list=True
        ),
        "renewal": CustomField.objects.create(model="customers", key="renewal", label="Renewal", field_type="date"),
        "vip": CustomField.objects.create(
            model="customers", key="vip", label="VIP", field_type="boolean", filterable=True
        ),
    }


def form_data(response):
    return change_form_data(response)


def test_change_form_has_typed_fields_and_saves_through_the_rules(admin_client, fields):
    customer = CustomerFactory(name="Ann", custom_fields={"seats": 3, "hidden": "kept"})
    change = reverse("admin:customers_customer_change", args=[customer.pk])
    page = admin_client.get(change)
    form = page.context["adminform"].form
    assert type(form.fields["cf_seats"]).__name__ == "IntegerField"
    assert type(form.fields["cf_renewal"]).__name__ == "DateField"
    assert form.initial["cf_seats"] == 3
    data = {**form_data(page), "cf_seats": "12", "cf_tier": "gold", "cf_renewal": "2026-05-01", "cf_vip": "true"}
    data.pop("cf_vip_unused", None)
    response = admin_client.post(change, data)
    assert response.status_code == 302, response.context["adminform"].form.errors
    customer.refresh_from_db()
    assert customer.custom_fields == {
        "seats": 12,
        "tier": "gold",
        "renewal": "2026-05-01",
        "vip": True,
        "hidden": "kept",
    }


def test_required_and_bad_values_are_form_errors(admin_client, fields):
    customer = CustomerFactory(name="Ann")
    change = reverse("admin:customers_customer_change", args=[customer.pk])
    data = {**form_data(admin_client.get(change)), "cf_tier": "platinum"}
    data.pop("cf_seats", None)
    response = admin_client.post(change, data)
    assert response.status_code == 200
    errors = response.context["adminform"].form.errors
    assert "cf_seats" in errors and "cf_tier" in errors
    customer.refresh_from_db()
    assert customer.custom_fields == {}


def test_labels_follow_the_language(admin_client, fields):
    customer = CustomerFactory()
    page = admin_client.get(
        reverse("admin:customers_customer_change", args=[customer.pk]), HTTP_ACCEPT_LANGUAGE="zh-hans"
    )
    assert "等级" in page.content.decode()


def test_list_columns_sorting_and_filters(admin_client, fields):
    CustomerFactory(name="A", custom_fields={"tier": "gold", "seats": 5, "vip": True})
    CustomerFactory(name="B", custom_fields={"tier": "silver", "seats": 50})
    changelist = reverse("admin:customers_customer_changelist")
    page = admin_client.get(changelist)
    text = page.content.decode()
    assert "Tier" in text and "Seats" in text
    filtered = admin_client.get(changelist, {"cf_tier": "gold"})
    assert [c.name for c in filtered.context["cl"].result_list] == ["A"]
    vip = admin_client.get(changelist, {"cf_vip": "true"})
    assert [c.name for c in vip.context["cl"].result_list] == ["A"]
    bad = admin_client.get(changelist, {"cf_tier": "platinum"})
    assert bad.status_code in (200, 302)
    # Sorted by the Seats column (its index in list_display, 1-based).
    columns = [getattr(c, "__name__", c) for c in page.context["cl"].list_display]
    index = columns.index("cf_seats")
    ordered = admin_client.get(changelist, {"o": f"-{index}"})
    assert [c.name for c in ordered.context["cl"].result_list][:2] == ["B", "A"]


def test_import_by_key_and_labels_then_export(admin_client, fields):
    url = reverse("admin:customers_customer_changelist")
    rows = [
        ["name", "email", "Tier", "seats", "等级x", "renewal", "VIP"],
        ["Imported", "imp@example.com", "Gold", "7", "", "2026-02-01", "yes"],
    ]
    response = import_rows(admin_client, url, rows)
    assert response.status_code in (200, 302)
    customer = Customer.objects.get(email="imp@example.com")
    assert customer.custom_fields == {"tier": "gold", "seats": 7, "renewal": "2026-02-01", "vip": True}


def test_import_refuses_bad_cells(admin_client, fields):
    from tests.core.admin.helpers import upload

    url = reverse("admin:customers_customer_changelist")
    preview = upload(admin_client, url, [["name", "seats"], ["Bad", "many"]])
    assert preview.context.get("confirm_form") is None
    assert not Customer.objects.filter(name="Bad").exists()


def test_export_has_a_column_per_field(admin_user, fields):
    from customers.resources import CustomerResource

    CustomerFactory(name="A", custom_fields={"tier": "gold", "seats": 5, "vip": False, "gone": "x"})
    dataset = CustomerResource(user=admin_user).export()
    assert dataset.headers[-4:] == ["tier", "seats", "renewal", "vip"]
    assert list(dataset[0])[-4:] == ["gold", 5, "", "false"]


def test_only_managers_define_fields_in_the_admin(fields):
    rep = UserFactory(is_staff=True)
    rep.groups.add(Group.objects.get(name="Sales rep"))
    client = Client()
    client.force_login(rep)
    assert client.get(reverse("admin:core_customfield_changelist")).status_code == 200
    response = client.post(
        reverse("admin:core_customfield_add"), {"model": "customers", "key": "x", "label": "X", "field_type": "text"}
    )
    assert response.status_code == 403
    assert not CustomField.objects.filter(key="x").exists()


def test_definition_form_applies_the_rules(admin_client, fields):
    add = reverse("admin:core_customfield_add")
    base = {"model": "customers", "label": "X", "field_type": "choice", "order": "0", "choices": "a\nb"}
    assert admin_client.post(add, {**base, "key": "email"}).status_code == 200
    assert admin_client.post(add, {**base, "key": "tier"}).status_code == 200
    assert admin_client.post(add, {**base, "key": "ok", "choices": ""}).status_code == 200
    assert admin_client.post(add, {**base, "key": "ok"}).status_code == 302
    assert CustomField.objects.get(key="ok").choices == ["a", "b"]


def test_revert_brings_back_custom_field_values(admin_client, fields):
    customer = CustomerFactory(name="Ann", custom_fields={"seats": 1})
    customer.custom_fields = {"seats": 2}
    customer.save()
    version = customer.history.earliest().history_id
    target = reverse("admin:customers_customer_simple_history", args=[customer.pk, version])
    response = admin_client.post(target, change_form_data(admin_client.get(target)))
    assert response.status_code == 302
    customer.refresh_from_db()
    assert customer.custom_fields == {"seats": 1}


@pytest.mark.parametrize("model", ["companies", "opportunities"])
def test_company_and_opportunity_forms_have_their_fields(admin_client, model):
    from tests.factories import CompanyFactory, OpportunityFactory

    CustomField.objects.create(model=model, key="code", label="Code", required=True)
    record = CompanyFactory() if model == "companies" else OpportunityFactory()
    name = record._meta.model_name
    change = reverse(f"admin:{record._meta.app_label}_{name}_change", args=[record.pk])
    page = admin_client.get(change)
    assert "cf_code" in page.context["adminform"].form.fields
    missing = admin_client.post(change, change_form_data(page))
    assert missing.status_code == 200 and "cf_code" in missing.context["adminform"].form.errors
    saved = admin_client.post(change, {**change_form_data(page), "cf_code": "K-1"})
    assert saved.status_code == 302
    record.refresh_from_db()
    assert record.custom_fields == {"code": "K-1"}


def test_read_only_users_see_the_values(fields):
    customer = CustomerFactory(name="Ann", custom_fields={"tier": "gold", "seats": 4})
    viewer = UserFactory(is_staff=True)
    viewer.groups.add(Group.objects.get(name="Read-only"))
    client = Client()
    client.force_login(viewer)
    page = client.get(reverse("admin:customers_customer_change", args=[customer.pk]))
    assert page.status_code == 200
    text = page.content.decode()
    assert "Tier" in text and "gold" in text and "Seats" in text


def test_stored_dates_and_decimals_left_as_shown_are_no_change(admin_client, fields):
    CustomField.objects.create(model="customers", key="budget", label="Budget", field_type="decimal")
    customer = CustomerFactory(name="Ann", custom_fields={"seats": 3, "renewal": "2026-05-01", "budget": 1.1})
    change = reverse("admin:customers_customer_change", args=[customer.pk])
    page = admin_client.get(change)
    assert page.context["adminform"].form.initial["cf_budget"] == Decimal("1.1")

    # Saved with another field changed: neither reads as changed by someone else meanwhile.
    response = admin_client.post(change, {**form_data(page), "name": "Ann Lee"})

    assert response.status_code == 302, response.context["adminform"].form.errors
    customer.refresh_from_db()
    assert (customer.name, customer.custom_fields) == ("Ann Lee", {"seats": 3, "renewal": "2026-05-01", "budget": 1.1})
