"""A record's pages name users (who created it, its owner, who changed it) as links only for those who may open
the users' pages, the superusers: for managers and reps such a link would answer 403."""

import re

import pytest

from customers.models import Customer
from tests.conftest import browser
from tests.factories import CompanyFactory, CustomerFactory, UserFactory, member

pytestmark = pytest.mark.django_db

USER_PAGE = re.compile(r'href="(/admin/auth/user/\d+/change/)"')


@pytest.fixture
def customer():
    """A rep's customer at a company, created by someone else, with a change in its history by that person."""
    rep = member("rep", "Sales rep", is_staff=True)
    creator = UserFactory(username="creator")
    customer = CustomerFactory(company=CompanyFactory(name="Acme", owner=rep), owner=rep, created_by=creator)
    customer.name = "Renamed"
    customer.save()
    customer.history.update(history_user=creator)
    return customer


PAGES = {
    "change": lambda customer: f"/admin/customers/customer/{customer.pk}/change/",
    "history": lambda customer: f"/admin/customers/customer/{customer.pk}/history/",
    "company with its people": lambda customer: f"/admin/companies/company/{customer.company_id}/change/",
}


@pytest.mark.parametrize("page", list(PAGES))
@pytest.mark.parametrize("role", ["Sales rep", "Sales manager", "Read-only"])
def test_a_page_names_users_without_links_its_reader_could_not_follow(customer, page, role):
    reader = Customer.objects.get().owner if role == "Sales rep" else member("reader", role, is_staff=True)
    client = browser(reader)

    response = client.get(PAGES[page](customer))

    assert response.status_code == 200
    html = response.content.decode()
    assert USER_PAGE.findall(html) == []
    # The users are still named, as text.
    expected = {"change": ["creator", "rep"], "history": ["creator"], "company with its people": ["rep"]}[page]
    for username in expected:
        assert re.search(rf">\s*{username}\s*<", html), username


@pytest.mark.parametrize("page", list(PAGES))
def test_a_superuser_follows_the_links_to_the_users(customer, page):
    client = browser(UserFactory(username="root", is_staff=True, is_superuser=True))

    html = client.get(PAGES[page](customer)).content.decode()

    links = USER_PAGE.findall(html)
    assert links
    assert all(client.get(link).status_code == 200 for link in links)
