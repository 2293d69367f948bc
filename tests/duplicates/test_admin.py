import pytest
from django.contrib.auth.models import Group
from django.db import connection
from django.test import Client
from django.test.utils import CaptureQueriesContext
from django.urls import reverse

from duplicates import services
from duplicates.models import DuplicateCandidate, Kind
from tests.factories import CompanyFactory, CustomerFactory, UserFactory

pytestmark = pytest.mark.django_db

QUEUE = "/admin/duplicates/duplicatecandidate/"


def login(group, username="someone"):
    user = UserFactory(username=username, is_staff=True)
    user.groups.add(Group.objects.get(name=group))
    client = Client()
    client.force_login(user)
    return client, user


def pair_of(a, b, kind=Kind.CUSTOMER, score=0.9):
    return DuplicateCandidate.objects.create(
        kind=kind, a_id=min(a.pk, b.pk), b_id=max(a.pk, b.pk), score=score, reasons=["same_phone"]
    )


def test_the_queue_shows_both_records_side_by_side_with_merge_and_dismiss():
    client, _ = login("Sales manager")
    a = CustomerFactory(name="John Smith", email="john@acme.example")
    b = CustomerFactory(name="Jon Smith", email="jon@acme.example")
    pair = pair_of(a, b)
    response = client.get(QUEUE, follow=True)
    assert response.redirect_chain[-1][0].endswith("?status__exact=open")
    page = response.content.decode()
    assert "John Smith" in page and "john@acme.example" in page and "Jon Smith" in page
    assert "same phone" in page
    assert f'href="/admin/customers/customer/merge/?ids={a.pk},{b.pk}"' in page
    assert reverse("admin:duplicates_duplicatecandidate_not_duplicate", args=[pair.pk]) in page


def test_a_read_only_user_sees_who_decided_and_no_buttons_they_may_not_use():
    client, _ = login("Read-only")
    _, manager = login("Sales manager", username="boss")
    a, b, c = CustomerFactory(name="John Smith"), CustomerFactory(name="Jon Smith"), CustomerFactory(name="J Smith")
    pair_of(a, b)
    services.dismiss(pair_of(b, c), user=manager)

    open_page = client.get(QUEUE, {"status__exact": DuplicateCandidate.Status.OPEN}).content.decode()
    decided_page = client.get(QUEUE, {"status__exact": DuplicateCandidate.Status.NOT_DUPLICATE}).content.decode()

    assert "John Smith" in open_page
    for page in (open_page, decided_page):
        assert "/merge/" not in page
        assert "not-duplicate/" not in page
    assert ">boss<" in decided_page


def test_the_queue_reads_a_page_in_constant_queries(django_assert_num_queries):
    client, _ = login("Sales manager")
    company = CompanyFactory(name="Acme", domain="acme.example")
    other = CompanyFactory(name="Acme Corp")

    def add(count):
        for _n in range(count):
            pair_of(CustomerFactory(), CustomerFactory())
        return count

    add(2)
    pair_of(company, other, kind=Kind.COMPANY)
    url = f"{QUEUE}?status__exact=open"
    client.get(url)
    with CaptureQueriesContext(connection) as first:
        client.get(url)
    add(10)
    with django_assert_num_queries(len(first.captured_queries)):
        response = client.get(url)
    assert response.content.decode().count("Merge…") == 13


def test_not_a_duplicate_is_a_post_of_a_writer_who_sees_both():
    rep_client, rep = login("Sales rep", "rep")
    reader, _ = login("Read-only", "reader")
    mine = pair_of(CustomerFactory(owner=rep), CustomerFactory(owner=rep))
    not_mine = pair_of(CustomerFactory(owner=rep), CustomerFactory())
    target = reverse("admin:duplicates_duplicatecandidate_not_duplicate", args=[mine.pk])
    assert rep_client.get(target).status_code == 405
    assert reader.post(target).status_code == 403
    other = reverse("admin:duplicates_duplicatecandidate_not_duplicate", args=[not_mine.pk])
    assert rep_client.post(other).status_code == 404
    assert rep_client.post(target).status_code == 302
    mine.refresh_from_db()
    not_mine.refresh_from_db()
    assert (mine.status, mine.decided_by) == (DuplicateCandidate.Status.NOT_DUPLICATE, rep)
    assert not_mine.status == DuplicateCandidate.Status.OPEN
    # The rep's queue lists only the pairs of their own book.
    page = rep_client.get(f"{QUEUE}?status__exact=not_duplicate").content.decode()
    assert page.count('class="field-score_shown"') == 1


def test_the_customer_page_names_its_possible_duplicates():
    client, _ = login("Sales manager")
    company = CompanyFactory(name="Acme")
    a = CustomerFactory(name="John Smith", company=company, phone="")
    b = CustomerFactory(name="Jon Smith", company=company, phone="")
    services.rebuild(Kind.CUSTOMER)
    page = client.get(reverse("admin:customers_customer_change", args=[a.pk])).content.decode()
    assert "Possible duplicates" in page
    assert reverse("admin:customers_customer_change", args=[b.pk]) in page
    assert f"{QUEUE}?kind__exact=customer&amp;status__exact=open&amp;record={a.pk}" in page
    queue = client.get(f"{QUEUE}?kind__exact=customer&status__exact=open&record={a.pk}").content.decode()
    assert "Jon Smith" in queue


def test_the_company_page_names_its_possible_duplicates_and_a_dismissed_pair_is_gone():
    client, user = login("Sales manager")
    a = CompanyFactory(name="Initech", domain="initech.example")
    b = CompanyFactory(name="Initech Software", website="https://initech.example/")
    services.rebuild(Kind.COMPANY)
    url = reverse("admin:companies_company_change", args=[a.pk])
    page = client.get(url).content.decode()
    assert 'id="company-header"' in page
    assert reverse("admin:companies_company_change", args=[b.pk]) in page
    services.dismiss(DuplicateCandidate.objects.get(), user=user)
    assert 'id="company-header"' not in client.get(url).content.decode()


def test_the_queue_in_chinese():
    client, _ = login("Sales manager")
    pair_of(CustomerFactory(name="王小明"), CustomerFactory(name="王 小明"))
    page = client.get(f"{QUEUE}?status__exact=open", HTTP_ACCEPT_LANGUAGE="zh-hans").content.decode()
    for text in ["疑似重复", "相似度", "电话相同", "合并…", "不是重复"]:
        assert text in page
