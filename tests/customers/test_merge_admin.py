"""The admin's merge: the "Merge selected" action and the side-by-side page, for customers and companies."""

import pytest
from django.contrib.auth.models import Group
from django.test import Client

from companies.models import Company
from core.models import MergedRecord
from customers.models import Customer
from interactions.models import Interaction
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
