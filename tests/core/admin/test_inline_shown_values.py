"""Two staff on one page with inline rows (a customer's deals and tasks, a deal's tasks), posting it as a browser
does: the second save writes only what its user changed, and a row changed meanwhile is never written back."""

from dataclasses import dataclass

import pytest
from django import forms
from django.contrib import admin
from django.contrib.auth.models import Group
from django.test import Client, RequestFactory
from django.urls import reverse

from core.admin.base import CRMModelForm
from core.admin.inlines import CRMTabularInline
from customers.models import Customer
from opportunities.models import Opportunity
from tasks.models import Task
from tests.core.admin.helpers import browser_form_data
from tests.factories import CustomerFactory, OpportunityFactory, TaskFactory, UserFactory

pytestmark = pytest.mark.django_db

CHANGED_MEANWHILE = "Changed by someone else since this page was shown"
GONE = "Deleted or moved elsewhere by someone else since this page was shown"


@dataclass
class Page:
    """A parent page with an inline: how to make the parent and its rows, and which fields to change."""

    admin_name: str
    parent_field: str
    prefix: str
    row_field: str
    other_row_field: str
    other_row_value: str

    def make(self, rows=1):
        if self.admin_name == "customers_customer":
            parent = CustomerFactory(name="Ann")
        else:
            parent = OpportunityFactory(title="Deal")
        return parent, [self.make_row(parent, n) for n in range(rows)]

    def make_row(self, parent, n):
        if self.prefix == "opportunities":
            return OpportunityFactory(customer=parent, title=f"Row {n}")
        if isinstance(parent, Customer):
            return TaskFactory(customer=parent, title=f"Row {n}")
        return TaskFactory(customer=parent.customer, opportunity=parent, title=f"Row {n}")

    def url(self, parent):
        return reverse(f"admin:{self.admin_name}_change", args=[parent.pk])


PAGES = [
    pytest.param(Page("customers_customer", "name", "opportunities", "title", "value", "2500.00"), id="customer-deals"),
    pytest.param(Page("customers_customer", "name", "tasks", "title", "priority", "high"), id="customer-tasks"),
    pytest.param(Page("opportunities_opportunity", "title", "tasks", "title", "priority", "high"), id="deal-tasks"),
]


def managers(*names):
    clients = []
    for name in names:
        user = UserFactory(username=name, is_staff=True)
        user.groups.add(Group.objects.get(name="Sales manager"))
        client = Client()
        client.force_login(user)
        clients.append(client)
    return clients


def opened(client, url):
    page = client.get(url)
    assert page.status_code == 200
    return browser_form_data(page.content.decode())


def save(client, url, data, **changes):
    changed = {name.replace("__", "-"): [value] for name, value in changes.items()}
    return client.post(url, {**data, **changed, "_save": ["Save"]})


def row_errors(response, prefix):
    """The errors of each row of the inline ``prefix`` on a refused page."""
    for inline in response.context["inline_admin_formsets"]:
        if inline.formset.prefix == prefix:
            return inline.formset.errors
    raise AssertionError(prefix)


def fresh(row):
    return type(row)._base_manager.filter(pk=row.pk).first()


@pytest.mark.parametrize("page", PAGES)
def test_a_row_changed_meanwhile_is_not_written_back_by_a_save_of_the_page(page):
    parent, [row] = page.make()
    url = page.url(parent)
    first, second = managers("first", "second")
    first_page, second_page = opened(first, url), opened(second, url)

    assert (
        save(first, url, first_page, **{f"{page.prefix}__0__{page.row_field}": "Changed by the first"}).status_code
        == 302
    )
    assert save(second, url, second_page, **{page.parent_field: "Changed by the second"}).status_code == 302

    assert getattr(fresh(row), page.row_field) == "Changed by the first"
    assert getattr(fresh(parent), page.parent_field) == "Changed by the second"


@pytest.mark.parametrize("page", PAGES)
@pytest.mark.parametrize("same_field", [True, False], ids=["same-field", "other-field"])
def test_a_row_changed_meanwhile_and_by_the_user_too_is_refused_and_the_first_change_kept(page, same_field):
    parent, [row] = page.make()
    url = page.url(parent)
    first, second = managers("first", "second")
    first_page, second_page = opened(first, url), opened(second, url)
    assert (
        save(first, url, first_page, **{f"{page.prefix}__0__{page.row_field}": "Changed by the first"}).status_code
        == 302
    )

    name, value = (
        (page.row_field, "Changed by the second") if same_field else (page.other_row_field, page.other_row_value)
    )
    response = save(second, url, second_page, **{f"{page.prefix}__0__{name}": value, page.parent_field: "Renamed"})

    assert response.status_code == 200
    assert CHANGED_MEANWHILE in str(row_errors(response, page.prefix)[0][page.row_field])
    assert CHANGED_MEANWHILE in response.content.decode()
    assert getattr(fresh(row), page.row_field) == "Changed by the first"
    assert str(getattr(fresh(row), page.other_row_field)) != page.other_row_value
    assert getattr(fresh(parent), page.parent_field) != "Renamed"


def inlines_of_every_admin():
    request = RequestFactory().get("/admin/")
    for model, model_admin in admin.site._registry.items():
        for obj in (None, model()):
            for inline in model_admin.get_inlines(request, obj):
                yield model, inline


def test_every_inline_of_the_admin_carries_the_shown_values():
    found = {inline for _model, inline in inlines_of_every_admin()}
    assert {Opportunity, Task, Customer} <= {inline.model for inline in found}
    for inline in found:
        assert issubclass(inline, CRMTabularInline), inline
        assert issubclass(inline.form, CRMModelForm), inline


def test_an_inline_given_a_plain_model_form_and_formset_gets_them_carrying_the_shown_values():
    class PlainForm(forms.ModelForm):
        class Meta:
            model = Task
            fields = ["title"]

    class PlainInline(CRMTabularInline):
        model = Task
        fk_name = "customer"
        form = PlainForm
        fields = ["title"]

    request = RequestFactory().get("/admin/")
    request.user = UserFactory(is_staff=True, is_superuser=True)
    customer = CustomerFactory()
    task = TaskFactory(customer=customer, title="Call")
    formset = PlainInline(Customer, admin.site).get_formset(request, customer)(instance=customer)
    assert issubclass(formset.form, PlainForm) and issubclass(formset.form, CRMModelForm)
    assert f'name="initial-tasks-0-title" value="{task.title}"' in str(formset.forms[0]["title"])
