"""Two staff on one page with inline rows (a customer's deals and tasks, a deal's tasks), posting it as a browser
does: the second save writes only what its user changed, and a row changed, deleted or moved meanwhile is
never written back, recreated or deleted unseen."""

from dataclasses import dataclass

import pytest
from django import forms
from django.contrib import admin
from django.contrib.messages import get_messages
from django.test import RequestFactory
from django.urls import reverse

from companies.models import Company
from core.admin.base import CRMModelForm
from core.admin.inlines import CRMTabularInline, ShownRowsFormSet
from customers.models import Customer
from opportunities.models import Opportunity
from tasks.models import Task
from tests.core.admin.helpers import managers, opened
from tests.factories import CompanyFactory, CustomerFactory, OpportunityFactory, TaskFactory, UserFactory

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

    def move_away(self, row):
        """Someone else moves ``row`` off this page (to another customer, or off the deal)."""
        if isinstance(row, Task) and self.admin_name == "opportunities_opportunity":
            row.opportunity = None
        else:
            row.customer = CustomerFactory()
        row.save()

    def url(self, parent):
        return reverse(f"admin:{self.admin_name}_change", args=[parent.pk])


PAGES = [
    pytest.param(Page("customers_customer", "name", "opportunities", "title", "value", "2500.00"), id="customer-deals"),
    pytest.param(Page("customers_customer", "name", "tasks", "title", "priority", "high"), id="customer-tasks"),
    pytest.param(Page("opportunities_opportunity", "title", "tasks", "title", "priority", "high"), id="deal-tasks"),
]


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


@pytest.mark.parametrize("page", PAGES)
@pytest.mark.parametrize("gone", ["deleted", "moved"])
def test_a_row_gone_meanwhile_is_left_out_and_the_page_saved_with_a_word(page, gone):
    parent, [row] = page.make()
    url = page.url(parent)
    first, second = managers("first", "second")
    first_page, second_page = opened(first, url), opened(second, url)
    if gone == "deleted":
        assert save(first, url, first_page, **{f"{page.prefix}__0__DELETE": "on"}).status_code == 302
    else:
        page.move_away(row)
    before = fresh(row)

    response = save(second, url, second_page, **{page.parent_field: "Changed by the second"})

    assert response.status_code == 302
    assert getattr(fresh(parent), page.parent_field) == "Changed by the second"
    warnings = [str(m) for m in get_messages(response.wsgi_request) if m.level_tag == "warning"]
    assert len(warnings) == 1 and "deleted or moved elsewhere by someone else meanwhile" in warnings[0]
    after = fresh(row)
    assert (after is None, after and after.history.count()) == (before is None, before and before.history.count())


@pytest.mark.parametrize("page", PAGES)
@pytest.mark.parametrize("gone", ["deleted", "moved"])
def test_a_row_gone_meanwhile_that_the_user_changed_is_refused_with_a_message(page, gone):
    parent, [row] = page.make()
    url = page.url(parent)
    (second,) = managers("second")
    second_page = opened(second, url)
    if gone == "deleted":
        row.delete()
    else:
        page.move_away(row)
    rows = type(row)._base_manager.count()

    response = save(
        second, url, second_page, **{f"{page.prefix}__0__{page.row_field}": "Changed", page.parent_field: "Renamed"}
    )

    assert response.status_code == 200
    assert GONE in str(row_errors(response, page.prefix)[0]["__all__"])
    assert GONE in response.content.decode()
    assert type(row)._base_manager.count() == rows
    assert getattr(fresh(parent), page.parent_field) != "Renamed"
    if gone == "moved":
        assert getattr(fresh(row), page.row_field) == row.title


@pytest.mark.parametrize("page", PAGES)
def test_a_row_deleted_meanwhile_and_by_the_user_too_saves_without_a_word(page):
    parent, [row] = page.make()
    url = page.url(parent)
    (second,) = managers("second")
    second_page = opened(second, url)
    row.delete()

    response = save(second, url, second_page, **{f"{page.prefix}__0__DELETE": "on"})

    assert response.status_code == 302
    assert not [m for m in get_messages(response.wsgi_request) if m.level_tag == "warning"]


@pytest.mark.parametrize("page", PAGES)
def test_a_row_changed_meanwhile_is_not_deleted_unseen(page):
    parent, [row] = page.make()
    url = page.url(parent)
    first, second = managers("first", "second")
    first_page, second_page = opened(first, url), opened(second, url)
    assert (
        save(first, url, first_page, **{f"{page.prefix}__0__{page.row_field}": "Changed by the first"}).status_code
        == 302
    )

    response = save(second, url, second_page, **{f"{page.prefix}__0__DELETE": "on"})

    assert response.status_code == 200
    assert CHANGED_MEANWHILE in str(row_errors(response, page.prefix)[0][page.row_field])
    assert getattr(fresh(row), page.row_field) == "Changed by the first"


