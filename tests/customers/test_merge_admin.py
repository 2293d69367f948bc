"""The admin's merge: the "Merge selected" action and the side-by-side page, for customers and companies."""

import html
import json
import re

import pytest
from django.contrib.auth.models import Group
from django.test import Client

from companies.models import Company
from core.changesets import Changeset
from core.models import MergedRecord
from customers.models import Customer
from customers.services import MERGE_FIELDS
from interactions.models import Interaction
from tests.conftest import browser
from tests.factories import CompanyFactory, CustomerFactory, InteractionFactory, StaffFactory, UserFactory

URL = "/admin/customers/customer/"
MERGE = f"{URL}merge/"

pytestmark = pytest.mark.django_db


@pytest.fixture
def client(db):
    client = Client()
    client.force_login(StaffFactory())
    return client


def versions(*records):
    return {f"version:{r.pk}": Customer.objects.get(pk=r.pk).updated_at.isoformat() for r in records}


def test_the_action_leads_to_the_side_by_side_page(client):
    first, second = CustomerFactory(), CustomerFactory()

    response = client.post(URL, {"action": "merge_selected", "_selected_action": [second.pk, first.pk]})

    assert response.status_code == 302
    assert response["Location"] == f"{MERGE}?ids={first.pk}%2C{second.pk}"


def test_the_action_wants_at_least_two_records(client):
    only = CustomerFactory()

    response = client.post(URL, {"action": "merge_selected", "_selected_action": [only.pk]}, follow=True)

    assert "Select between 2 and 11 records to merge." in response.content.decode()


def test_the_page_shows_a_column_per_record_the_preselected_values_and_what_moves(client):
    survivor = CustomerFactory(name="王伟", phone="")
    other = CustomerFactory(name="Wang Wei", phone="+8613800138000")
    InteractionFactory.create_batch(2, customer=other)

    response = client.get(MERGE, {"ids": f"{survivor.pk},{other.pk}"})

    page = response.content.decode()
    assert response.status_code == 200
    assert f'name="survivor" value="{survivor.pk}" checked' in page
    # The survivor's name; its empty phone gives way to the other's.
    assert f'name="field:name" value="{survivor.pk}" checked' in page
    assert f'name="field:phone" value="{other.pk}" checked' in page
    assert response.context["preview"]["moved"]["interactions"] == 2
    assert response.context["preview"]["values"]["phone"] == "+8613800138000"
    # The preview wrote nothing.
    assert Customer.objects.filter(pk=other.pk).exists() and not MergedRecord.objects.exists()


def test_confirming_merges_with_the_chosen_values(client):
    survivor, other = CustomerFactory(name="Keep"), CustomerFactory(name="Better name")
    InteractionFactory(customer=other)

    response = client.post(
        f"{MERGE}?ids={survivor.pk},{other.pk}",
        {"survivor": survivor.pk, "field:name": other.pk, "confirm": "yes", **versions(survivor, other)},
    )

    assert response.status_code == 302 and response["Location"] == f"{URL}{survivor.pk}/change/"
    survivor.refresh_from_db()
    assert survivor.name == "Better name"
    assert not Customer.objects.filter(pk=other.pk).exists()
    assert Interaction.objects.filter(customer=survivor).count() == 1


def test_the_other_record_may_be_the_survivor(client):
    first, second = CustomerFactory(), CustomerFactory()

    client.post(
        f"{MERGE}?ids={first.pk},{second.pk}", {"survivor": second.pk, "confirm": "yes", **versions(first, second)}
    )

    assert list(Customer.objects.values_list("pk", flat=True)) == [second.pk]


def test_a_record_changed_since_the_page_was_shown_is_not_merged(client):
    survivor, other = CustomerFactory(), CustomerFactory()
    seen = versions(survivor, other)
    other.name = "Changed meanwhile"
    other.save()

    response = client.post(f"{MERGE}?ids={survivor.pk},{other.pk}", {"survivor": survivor.pk, "confirm": "yes", **seen})

    assert response.status_code == 200
    assert "changed meanwhile" in response.content.decode()
    assert Customer.objects.filter(pk=other.pk).exists()


@pytest.mark.parametrize("ids", ["", "x,1", "5", "1,1"])
def test_a_page_without_two_distinct_ids_goes_back_to_the_list(client, ids):
    response = client.get(MERGE, {"ids": ids})

    assert response.status_code == 302 and response["Location"] == URL


