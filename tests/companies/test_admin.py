"""The company admin: summary columns, its people and opportunities inline, deletions that unlink."""

import datetime
from decimal import Decimal

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext
from django.urls import reverse
from django.utils import timezone

from companies.models import Company
from customers.models import Customer
from opportunities.models import Opportunity
from tests.factories import CompanyFactory, CustomerFactory, InteractionFactory, OpportunityFactory

pytestmark = pytest.mark.django_db
URL = reverse("admin:companies_company_changelist")


def grow(company, people):
    for _ in range(people):
        customer = CustomerFactory(company=company)
        InteractionFactory(customer=customer)
        OpportunityFactory(customer=customer)


def test_changelist_shows_the_summary_in_a_constant_number_of_queries(admin_client):
    company = CompanyFactory(name="Acme")
    grow(company, 2)

    def count():
        with CaptureQueriesContext(connection) as captured:
            response = admin_client.get(URL)
        assert response.status_code == 200
        return len(captured), response

    few, response = count()
    row = next(row for row in response.context["cl"].result_list if row.pk == company.pk)
    assert row.people_count == 2
    for _ in range(4):
        grow(CompanyFactory(), 3)
    assert count()[0] == few


def test_a_reps_summary_columns_count_only_the_people_of_their_book(client, rep, other_rep, manager):
    company = CompanyFactory(owner=None)
    latest = timezone.now() - datetime.timedelta(hours=1)
    for owner, value, occurred_at in (
        (rep, Decimal("100"), latest - datetime.timedelta(days=2)),
        (other_rep, 50, latest),
    ):
        person = CustomerFactory(company=company, owner=owner)
        OpportunityFactory(customer=person, value=value, stage=Opportunity.Stage.LEAD)
        InteractionFactory(customer=person, occurred_at=occurred_at)

    def figures(user):
        client.force_login(user)
        response = client.get(URL)
        assert response.status_code == 200
        (row,) = response.context["cl"].result_list
        return row.people_count, row.open_pipeline_value, row.last_interaction_at

    assert figures(rep) == (1, Decimal("100"), latest - datetime.timedelta(days=2))
    assert figures(manager) == (2, Decimal("150"), latest)


def test_change_page_lists_people_and_opportunities_read_only(admin_client):
    company = CompanyFactory(name="Acme")
    person = CustomerFactory(name="Ann Person", company=company)
    OpportunityFactory(customer=person, title="Big deal")
    response = admin_client.get(reverse("admin:companies_company_change", args=[company.pk]))
    html = response.content.decode()
    assert "Ann Person" in html and "Big deal" in html
    formsets = response.context["inline_admin_formsets"]
    assert len(formsets) == 2
    for formset in formsets:
        assert (formset.has_add_permission, formset.has_change_permission, formset.formset.can_delete) == (
            False,
            False,
            False,
        )


def test_admin_delete_unlinks_and_says_so(admin_client):
    company = CompanyFactory()
    person = CustomerFactory(company=company)
    OpportunityFactory(customer=person)
    response = admin_client.post(
        reverse("admin:companies_company_delete", args=[company.pk]), {"post": "yes"}, follow=True
    )
    assert not Company.objects.exists()
    assert Customer.objects.get().company_id is None
    assert "1 people and 1 opportunities no longer have a company." in response.content.decode()


def test_customer_form_picks_the_company_by_autocomplete(admin_client):
    CompanyFactory(name="Acme Robotics")
    html = admin_client.get(reverse("admin:customers_customer_add")).content.decode()
    assert "admin-autocomplete" in html
    found = admin_client.get(
        reverse("admin:autocomplete"),
        {"term": "robot", "app_label": "customers", "model_name": "customer", "field_name": "company"},
    ).json()
    assert [item["text"] for item in found["results"]] == ["Acme Robotics"]


def test_changelist_in_chinese(admin_client):
    CompanyFactory(phone="12")
    html = admin_client.get(URL, HTTP_ACCEPT_LANGUAGE="zh-hans").content.decode()
    for text in ["公司", "联系人", "域名", "电话号码", "无效号码"]:
        assert text in html