@pytest.mark.parametrize("page", PAGES)
def test_a_refused_page_shows_each_row_beside_its_own_record(page):
    # Django pairs the posted rows with the rows as they are now: with the first gone, the second row's
    # form went missing and the gone row showed the second's read-only values and link.
    parent, [first_row, second_row] = page.make(rows=2)
    url = page.url(parent)
    (second,) = managers("second")
    second_page = opened(second, url)
    index = next(
        int(name.split("-")[1])
        for name, values in second_page.items()
        if name.endswith("-id") and values == [str(first_row.pk)]
    )
    first_row.delete()

    response = save(second, url, second_page, **{f"{page.prefix}__{index}__{page.row_field}": "Changed"})

    assert response.status_code == 200
    html = response.content.decode()
    for n in (0, 1):
        assert f'name="{page.prefix}-{n}-{page.row_field}"' in html
    originals = [
        form.original
        for form in next(i for i in response.context["inline_admin_formsets"] if i.formset.prefix == page.prefix)
    ]
    assert [getattr(o, "pk", None) for o in originals[:2]] == [None if n == index else second_row.pk for n in (0, 1)]


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
        assert issubclass(inline.form, CRMModelForm) and issubclass(inline.formset, ShownRowsFormSet), inline


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
    assert isinstance(formset, ShownRowsFormSet)
    assert f'name="initial-tasks-0-title" value="{task.title}"' in str(formset.forms[0]["title"])


def test_the_company_pages_read_only_lists_do_not_stop_a_save_when_a_person_went_meanwhile():
    company = CompanyFactory(name="Acme")
    person = CustomerFactory(company=company)
    (second,) = managers("second")
    url = reverse("admin:companies_company_change", args=[company.pk])
    second_page = opened(second, url)
    assert second_page["customers-0-id"] == [str(person.pk)]
    person.delete()

    response = save(second, url, second_page, name="Acme Ltd")

    assert response.status_code == 302
    company.refresh_from_db()
    assert company.name == "Acme Ltd"
    assert Customer.objects.count() == 0


def posted_rows(inline, parent, data, user=None):
    """The rows a post of ``data`` to ``parent``'s page would lock of ``inline`` (``ShownRowsFormSet.posted_rows``)."""
    request = RequestFactory().post("/admin/", data)
    request.user = user or UserFactory(is_staff=True, is_superuser=True)
    formset_class = inline(type(parent), admin.site).get_formset(request, parent)
    return formset_class(request.POST, instance=parent, prefix=formset_class.get_default_prefix()).posted_rows()


def inline_of(model_admin_model, model):
    return next(
        i for i in admin.site._registry[model_admin_model].get_inlines(None, model_admin_model()) if i.model == model
    )


def rows_posted(prefix, ids, total=None, **more):
    data = {f"{prefix}-INITIAL_FORMS": str(len(ids)), f"{prefix}-TOTAL_FORMS": str(total or len(ids)), **more}
    return data | {f"{prefix}-{n}-id": str(pk) for n, pk in enumerate(ids)}


def test_a_post_locks_of_an_inline_only_the_rows_it_names():
    customer = CustomerFactory()
    named, other = OpportunityFactory(customer=customer), OpportunityFactory(customer=customer)
    inline = inline_of(Customer, Opportunity)

    assert posted_rows(inline, customer, rows_posted("opportunities", [named.pk], total=2)) == [named.pk]
    assert posted_rows(inline, customer, rows_posted("opportunities", [other.pk, named.pk])) == sorted(
        [named.pk, other.pk]
    )
    # Ids Django reads as new rows (empty, not a number) lock nothing; more rows than the post has forms, none.
    assert posted_rows(inline, customer, rows_posted("opportunities", ["", "x"])) == []
    assert (
        posted_rows(inline, customer, rows_posted("opportunities", [named.pk]) | {"opportunities-TOTAL_FORMS": "0"})
        == []
    )


def test_a_post_locks_no_row_of_an_inline_read_only_for_its_user_but_those_it_deletes():
    company = CompanyFactory()
    people = [CustomerFactory(company=company) for _ in range(2)]
    deal = OpportunityFactory(customer=people[0])
    assert deal.company_id == company.pk
    people_inline, deals_inline = inline_of(Company, Customer), inline_of(Company, Opportunity)

    assert posted_rows(people_inline, company, rows_posted("customers", [p.pk for p in people])) == []
    assert posted_rows(deals_inline, company, rows_posted("opportunities", [deal.pk])) == []

    class DeletablePeople(people_inline):
        can_delete = True

        def has_delete_permission(self, request, obj=None):
            return True

    deleting_the_second = rows_posted("customers", [p.pk for p in people], **{"customers-1-DELETE": "on"})
    assert posted_rows(DeletablePeople, company, deleting_the_second) == [people[1].pk]


def test_a_posted_row_id_beyond_the_column_range_is_read_as_a_row_gone():
    # The rows a post names are locked by their ids (``posted_rows``): a tampered one out of the column's
    # range finds no row, as Django's own lookup of it does, rather than failing the query.
    customer = CustomerFactory(name="Ann")
    deal = OpportunityFactory(customer=customer, title="Deal")
    (manager,) = managers("manager")
    url = reverse("admin:customers_customer_change", args=[customer.pk])

    response = save(manager, url, opened(manager, url), opportunities__0__id="9" * 25, name="Ann B")

    assert response.status_code == 302
    assert fresh(customer).name == "Ann B" and fresh(deal).title == "Deal"