def test_read_only_users_cannot_open_the_page():
    reader = UserFactory(username="reader", is_staff=True)
    reader.groups.add(Group.objects.get(name="Read-only"))
    first, second = CustomerFactory(), CustomerFactory()
    client = Client()
    client.force_login(reader)

    assert client.get(MERGE, {"ids": f"{first.pk},{second.pk}"}).status_code == 403


def test_the_company_page_merges_companies(client):
    survivor, other = CompanyFactory(name="Acme"), CompanyFactory(name="Acme Inc", industry="Retail")
    CustomerFactory(company=other)
    url = f"/admin/companies/company/merge/?ids={survivor.pk},{other.pk}"

    page = client.get(url)
    assert page.status_code == 200 and page.context["preview"]["moved"]["people"] == 1

    seen = {f"version:{c.pk}": Company.objects.get(pk=c.pk).updated_at.isoformat() for c in (survivor, other)}
    client.post(url, {"survivor": survivor.pk, "confirm": "yes", **seen})

    survivor.refresh_from_db()
    assert survivor.industry == "Retail" and survivor.customers.count() == 1
    assert not Company.objects.filter(pk=other.pk).exists()


def test_a_rep_neither_counts_nor_merges_the_people_of_another_book(rep, other_rep):
    """A rep sees a company through a person of theirs there: its merge would move another rep's people."""
    survivor, other = CompanyFactory(name="Acme"), CompanyFactory(name="Acme Inc")
    CustomerFactory(company=survivor, owner=rep)
    mine = CustomerFactory(company=other, owner=rep)
    theirs = CustomerFactory(company=other, owner=other_rep)
    url = f"/admin/companies/company/merge/?ids={survivor.pk},{other.pk}"
    client = browser(rep)

    page = client.get(url)
    assert page.status_code == 200 and [r.pk for r in page.context["records"]] == [survivor.pk, other.pk]
    assert "moved" not in page.context["preview"] and "another book" in page.context["preview"]["refused"]
    seen = {f"version:{c.pk}": Company.objects.get(pk=c.pk).updated_at.isoformat() for c in (survivor, other)}
    response = client.post(url, {"survivor": survivor.pk, "confirm": "yes", **seen}, follow=True)

    assert "another book" in response.content.decode()
    assert set(Customer.objects.filter(company=other).values_list("pk", flat=True)) == {mine.pk, theirs.pk}
    assert not Changeset.objects.exists()


def test_the_page_speaks_chinese(client):
    first, second = CustomerFactory(), CustomerFactory()

    page = client.get(MERGE, {"ids": f"{first.pk},{second.pk}"}, HTTP_ACCEPT_LANGUAGE="zh-hans").content.decode()

    for text in ["合并客户", "保留此条", "将转入的记录：", f"保留 #{first.pk}，其值为：", "互动: 0"]:
        assert text in page
    listing = client.get(URL, HTTP_ACCEPT_LANGUAGE="zh-hans").content.decode()
    assert "合并所选记录" in listing


def test_the_page_of_a_merged_away_customer_links_to_the_survivor(client):
    from customers.services import merge_customers
    from tests.factories import ManagerFactory

    survivor, other = CustomerFactory(), CustomerFactory()
    merge_customers(survivor, [other], user=ManagerFactory())

    response = client.get(f"{URL}{other.pk}/change/")

    assert response.status_code == 404
    assert f'href="{URL}{survivor.pk}/change/"' in response.content.decode()
    plain = client.get(f"{URL}{10**9}/change/")
    assert plain.status_code == 404 and 'id="merged-into"' not in plain.content.decode()


def checked(page, name):
    """The id of the record whose radio of ``name`` is checked on the merge page."""
    found = re.findall(rf'name="{re.escape(name)}" value="(\d+)" checked', page)
    assert len(found) == 1, found
    return int(found[0])


def shown_for(page):
    """The survivor the page's values were preselected for (its hidden ``defaults_of``)."""
    return int(re.search(r'name="defaults_of" value="(\d+)"', page)[1])


