"""What keeps the admin's lists fast with a million rows (bench/admin_at_size.py measures it).

No list counts every row (the count is capped as the API's is), the date drill-down reads two
index entries instead of every row's date, search goes through the tables' indexed text search,
and the summary columns are not sortable (a sort would compute them for every row).
"""

import datetime
import re
from decimal import Decimal

import factory
import pytest
from django.contrib import admin
from django.db import connection
from django.test.utils import CaptureQueriesContext
from django.urls import reverse
from django.utils import timezone

from core.admin.base import CappedPaginator
from customers.models import Customer
from opportunities.models import Opportunity
from tests.factories import CustomerFactory, OpportunityFactory, TaskFactory, member

pytestmark = pytest.mark.django_db

CUSTOMERS = "/admin/customers/customer/"
OPPORTUNITIES = "/admin/opportunities/opportunity/"


def names(response):
    return sorted(customer.name for customer in response.context["cl"].result_list)


def counts(captured):
    # The list's counts (its rows' query has counts of interactions in it, as subqueries).
    # A whole table's count looks for the row after the cap first (core.paging).
    return [
        q["sql"]
        for q in captured
        if q["sql"].startswith(("SELECT COUNT(*)", "SELECT COALESCE((SELECT")) and "customers_customer" in q["sql"]
    ]


@pytest.fixture
def small_cap(monkeypatch):
    monkeypatch.setattr(CappedPaginator, "cap", 3)


def test_a_long_list_says_more_than_the_cap_and_counts_no_further(admin_client, small_cap):
    CustomerFactory.create_batch(5)
    with CaptureQueriesContext(connection) as captured:
        response = admin_client.get(CUSTOMERS)
    html = response.content.decode()
    assert "More than 3 customers" in html
    assert "Select all (more than 3) customers" in html
    # One count, bounded: the whole list's row after the cap is looked for (LIMIT 1 OFFSET 3), and the
    # rows would be counted only if there were none.
    [count] = counts(captured)
    assert re.search(r"LIMIT 1 OFFSET 3\b", count)


def test_a_short_list_has_its_exact_count_and_a_filtered_one_no_second_count(admin_client, small_cap):
    CustomerFactory.create_batch(2, status=Customer.Status.LEAD)
    CustomerFactory.create_batch(4, status=Customer.Status.ACTIVE)
    with CaptureQueriesContext(connection) as captured:
        response = admin_client.get(CUSTOMERS, {"status__exact": "lead"})
    html = response.content.decode()
    assert "2 customers" in html and "More than" not in html
    assert len(counts(captured)) == 1, counts(captured)


def test_pages_up_to_the_cap_stay_reachable(admin_client, small_cap, settings):
    CustomerFactory.create_batch(5)
    admin_list = admin.site._registry[Customer]
    original = admin_list.list_per_page
    admin_list.list_per_page = 2
    try:
        assert admin_client.get(CUSTOMERS, {"p": 2}).status_code == 200
    finally:
        admin_list.list_per_page = original


def test_opportunity_totals_are_summed_only_below_the_cap(admin_client, small_cap):
    customer = CustomerFactory()
    for value in (100, 200, 300, 400):
        OpportunityFactory(customer=customer, value=Decimal(value), stage="lead")
    response = admin_client.get(OPPORTUNITIES)
    assert "totals" not in response.context
    assert "filter the list to see its total" in response.content.decode()
    response = admin_client.get(OPPORTUNITIES, {"value__lt": "250"})
    assert response.context["totals"]["total_value"] == Decimal("300.00")


def test_the_date_drilldown_reads_no_distinct_dates(admin_client):
    now = timezone.now()
    for years_ago in (0, 2):
        old = CustomerFactory()
        Customer.objects.filter(pk=old.pk).update(created_at=now - datetime.timedelta(days=365 * years_ago + 1))
    with CaptureQueriesContext(connection) as captured:
        response = admin_client.get(CUSTOMERS)
    sqls = " ".join(q["sql"] for q in captured).upper()
    assert "DISTINCT" not in sqls or "TRUNC" not in sqls
    html = response.content.decode()
    first = (timezone.localtime(now) - datetime.timedelta(days=731)).year
    # Every year from the first record's to the last one's is offered (an empty one too).
    for year in range(first, timezone.localtime(now).year + 1):
        assert f"created_at__year={year}" in html
    # A year's months and a month's days are offered between the first and last records of that step.
    year = timezone.localtime(now).year
    assert admin_client.get(CUSTOMERS, {"created_at__year": year}).status_code == 200


