"""The pipeline figures the database keeps (opportunities/figures.py) equal the figures counted from
the deals, after every kind of write: saves, bulk updates and creates, deletes, a deal moved to another
customer, a customer's owner changed or removed, a customer deleted; the dashboard and the board read them."""

import datetime
from decimal import Decimal

import pytest
from django.db import connection
from django.utils import timezone

from customers.models import Customer
from opportunities import figures
from opportunities.models import Opportunity
from opportunities.reports import pipeline_groups, pipeline_summary
from tests.factories import CustomerFactory, OpportunityFactory, member

pytestmark = pytest.mark.django_db

on_postgres = pytest.mark.skipif(connection.vendor != "postgresql", reason="the figures are kept on PostgreSQL")


def assert_same():
    assert sorted(figures.figure_rows(), key=str) == sorted(figures.counted_rows(), key=str)
    counted = Opportunity.objects.all()
    assert pipeline_summary() == pipeline_summary(counted)
    since = timezone.now() - datetime.timedelta(days=10)
    assert pipeline_groups(None, "owner", None, won_since=since) == pipeline_groups(
        counted, "owner", None, won_since=since
    )
    assert pipeline_groups(None, "owner", 1) == pipeline_groups(counted, "owner", 1)


@pytest.fixture
def book():
    ann, bob = member("ann", "Sales rep"), member("bob", "Sales rep")
    today = timezone.localdate()
    first = CustomerFactory(owner=ann)
    second = CustomerFactory(owner=bob)
    nobody = CustomerFactory(owner=None)
    deals = [
        OpportunityFactory(customer=first, value=Decimal("1000.50"), stage="lead", expected_close_date=today),
        OpportunityFactory(customer=first, value=Decimal("333.33"), stage="proposal", probability=33),
        OpportunityFactory(customer=second, value=Decimal("70.10"), stage="negotiation", expected_close_date=today),
        OpportunityFactory(customer=second, value=Decimal("5"), stage="closed"),
        OpportunityFactory(customer=nobody, value=Decimal("12.34"), stage="lost"),
    ]
    return {"ann": ann, "bob": bob, "first": first, "second": second, "nobody": nobody, "deals": deals}


@on_postgres
def test_every_kind_of_write_keeps_the_figures(book):
    assert_same()
    lead, proposal, negotiation, won, lost = book["deals"]
    lead.stage = "negotiation"
    lead.save()
    proposal.value = Decimal("999.99")
    proposal.expected_close_date = timezone.localdate() + datetime.timedelta(days=40)
    proposal.save()
    assert_same()
    Opportunity.objects.filter(stage="negotiation").update(probability=55)
    Opportunity.objects.filter(pk=won.pk).update(customer=book["first"])
    assert_same()
    Opportunity.objects.bulk_create(
        [
            Opportunity(customer=book["nobody"], title=f"Bulk {n}", value=n, stage="lead", probability=10)
            for n in range(3)
        ]
    )
    assert_same()
    Customer.objects.filter(pk=book["first"].pk).update(owner=book["bob"])
    book["second"].owner = None
    book["second"].save()
    assert_same()
    negotiation.delete()
    assert_same()
    # The customer gone before its deals (foreign keys are checked at commit): they count as nobody's meanwhile.
    with connection.cursor() as cursor:
        cursor.execute("DELETE FROM customers_customer WHERE id = %s", [book["first"].pk])
        assert sorted(figures.figure_rows(), key=str) == sorted(figures.counted_rows(), key=str)
        deals = "SELECT id FROM opportunities_opportunity WHERE customer_id = %s"
        cursor.execute(f"DELETE FROM opportunities_stagechange WHERE opportunity_id IN ({deals})", [book["first"].pk])
        cursor.execute("DELETE FROM opportunities_opportunity WHERE customer_id = %s", [book["first"].pk])
    assert_same()
    book["nobody"].owner = book["ann"]
    book["nobody"].save()
    book["nobody"].delete()
    assert_same()
    Opportunity.objects.all().delete()
    assert_same()
    assert figures.figure_rows() == []


@on_postgres
def test_folding_keeps_the_figures_in_fewer_rows(book):
    for deal in book["deals"]:
        deal.value += 1
        deal.save()
    before = sorted(figures.figure_rows(), key=str)
    stored = Opportunity.objects.none().model._meta.apps.get_model("opportunities", "PipelineFigure").objects
    rows = stored.count()
    figures.fold()
    assert stored.count() < rows
    assert sorted(figures.figure_rows(), key=str) == before
    assert_same()


