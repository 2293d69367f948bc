"""The back office: every model's screens load and show the data."""

import pytest

from customers.models import Customer
from tests.factories import CustomerFactory, InteractionFactory, OpportunityFactory


@pytest.fixture
def admin_client(client, staff_user):
    client.force_login(staff_user)
    return client


@pytest.mark.parametrize("model", ["customers/customer", "interactions/interaction", "opportunities/opportunity"])
def test_changelists_and_add_pages_load(admin_client, model):
    InteractionFactory(notes="hello there")
    OpportunityFactory(title="Big deal")
    assert admin_client.get(f"/admin/{model}/").status_code == 200
    assert admin_client.get(f"/admin/{model}/add/").status_code == 200


def test_customer_page_shows_interactions_and_opportunities_inline(admin_client):
    customer = CustomerFactory(name="王芳")
    InteractionFactory(customer=customer, notes="产品演示")
    OpportunityFactory(customer=customer, title="云服务迁移")
    page = admin_client.get(f"/admin/customers/customer/{customer.pk}/change/").content.decode()
    assert "王芳" in page
    assert "产品演示" in page
    assert "云服务迁移" in page


def test_customer_search_and_status_filter(admin_client):
    CustomerFactory(name="Findable Person", status=Customer.Status.LEAD)
    CustomerFactory(name="Hidden Person", status=Customer.Status.ACTIVE)
    found = admin_client.get("/admin/customers/customer/", {"q": "findable"}).content.decode()
    assert "Findable Person" in found and "Hidden Person" not in found
    filtered = admin_client.get("/admin/customers/customer/", {"status__exact": "lead"}).content.decode()
    assert "Findable Person" in filtered and "Hidden Person" not in filtered


def test_customer_autocomplete_for_opportunities(admin_client):
    CustomerFactory(name="Autocomplete Me")
    response = admin_client.get(
        "/admin/autocomplete/",
        {"term": "autocomplete", "app_label": "opportunities", "model_name": "opportunity", "field_name": "customer"},
    )
    results = [row["text"] for row in response.json()["results"]]
    assert len(results) == 1
    assert results[0].startswith("Autocomplete Me")


def test_create_customer_with_inline_records_in_the_admin(admin_client):
    response = admin_client.post(
        "/admin/customers/customer/add/",
        {
            "name": "Inline Co",
            "status": "lead",
            "interactions-TOTAL_FORMS": "1",
            "interactions-INITIAL_FORMS": "0",
            "interactions-0-interaction_type": "call",
            "interactions-0-notes": "first call",
            "opportunities-TOTAL_FORMS": "1",
            "opportunities-INITIAL_FORMS": "0",
            "opportunities-0-title": "Pilot",
            "opportunities-0-value": "1200",
            "opportunities-0-stage": "proposal",
            "opportunities-0-probability": "",
        },
    )
    assert response.status_code == 302, response.content.decode()[:2000]
    customer = Customer.objects.get(name="Inline Co")
    assert customer.interactions.get().notes == "first call"
    opportunity = customer.opportunities.get()
    assert (opportunity.title, opportunity.probability) == ("Pilot", 40)


def test_customer_delete_confirmation_lists_the_cascade(admin_client):
    customer = CustomerFactory()
    InteractionFactory(customer=customer)
    OpportunityFactory(customer=customer, title="Doomed deal")
    page = admin_client.get(f"/admin/customers/customer/{customer.pk}/delete/").content.decode()
    assert "Doomed deal" in page


def test_admin_requires_login(client, db):
    response = client.get("/admin/customers/customer/")
    assert response.status_code == 302
    assert "/admin/login/" in response["Location"]
