"""Saving a record's admin page as a browser posts it: the values the page showed come back as the browser
sends them (line breaks as CRLF, text as typed), and a record nobody else changed is saved, whatever it holds."""

import pytest
from django.http import QueryDict
from django.urls import reverse

from core.admin.base import ShownMultipleHiddenInput
from core.models import CustomField, Tag
from tests.core.admin.helpers import browser_form_data, managers, opened
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


def post(client, url, data, **changes):
    return client.post(
        url,
        {
            **data,
            **{name: value if isinstance(value, list) else [value] for name, value in changes.items()},
            "_save": ["Save"],
        },
    )


TAGGED = [
    (CustomerFactory, "customers_customer"),
    (CompanyFactory, "companies_company"),
    (OpportunityFactory, "opportunities_opportunity"),
]


@pytest.mark.parametrize(("make", "admin_name"), TAGGED)
def test_tags_shown_empty_and_chosen_by_someone_else_meanwhile_are_not_taken_away(make, admin_name):
    record = make()
    vip = Tag.objects.create(name="VIP")
    first, second = managers("first", "second")
    url = reverse(f"admin:{admin_name}_change", args=[record.pk])
    first_page, second_page = opened(first, url), opened(second, url)

    assert post(first, url, first_page, tags=[str(vip.pk)]).status_code == 302
    response = post(second, url, second_page, external_id="X-1")

    assert response.status_code == 200
    assert "Changed by someone else since this page was shown" in str(response.context["adminform"].form.errors["tags"])
    record.refresh_from_db()
    assert record.tags == ["VIP"]
    assert not record.external_id


@pytest.mark.parametrize(("make", "admin_name"), TAGGED)
def test_tags_shown_empty_are_saved_as_the_user_chose(make, admin_name):
    record = make()
    vip = Tag.objects.create(name="VIP")
    (client,) = managers("first")
    url = reverse(f"admin:{admin_name}_change", args=[record.pk])

    assert post(client, url, opened(client, url), external_id="X-1").status_code == 302
    record.refresh_from_db()
    assert (record.tags, record.external_id) == ([], "X-1")
    assert post(client, url, opened(client, url), tags=[str(vip.pk)]).status_code == 302
    record.refresh_from_db()
    assert record.tags == ["VIP"]


def test_a_multi_choice_custom_field_shown_empty_and_set_meanwhile_is_not_emptied():
    CustomField.objects.create(
        model="customers", key="labels", label="Labels", field_type="multi_choice", choices=["vip", "eu"]
    )
    customer = CustomerFactory(name="Ann")
    first, second = managers("first", "second")
    url = reverse("admin:customers_customer_change", args=[customer.pk])
    first_page, second_page = opened(first, url), opened(second, url)

    assert post(first, url, first_page, cf_labels=["vip", "eu"]).status_code == 302
    response = post(second, url, second_page, name="Ann B")

    assert response.status_code == 200
    assert "Changed by someone else" in str(response.context["adminform"].form.errors["cf_labels"])
    customer.refresh_from_db()
    assert (customer.name, sorted(customer.custom_fields["labels"])) == ("Ann", ["eu", "vip"])


def test_tags_shown_and_taken_away_by_the_user_are_taken_away():
    vip = Tag.objects.create(name="VIP")
    customer = CustomerFactory(name="Ann", tags=["VIP"])
    (first,) = managers("first")
    url = reverse("admin:customers_customer_change", args=[customer.pk])
    page = opened(first, url)
    assert page["initial-tags"] == ["", str(vip.pk)]
    assert post(first, url, page, tags=[]).status_code == 302
    customer.refresh_from_db()
    assert customer.tags == []


@pytest.mark.parametrize("values", [[], ["1"], ["1", "2"], [""], ["", "3"]])
def test_the_shown_values_of_a_multi_select_come_back_as_shown(values):
    html = ShownMultipleHiddenInput().render("initial-tags", values)
    posted = QueryDict(mutable=True)
    for data in browser_form_data(f'<form id="x_form">{html}</form>').values():
        posted.setlist("initial-tags", data)
    widget = ShownMultipleHiddenInput()
    assert widget.value_from_datadict(posted, {}, "initial-tags") == values
    assert not widget.value_omitted_from_data(posted, {}, "initial-tags")


def test_a_post_without_the_shown_values_of_a_multi_select_is_compared_with_the_record():
    assert ShownMultipleHiddenInput().value_omitted_from_data(QueryDict(), {}, "initial-tags")