def test_search_finds_a_phone_number_however_written_and_needs_every_word(admin_client):
    CustomerFactory(name="Wang Wei", phone="+86 138 0013 8000", company_name="Star Tech")
    CustomerFactory(name="Wang Fang", company_name="Cloud Sail")
    CustomerFactory(name="Li Na", company_name="Star Tech")
    assert names(admin_client.get(CUSTOMERS, {"q": "+86 13800138000"})) == ["Wang Wei"]
    assert names(admin_client.get(CUSTOMERS, {"q": "+86 138-0013-8000"})) == ["Wang Wei"]
    assert names(admin_client.get(CUSTOMERS, {"q": "wang star"})) == ["Wang Wei"]
    assert names(admin_client.get(CUSTOMERS, {"q": '"star tech"'})) == ["Li Na", "Wang Wei"]


@pytest.mark.parametrize("model_admin", list(admin.site._registry.values()), ids=lambda a: a.opts.label_lower)
def test_every_list_answers_a_search(admin_client, model_admin):
    if not model_admin.search_fields:
        pytest.skip("no search box")
    url = reverse(f"admin:{model_admin.opts.app_label}_{model_admin.opts.model_name}_changelist")
    assert admin_client.get(url, {"q": "Acme 42"}).status_code == 200


def test_tasks_are_found_by_their_customers_company(db):
    user = member("rep", "Sales rep", is_staff=True)
    TaskFactory(customer=CustomerFactory(owner=user, company_name="Initech"), assignee=user, title="Call back")
    TaskFactory(customer=CustomerFactory(owner=user, company_name="Globex"), assignee=user, title="Send quote")
    from django.test import Client

    client = Client()
    client.force_login(user)
    response = client.get("/admin/tasks/task/", {"q": "initech"})
    assert [task.title for task in response.context["cl"].result_list] == ["Call back"]


@pytest.mark.parametrize(
    ("url", "columns"),
    [
        (CUSTOMERS, ["interaction_count", "open_pipeline_value", "last_interaction_at"]),
        ("/admin/companies/company/", ["people_count", "open_pipeline_value", "last_interaction_at"]),
    ],
)
def test_summary_columns_are_not_sortable(admin_client, url, columns):
    changelist = admin_client.get(url).context["cl"]
    for column in columns:
        assert changelist.get_ordering_field(column) is None, column


@pytest.mark.parametrize(
    ("model", "text_field"),
    [("interactions.interaction", "notes"), ("opportunities.opportunity", "title"), ("tasks.task", "notes")],
)
# The rows a narrow word finds are the only ones checked (a large probe), or every row is (none).
@pytest.mark.parametrize("probe", [0, 2, 10_000])
# The words counted in the order of the database's estimates (PostgreSQL), or each of them.
@pytest.mark.parametrize("by_estimate", [True, False], ids=["by-estimate", "count-each"])
def test_indexed_search_finds_what_the_plain_admin_search_finds(
    admin_client, monkeypatch, model, text_field, probe, by_estimate
):
    """Interactions and opportunities are searched through their own and their customers' indexes:
    each word in the text, the customer's name or company, exactly as Django's search over the fields."""
    from django.apps import apps
    from django.contrib.admin import ModelAdmin

    from tests.factories import InteractionFactory

    factory = {"interactions": InteractionFactory, "opportunities": OpportunityFactory, "tasks": TaskFactory}[
        model.split(".")[0]
    ]
    wang = CustomerFactory(name="Wang Wei", company_name="Star Tech", email="smith@example.com")
    li = CustomerFactory(name="Li Na", company_name="星辰科技")
    texts = ["Discussed the STAR project", "电话沟通需求 with Wang", "Sent a quote", "Smith's quote"]
    for customer in (wang, li):
        for text in texts:
            factory(customer=customer, **{text_field: text})
    model_class = apps.get_model(model)
    model_admin = admin.site._registry[model_class]
    monkeypatch.setattr(model_admin, "text_search_probe", probe)
    monkeypatch.setattr(model_admin, "text_search_by_estimate", by_estimate)
    url = reverse(f"admin:{model_class._meta.app_label}_{model_class._meta.model_name}_changelist")
    found_any = False
    for term in ["star", "wang quote", "星辰 quote", "沟通", "smith", "sent wang", "na", '"star tech"', "nothing"]:
        shown = {row.pk for row in admin_client.get(url, {"q": term}).context["cl"].result_list}
        # Django's own search over the same fields (icontains, joined), without the indexes.
        request = admin_client.get(url).wsgi_request
        expected, _ = ModelAdmin.get_search_results(model_admin, request, model_class.objects.all(), term)
        assert shown == set(expected.values_list("pk", flat=True)), term
        found_any = found_any or bool(shown)
    assert found_any
    # The email is not among the fields searched: the customer's own search is narrowed to name and company.
    assert not admin_client.get(url, {"q": "example.com"}).context["cl"].result_list