@pytest.fixture
def twins():
    """Two customers whose empty fields differ: the first has no phone, the second no email."""
    first = CustomerFactory(name="Twin Old", email="twin@example.com", phone="", custom_fields={"region": ""})
    second = CustomerFactory(name="Twin New", email="", phone="+8613800138000", custom_fields={"region": "North"})
    return first, second


def test_each_field_is_preselected_for_the_survivor_a_custom_field_too(client, twins):
    first, second = twins

    page = client.get(MERGE, {"ids": f"{first.pk},{second.pk}"}).content.decode()

    assert checked(page, "survivor") == first.pk and shown_for(page) == first.pk
    assert [checked(page, f"field:{name}") for name in ("name", "email", "phone")] == [first.pk, first.pk, second.pk]
    assert checked(page, "field:custom_fields.region") == second.pk
    # What the script preselects by when the second is chosen to stay: its own values but the empty email.
    defaults = re.search(rf'name="survivor" value="{second.pk}" data-defaults="([^"]*)"', page)[1]
    assert json.loads(html.unescape(defaults)) == {
        **dict.fromkeys(MERGE_FIELDS, second.pk),
        "email": first.pk,
        "custom_fields.region": second.pk,
    }


def test_a_preview_for_another_survivor_moves_the_fields_the_user_left_alone(client, twins):
    first, second = twins
    url = f"{MERGE}?ids={first.pk},{second.pk}"
    # The page as shown for the first (no script ran), then the second chosen to stay, and Preview.
    shown = {"defaults_of": first.pk, "field:name": first.pk, "field:email": first.pk, "field:phone": second.pk}

    response = client.post(url, {**shown, "survivor": second.pk, "preview": "yes", **versions(first, second)})

    page = response.content.decode()
    assert checked(page, "survivor") == second.pk and shown_for(page) == second.pk
    # Name follows the new survivor; its email is empty, so the first's stays preselected.
    assert [checked(page, f"field:{name}") for name in ("name", "email", "phone")] == [second.pk, first.pk, second.pk]
    assert response.context["preview"]["values"]["name"] == "Twin New"
    assert response.context["preview"]["values"]["email"] == "twin@example.com"
    assert Customer.objects.count() == 2


def test_a_value_the_user_picked_stays_picked_when_the_survivor_changes(client, twins):
    first, second = twins
    url = f"{MERGE}?ids={first.pk},{second.pk}"
    # Shown for the first; the user picks the second's name, then chooses the second to stay... and back.
    picked = {"defaults_of": first.pk, "field:name": second.pk, "field:email": first.pk, "field:phone": second.pk}
    page = client.post(url, {**picked, "survivor": second.pk, "preview": "yes"}).content.decode()
    assert checked(page, "field:name") == second.pk

    again = {"defaults_of": second.pk, "field:name": first.pk, "field:email": first.pk, "field:phone": second.pk}
    response = client.post(url, {**again, "survivor": first.pk, "preview": "yes"})

    # The first's name was picked by hand on the second round: it is kept; the rest are the first's defaults.
    page = response.content.decode()
    assert [checked(page, f"field:{name}") for name in ("name", "email", "phone")] == [first.pk, first.pk, second.pk]
    assert response.context["preview"]["values"]["name"] == "Twin Old"


def test_merging_with_values_preselected_for_another_survivor_shows_the_page_again(client, twins):
    first, second = twins
    url = f"{MERGE}?ids={first.pk},{second.pk}"
    shown = {"defaults_of": first.pk, "field:name": first.pk, "field:email": first.pk, "field:phone": second.pk}

    response = client.post(url, {**shown, "survivor": second.pk, "confirm": "yes", **versions(first, second)})

    assert response.status_code == 200
    assert "The record that stays changed: check the values it keeps, then merge." in response.content.decode()
    assert Customer.objects.count() == 2
    # Confirmed from the page shown again, the second stays with its own name and the first's email.
    page = response.content.decode()
    again = {
        "defaults_of": second.pk,
        **{f"field:{n}": checked(page, f"field:{n}") for n in ("name", "email", "phone")},
    }
    response = client.post(url, {**again, "survivor": second.pk, "confirm": "yes", **versions(first, second)})

    assert response.status_code == 302
    survivor = Customer.objects.get()
    assert (survivor.pk, survivor.name, survivor.email, survivor.custom_fields) == (
        second.pk,
        "Twin New",
        "twin@example.com",
        {"region": "North"},
    )
