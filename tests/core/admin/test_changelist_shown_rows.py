"""Two staff on one editable list (the opportunities list), posting it as a browser does: a row whose record was
deleted, or left the user's book, since the page was shown is left out when left as shown and refused, with a
message on that row, when changed; nothing is written to a record the user may no longer change."""

import re

import pytest
from django.contrib import admin
from django.contrib.messages import get_messages
from django.test import RequestFactory
from django.urls import reverse

from core.admin.base import CRMModelForm, ShownRowsFormSet
from core.models import CustomField
from opportunities.models import Opportunity
from tests.core.admin import helpers
from tests.core.admin.helpers import browser_form_data, staff
from tests.factories import CustomerFactory, OpportunityFactory, UserFactory

pytestmark = pytest.mark.django_db

URL = reverse("admin:opportunities_opportunity_changelist")
GONE = "Deleted or moved elsewhere by someone else since this page was shown"
GONE_WARNING = "deleted or moved elsewhere by someone else meanwhile"
CHANGED_MEANWHILE = "Changed by someone else since this page was shown"


def opened(client, url=URL):
    return helpers.opened(client, url, r"changelist-form")


def row_index(data, pk):
    """The index of the row of the record ``pk`` in the posted list."""
    return next(
        int(name.split("-")[1]) for name, values in data.items() if name.endswith("-id") and values == [str(pk)]
    )


def save(client, data, changes=None, url=URL):
    """Post the list ``data`` as shown, with ``changes`` ({(record's pk, field): value}) typed into its rows."""
    changed = {f"form-{row_index(data, pk)}-{field}": [value] for (pk, field), value in (changes or {}).items()}
    return client.post(url, {**data, **changed, "_save": ["Save"]})


def warnings(response):
    return [str(m) for m in get_messages(response.wsgi_request) if m.level_tag == "warning"]


def fresh(record):
    return Opportunity._base_manager.filter(pk=record.pk).first()


def versions(record):
    return record.history.count()


class Book:
    """A rep's list, of two deals of theirs: ``gone`` is taken away meanwhile (deleted, or given to another rep)."""

    def __init__(self, how):
        self.how = how
        self.rep, self.client = staff("rep", "Sales rep")
        self.kept = OpportunityFactory(customer=CustomerFactory(owner=self.rep), title="Kept deal")
        self.gone = OpportunityFactory(customer=CustomerFactory(owner=self.rep), title="Gone deal")
        self.gone_pk = self.gone.pk

    def take_away(self):
        if self.how == "deleted":
            self.gone.delete()
        else:
            customer = self.gone.customer
            customer.owner = UserFactory(username="other-rep")
            customer.save()


GONE_HOW = ["deleted", "out-of-book"]


@pytest.mark.parametrize("how", GONE_HOW)
def test_a_row_gone_meanwhile_and_left_as_shown_is_left_out_and_the_other_rows_saved_with_a_word(how):
    book = Book(how)
    page = opened(book.client)
    book.take_away()
    before = fresh(book.gone)

    response = save(book.client, page, {(book.kept.pk, "probability"): "35"})

    assert response.status_code == 302
    assert fresh(book.kept).probability == 35
    [warning] = warnings(response)
    assert warning.startswith("1 opportunity") and GONE_WARNING in warning
    after = fresh(book.gone)
    assert (after is None, after and versions(after)) == (before is None, before and versions(before))


@pytest.mark.parametrize("how", GONE_HOW)
def test_a_row_gone_meanwhile_that_the_user_changed_is_refused_with_a_message_on_that_row(how):
    book = Book(how)
    page = opened(book.client)
    book.take_away()
    before = fresh(book.gone)

    response = save(
        book.client,
        page,
        {
            (book.gone_pk, "stage"): Opportunity.Stage.PROPOSAL,
            (book.gone_pk, "probability"): "55",
            (book.kept.pk, "probability"): "35",
        },
    )

    assert response.status_code == 200
    html = response.content.decode()
    assert GONE in html
    # The message stands in the row above the gone row's own inputs, not somewhere else on the page.
    index = row_index(page, book.gone_pk)
    message_at, inputs_at = html.index(GONE), html.index(f'name="form-{index}-stage"')
    assert message_at < inputs_at and html[message_at:inputs_at].count("<tr") == 1
    assert GONE in str(response.context["cl"].formset.errors[index]["__all__"])
    # Nothing is written: neither the gone record nor the other row of the refused list.
    assert fresh(book.kept).probability == book.kept.probability
    after = fresh(book.gone)
    if how == "deleted":
        assert after is None and Opportunity._base_manager.count() == 1
    else:
        assert (after.stage, after.probability, versions(after)) == (before.stage, before.probability, versions(before))