def probes(captured):
    """The counts of a word's rows up to the probe (``SELECT COUNT(*) FROM ((...) UNION ALL (...) LIMIT n)``)."""
    return [q["sql"] for q in captured if q["sql"].startswith("SELECT COUNT(*) FROM ((")]


@pytest.mark.skipif(connection.vendor != "postgresql", reason="SQLite gives no estimates: every word is counted")
@pytest.mark.parametrize("by_estimate", [True, False], ids=["by-estimate", "count-each"])
def test_a_search_counts_only_the_word_estimated_narrowest(admin_client, monkeypatch, by_estimate):
    """ "Smith" is in every customer's name, "4242" in one: with the planner's estimates only "4242" is
    counted (the count of the wide word was most of a search's time); the rows found are the same."""
    smiths = CustomerFactory.create_batch(300, name=factory.Sequence(lambda n: f"Anna Smith {n:05}"))
    for customer in smiths[:40]:
        OpportunityFactory(customer=customer, title="Annual licence")
    wanted = OpportunityFactory(customer=CustomerFactory(name="Bob Smith 4242"), title="Pilot project")
    with connection.cursor() as cursor:
        cursor.execute("ANALYZE customers_customer")
        cursor.execute("ANALYZE opportunities_opportunity")
    model_admin = admin.site._registry[wanted.__class__]
    monkeypatch.setattr(model_admin, "text_search_probe", 20)
    monkeypatch.setattr(model_admin, "text_search_by_estimate", by_estimate)
    with CaptureQueriesContext(connection) as captured:
        response = admin_client.get(OPPORTUNITIES, {"q": "smith 4242"})
    assert [row.pk for row in response.context["cl"].result_list] == [wanted.pk]
    counted = probes(captured)
    if by_estimate:
        [only] = counted
        assert "%4242%" in only and "%smith%" not in only
    else:
        assert len(counted) == 2, counted


@pytest.mark.skipif(connection.vendor != "postgresql", reason="SQLite gives no estimates: every word is counted")
@pytest.mark.parametrize("uncounted_over", [1, 1_000], ids=["estimated-wide", "counted"])
def test_a_search_of_common_words_counts_none_estimated_far_over_the_probe(admin_client, monkeypatch, uncounted_over):
    """ "Smith" and "Annual" each in hundreds of deals: estimated far over the probe, neither is counted
    (each count was most of a search's time) and the list's order is walked; counted, each turns out
    wide and the walk is the same. The rows are those of the plain search either way."""
    from django.contrib.admin import ModelAdmin

    smiths = CustomerFactory.create_batch(300, name=factory.Sequence(lambda n: f"Anna Smith {n:05}"))
    for index, customer in enumerate(smiths):
        OpportunityFactory(customer=customer, title="Annual licence" if index % 2 else "Pilot")
    OpportunityFactory.create_batch(200, title="Annual support")
    with connection.cursor() as cursor:
        cursor.execute("ANALYZE customers_customer")
        cursor.execute("ANALYZE opportunities_opportunity")
    model_admin = admin.site._registry[Opportunity]
    monkeypatch.setattr(model_admin, "text_search_probe", 20)
    monkeypatch.setattr(model_admin, "text_search_uncounted_over", uncounted_over)
    with CaptureQueriesContext(connection) as captured:
        response = admin_client.get(OPPORTUNITIES, {"q": "smith annual"})
    shown = {row.pk for row in response.context["cl"].result_list}
    expected, _ = ModelAdmin.get_search_results(
        model_admin, response.wsgi_request, Opportunity.objects.all(), "smith annual"
    )
    expected = set(expected.values_list("pk", flat=True))
    assert len(expected) == response.context["cl"].result_count == 150
    # The first page, in the list's order.
    assert shown == set(
        Opportunity.objects.filter(pk__in=expected).order_by("-created_at", "-id")[:50].values_list("pk", flat=True)
    )
    assert len(probes(captured)) == (0 if uncounted_over == 1 else 2)
