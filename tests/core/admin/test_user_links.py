"""A record's pages name users (who created it, its owner, who changed it, who decided) as links only for those who may open
the users' pages, the superusers: for managers and reps such a link would answer 403."""

import re

import pytest

from core.changesets import recording
from customers.models import Customer
from duplicates.models import DuplicateCandidate, Kind
from mailgateway.models import InboundEmail
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


def _changeset(creator):
    with recording("action", user=creator, label="renamed") as changeset:
        CustomerFactory(name="Someone")
    return f"/admin/core/changeset/{changeset.pk}/change/"


def _decided_pair(creator):
    a, b = CustomerFactory(name="John Smith"), CustomerFactory(name="John Smith")
    pair = DuplicateCandidate.objects.create(
        kind=Kind.CUSTOMER, a_id=a.pk, b_id=b.pk, score=0.9, reasons=[], status="not_duplicate", decided_by=creator
    )
    return f"/admin/duplicates/duplicatecandidate/{pair.pk}/change/"


def _inbound_email(creator):
    email = InboundEmail.objects.create(user=creator, message_id="<1@example.com>", subject="Hello", status="logged")
    return f"/admin/mailgateway/inboundemail/{email.pk}/change/"


ROWS_THE_CRM_WRITES = {"changeset": _changeset, "duplicate pair": _decided_pair, "email in": _inbound_email}


@pytest.mark.parametrize("page", list(ROWS_THE_CRM_WRITES))
def test_a_page_of_a_row_the_crm_writes_names_its_user_without_a_link_for_a_manager(page):
    url = ROWS_THE_CRM_WRITES[page](UserFactory(username="creator"))

    response = browser(member("boss", "Sales manager", is_staff=True)).get(url)

    assert response.status_code == 200
    html = response.content.decode()
    assert USER_PAGE.findall(html) == []
    assert re.search(r">\s*creator\s*<", html)
    superuser = browser(UserFactory(username="root", is_staff=True, is_superuser=True))
    assert USER_PAGE.findall(superuser.get(url).content.decode())