@pytest.mark.parametrize("how", GONE_HOW)
def test_a_refused_list_shows_each_row_beside_its_own_record(how):
    # Django pairs the posted rows with the list's rows as they are now: with a row gone, the rows below it
    # showed the inputs of the row above, and the last row's inputs and id were not on the page at all.
    CustomField.objects.create(model="opportunities", key="region", label="Region", show_in_list=True)
    book = Book(how)
    for deal in (book.gone, book.kept):
        deal.custom_fields = {"region": "North"}
        deal.tags = ["VIP"]
        deal.save()
    page = opened(book.client)
    assert row_index(page, book.gone_pk) < row_index(page, book.kept.pk)  # newest first
    book.take_away()
    OpportunityFactory(customer=CustomerFactory(owner=book.rep), title="New deal")  # on top of the list meanwhile

    response = save(book.client, page, {(book.kept.pk, "probability"): "101"})

    assert response.status_code == 200
    changelist = response.context["cl"]
    posted = [int(page[f"form-{index}-id"][0]) for index in range(len(changelist.formset.forms))]
    assert [row.pk for row in changelist.result_list] == posted
    # The gone row stands beside an empty record of its id: nothing of what it holds now is shown.
    gone_row = changelist.result_list[row_index(page, book.gone_pk)]
    assert (gone_row.title, gone_row.value, gone_row.tags, gone_row.custom_fields) == ("", None, None, None)
    html = response.content.decode()
    assert "Gone deal" not in html
    for index in range(len(posted)):
        assert f'name="form-{index}-id"' in html and f'name="form-{index}-stage"' in html
    kept_row = re.search(r"<tr>(?:(?!<tr>).)*?Kept deal.*?</tr>", html, re.S).group(0)
    assert f'name="form-{row_index(page, book.kept.pk)}-probability"' in kept_row
    assert "New deal" not in html.split('id="result_list"', 1)[1]

    # Posted again as the refused page shows it, the probability corrected: the list saves.
    again = browser_form_data(html, r"changelist-form")
    again[f"form-{row_index(page, book.kept.pk)}-probability"] = ["45"]
    assert book.client.post(URL, {**again, "_save": ["Save"]}).status_code == 302
    assert fresh(book.kept).probability == 45


def test_a_row_changed_meanwhile_by_someone_else_is_still_refused_on_the_list():
    _, first = staff("first", "Sales manager")
    _, second = staff("second", "Sales manager")
    deal = OpportunityFactory(title="Deal")
    first_page, second_page = opened(first), opened(second)
    assert save(first, first_page, {(deal.pk, "probability"): "30"}).status_code == 302

    response = save(second, second_page, {(deal.pk, "stage"): Opportunity.Stage.PROPOSAL})

    assert response.status_code == 200
    assert CHANGED_MEANWHILE in str(response.context["cl"].formset.errors[0]["probability"])
    assert (fresh(deal).stage, fresh(deal).probability) == (Opportunity.Stage.LEAD, 30)


def test_a_row_that_left_the_lists_filter_meanwhile_is_still_saved_as_its_user_changed_it():
    # Still in the user's book: the record the user saw, whose shown values are still its own.
    _, manager = staff("manager", "Sales manager")
    _, other = staff("other", "Sales manager")
    deal = OpportunityFactory(title="Deal", value="5000.00")
    url = f"{URL}?value_min=1000"
    page = opened(manager, url)
    assert page["form-0-id"] == [str(deal.pk)]
    # Someone else lowers its value on the deal's own page: it is no longer in the list's filter.
    deal_url = reverse("admin:opportunities_opportunity_change", args=[deal.pk])
    deal_page = browser_form_data(other.get(deal_url).content.decode())
    assert other.post(deal_url, {**deal_page, "value": ["500.00"], "_save": ["Save"]}).status_code == 302

    response = save(manager, page, {(deal.pk, "probability"): "35"}, url=url)

    assert response.status_code == 302
    assert not warnings(response)
    assert (fresh(deal).probability, fresh(deal).value) == (35, 500)


def test_a_tampered_row_id_is_neither_a_server_error_nor_a_write():
    _, manager = staff("manager", "Sales manager")
    deal = OpportunityFactory(title="Deal")
    page = opened(manager)
    page["form-0-id"] = ["not-a-number"]

    response = manager.post(URL, {**page, "form-0-probability": ["35"], "_save": ["Save"]})

    assert response.status_code == 200
    assert GONE in response.content.decode()
    assert fresh(deal).probability == deal.probability


def test_every_editable_list_of_the_admin_reads_its_rows_against_those_shown():
    request = RequestFactory().get("/admin/")
    request.user = UserFactory(is_staff=True, is_superuser=True)
    editable = [model_admin for model_admin in admin.site._registry.values() if model_admin.list_editable]
    assert Opportunity in {model_admin.model for model_admin in editable}
    for model_admin in editable:
        formset = model_admin.get_changelist_formset(request)
        assert issubclass(formset, ShownRowsFormSet) and issubclass(formset.form, CRMModelForm), model_admin