@on_postgres
def test_rebuild_counts_again(book):
    with connection.cursor() as cursor:
        cursor.execute(f"DELETE FROM {figures.TABLE}")
    assert figures.figure_rows() == []
    figures.rebuild()
    assert_same()


def test_the_whole_book_reads_the_same_on_every_database(book):
    assert pipeline_summary() == pipeline_summary(Opportunity.objects.all())
    assert pipeline_summary()["open"]["count"] == 3


def test_the_dashboard_of_a_manager_reads_the_kept_figures(book, client, django_assert_max_num_queries):
    manager = member("boss", "Sales manager", is_staff=True)
    client.force_login(manager)
    response = client.get("/admin/")
    rows = {row["username"]: row for row in response.context["rep_table"]}
    assert rows["ann"]["open_value"] == Decimal("1333.83")
    assert rows["bob"]["open_value"] == Decimal("70.10")
    assert response.context["pipeline"]["won"]["count"] == 1
    if connection.vendor == "postgresql":
        # No statement over the opportunities except the deals won this month and the ten closing.
        with django_assert_max_num_queries(30) as captured:
            client.get("/admin/")
        over_all = [
            q["sql"]
            for q in captured.captured_queries
            if 'FROM "opportunities_opportunity"' in q["sql"] and "WHERE" not in q["sql"]
        ]
        assert over_all == []


@pytest.mark.parametrize("params", [{}, {"owner": "mine"}, {"owner": "none"}, {"owner": "ann"}, {"month": "now"}])
@pytest.mark.parametrize("role", ["Sales manager", "Sales rep"])
def test_the_board_reads_the_figures_of_its_filters(book, params, role):
    from django.contrib import admin
    from django.http import QueryDict

    from core.access import scope
    from opportunities.board import BoardFilters

    if role == "Sales rep" and params.get("owner", "mine") != "mine":
        pytest.skip("a rep's board shows their own deals")
    user = book["ann"] if role == "Sales rep" else member("boss", role)
    data = QueryDict(mutable=True)
    for name, value in params.items():
        data[name] = {"ann": str(book["ann"].pk), "now": timezone.localdate().strftime("%Y-%m")}.get(value, value)
    filters = BoardFilters(data, user=user, admin_site=admin.site)
    assert filters.is_valid()
    counted = pipeline_summary(filters.filter(scope(Opportunity.objects.all(), user)))
    chosen = filters.book()
    assert chosen is not None
    assert pipeline_summary(None, **chosen) == counted


def test_a_customer_filter_counts_from_the_deals(book):
    from django.contrib import admin
    from django.http import QueryDict

    from opportunities.board import BoardFilters

    filters = BoardFilters(QueryDict("customer_text=x"), user=member("boss", "Sales manager"), admin_site=admin.site)
    assert filters.is_valid()
    assert filters.book() is None


@pytest.mark.parametrize("role", ["Sales rep", "Sales manager"])
def test_the_dashboard_of_a_book_reads_what_counting_its_deals_gives(book, client, monkeypatch, role):
    """A rep's dashboard (their own book) reads the figures the database keeps by owner: the same
    pipeline and per-rep row as counting the deals they see."""
    from opportunities import dashboard

    user = book["ann"] if role == "Sales rep" else member("boss", role)
    user.is_staff = True
    user.save()
    won = book["deals"][1]
    won.stage, won.closed_at = Opportunity.Stage.CLOSED, timezone.now()
    won.save()
    client.force_login(user)
    kept = client.get("/admin/").context
    monkeypatch.setattr(dashboard, "book_of", lambda user: None)
    counted = client.get("/admin/").context
    assert kept["pipeline"] == counted["pipeline"]
    assert kept["rep_table"] == counted["rep_table"]
    rows = {row["username"]: row for row in kept["rep_table"]}
    assert rows["ann"]["open_value"] == Decimal("1000.50")
    assert rows["ann"]["won_month_value"] == Decimal("333.33")
    if role == "Sales rep":
        assert list(rows) == ["ann"]
        assert kept["pipeline"]["open"]["count"] == 1


def test_a_reps_book_is_read_by_owner_unless_others_deals_are_in_their_scope(book, monkeypatch):
    from core import access
    from opportunities.reports import EVERYONE, book_of

    assert book_of(member("boss", "Sales manager")) == {"owner": EVERYONE}
    assert book_of(book["ann"]) == {"owner": book["ann"].pk}
    # A further way to see deals (a viewer path) makes the rep's scope more than their customers' deals.
    monkeypatch.setitem(access._ALSO_SEEN_BY, Opportunity._meta.label_lower, ["created_by"])
    assert book_of(book["ann"]) is None
    assert book_of(member("nobody")) is None
