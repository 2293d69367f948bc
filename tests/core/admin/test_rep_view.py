"""The rep's view and the manager's view: owner filters on the lists, the per-rep dashboard table,
amounts with the currency and dates in the user's time zone."""

import datetime
from decimal import Decimal

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext
from django.utils import timezone

from core.models import UserPreferences
from core.money import format_money
from opportunities.dashboard import period_starts
from opportunities.models import Opportunity
from tests.conftest import browser
from tests.factories import CustomerFactory, InteractionFactory, OpportunityFactory, TaskFactory, member

pytestmark = pytest.mark.django_db


def shown(response):
    return sorted(str(obj) for obj in response.context["cl"].result_list)


def selected_owner(response):
    spec = next(spec for spec in response.context["cl"].filter_specs if spec.parameter_name in ("owner", "assignee"))
    return [choice["display"] for choice in spec.choices(response.context["cl"]) if choice["selected"]]


@pytest.fixture
def book(rep, other_rep):
    mine = CustomerFactory(name="Mine Ltd", owner=rep)
    theirs = CustomerFactory(name="Theirs Ltd", owner=other_rep)
    nobody = CustomerFactory(name="Nobody Ltd", owner=None)
    for customer in (mine, theirs, nobody):
        OpportunityFactory(title=f"Deal of {customer.name}", customer=customer)
        InteractionFactory(customer=customer, notes=f"Call with {customer.name}")
    TaskFactory(title="Task of rep", customer=mine, assignee=rep)
    TaskFactory(title="Task of other", customer=theirs, assignee=other_rep)
    return mine, theirs, nobody


class TestOwnerFilters:
    def test_a_manager_lands_on_everything_and_can_pick_mine_none_or_a_rep(self, manager, rep, book):
        client = browser(manager)
        response = client.get("/admin/customers/customer/")
        assert shown(response) == ["Mine Ltd", "Nobody Ltd", "Theirs Ltd"]
        assert selected_owner(response) == ["All I may see"]
        assert shown(client.get("/admin/customers/customer/?owner=none")) == ["Nobody Ltd"]
        assert shown(client.get(f"/admin/customers/customer/?owner={rep.pk}")) == ["Mine Ltd"]
        assert shown(client.get("/admin/customers/customer/?owner=mine")) == []
        html = client.get("/admin/customers/customer/").content.decode()
        assert "?owner=none" in html and f"?owner={rep.pk}" in html

    def test_a_rep_lands_on_their_own_records_with_a_way_to_see_all(self, rep, book, settings):
        client = browser(rep)
        response = client.get("/admin/customers/customer/")
        assert shown(response) == ["Mine Ltd"]
        assert selected_owner(response) == ["Mine"]
        assert "?owner=all" in response.content.decode()
        # "All I may see" is still the rep's book: never someone else's customers.
        assert shown(client.get("/admin/customers/customer/?owner=all")) == ["Mine Ltd"]

    @pytest.mark.parametrize(
        ("url", "mine", "everything"),
        [
            ("/admin/opportunities/opportunity/", ["Deal of Mine Ltd"], 3),
            ("/admin/interactions/interaction/", None, 3),
            ("/admin/tasks/task/", ["Task of rep"], 2),
        ],
    )
    def test_every_list_filters_by_owner(self, url, mine, everything, rep, manager, book):
        assert len(browser(manager).get(url).context["cl"].result_list) == everything
        response = browser(rep).get(url)
        assert selected_owner(response) == ["Mine"]
        results = response.context["cl"].result_list
        assert len(results) == 1
        if mine is not None:
            assert shown(response) == mine
        else:  # interactions: by the customer's owner
            assert results[0].customer.owner_id == rep.pk
        manager_mine = browser(manager).get(f"{url}?{'assignee' if 'task' in url else 'owner'}={rep.pk}")
        assert len(manager_mine.context["cl"].result_list) == 1

    def test_tasks_keep_the_old_me_address(self, rep, book):
        assert shown(browser(rep).get("/admin/tasks/task/?assignee=me")) == ["Task of rep"]

    @pytest.mark.parametrize("value", ["bogus", "-1", "9" * 30])
    def test_an_owner_that_is_no_choice_is_the_unfiltered_list_not_a_500(self, manager, book, value):
        response = browser(manager).get(f"/admin/customers/customer/?owner={value}")
        assert response.status_code in (200, 302)
        assert response.status_code == 200 or "e=1" in response["Location"]


def _dashboard_rows(response):
    return {row["username"]: row for row in response.context["rep_table"]}


class TestRepTable:
    def test_the_manager_sees_one_row_per_rep_with_the_figures(self, manager, rep, other_rep):
        mine = CustomerFactory(owner=rep)
        OpportunityFactory(customer=mine, value=Decimal("1000"), stage="proposal", probability=40)
        won = OpportunityFactory(customer=mine, value=Decimal("500"), stage="negotiation")
        won.stage = Opportunity.Stage.CLOSED
        won.save()
        OpportunityFactory(customer=mine, value=Decimal("200"), stage=Opportunity.Stage.LOST)
        InteractionFactory(customer=mine, occurred_at=timezone.now())
        InteractionFactory(customer=mine, occurred_at=timezone.now() - datetime.timedelta(days=30))

        response = browser(manager).get("/admin/")
        rows = _dashboard_rows(response)
        assert set(rows) >= {"rep", "other", "boss"}
        assert rows["rep"]["open_value"] == Decimal("1000.00")
        assert rows["rep"]["weighted_value"] == Decimal("400.00")
        assert rows["rep"]["won_month_count"] == 1
        assert rows["rep"]["won_month_value"] == Decimal("500.00")
        assert rows["rep"]["win_rate_percent"] == 50.0
        assert rows["rep"]["activities_week"] == 1
        assert rows["other"]["open_value"] == 0 and rows["other"]["win_rate_percent"] is None
        html = response.content.decode()
        assert 'id="rep-table"' in html and "Per rep" in html

    def test_a_rep_sees_only_their_own_row(self, rep, other_rep):
        OpportunityFactory(customer=CustomerFactory(owner=other_rep), value=Decimal("900"))
        OpportunityFactory(customer=CustomerFactory(owner=rep), value=Decimal("100"), stage="lead")
        response = browser(rep).get("/admin/")
        assert list(_dashboard_rows(response)) == ["rep"]
        assert _dashboard_rows(response)["rep"]["open_value"] == Decimal("100.00")
        assert "Your figures" in response.content.decode()

    def test_query_count_is_constant_as_reps_and_data_grow(self, manager):
        def grow(n, prefix):
            for i in range(n):
                owner = member(f"{prefix}{i}", "Sales rep", is_staff=True)
                customer = CustomerFactory(owner=owner)
                OpportunityFactory(customer=customer, expected_close_date=timezone.localdate())
                InteractionFactory(customer=customer)

        grow(1, "a")
        client = browser(manager)
        client.get("/admin/")
        with CaptureQueriesContext(connection) as few:
            client.get("/admin/")
        grow(6, "b")
        with CaptureQueriesContext(connection) as many:
            response = client.get("/admin/")
        assert len(response.context["rep_table"]) >= 7
        assert len(many) == len(few)

    def test_week_and_month_start_in_the_users_time_zone(self, db):
        user = member("tokyo", "Sales rep", time_zone="Asia/Tokyo", is_staff=True)
        # Sunday 2026-03-01 20:00 UTC is Monday 2026-03-02 05:00 in Tokyo.
        now = datetime.datetime(2026, 3, 1, 20, 0, tzinfo=datetime.UTC)
        month, week = period_starts(user, now)
        assert (month.year, month.month, month.day, month.hour) == (2026, 3, 1, 0)
        assert (week.month, week.day) == (3, 2)
        assert month.utcoffset() == datetime.timedelta(hours=9)


class TestMoneyAndDates:
    @pytest.mark.parametrize(
        ("code", "value", "text"),
        [
            ("CNY", Decimal("1234567.5"), "¥1,234,567.50"),
            ("USD", Decimal("1000"), "$1,000.00"),
            ("EUR", Decimal("0"), "€0.00"),
            ("JPY", Decimal("1234.4"), "¥1,234"),
            ("HKD", Decimal("12"), "HK$12.00"),
            ("CHF", Decimal("1234"), "CHF 1,234.00"),
        ],
    )
    def test_amounts_have_the_symbol_and_grouping(self, settings, code, value, text):
        settings.CRM_CURRENCY = code
        assert format_money(value) == text

    def test_grouping_in_chinese_too(self, settings):
        from django.utils import translation

        settings.CRM_CURRENCY = "CNY"
        with translation.override("zh-hans"):
            assert format_money(Decimal("1234567.5")) == "¥1,234,567.50"

    @pytest.mark.parametrize(
        "url",
        [
            "/admin/",
            "/admin/opportunities/opportunity/",
            "/admin/opportunities/opportunity/board/",
            "/admin/customers/customer/",
            "/admin/companies/company/",
        ],
    )
    def test_the_admin_shows_amounts_with_the_currency(self, settings, manager, url):
        settings.CRM_CURRENCY = "EUR"
        customer = CustomerFactory(owner=manager, company="Acme")
        OpportunityFactory(customer=customer, value=Decimal("1234567.89"), stage="lead")
        html = browser(manager).get(url).content.decode()
        assert "€1,234,567.89" in html

    def test_the_customer_page_header_shows_the_currency(self, settings, manager):
        settings.CRM_CURRENCY = "GBP"
        customer = CustomerFactory(owner=manager)
        OpportunityFactory(customer=customer, value=Decimal("2500"), stage="lead")
        html = browser(manager).get(f"/admin/customers/customer/{customer.pk}/change/").content.decode()
        assert "£2,500.00" in html

    def test_admin_times_are_in_the_users_time_zone(self, settings):
        user = member("shanghai", "Sales manager", time_zone="Asia/Shanghai", is_staff=True)
        InteractionFactory(
            customer=CustomerFactory(owner=user),
            occurred_at=datetime.datetime(2026, 3, 1, 23, 30, tzinfo=datetime.UTC),
            notes="late call",
        )
        html = browser(user).get("/admin/interactions/interaction/").content.decode()
        # 23:30 UTC is 07:30 the next morning in Shanghai.
        assert "March 2, 2026, 7:30" in html or "2026-03-02" in html

    @pytest.mark.parametrize("time_zone", ["Asia/Shanghai", None])
    def test_the_time_zone_costs_no_query_of_its_own(self, time_zone):
        # The session's user is read with their preferences (one join): no query on the preferences' table,
        # whether the user has a row (their zone) or not (the defaults).
        user = member("tz", "Sales manager", time_zone=time_zone, is_staff=True)
        InteractionFactory(
            customer=CustomerFactory(owner=user), occurred_at=datetime.datetime(2026, 3, 1, 23, 30, tzinfo=datetime.UTC)
        )
        client = browser(user)
        with CaptureQueriesContext(connection) as captured:
            html = client.get("/admin/interactions/interaction/").content.decode()
        table = UserPreferences._meta.db_table
        assert [q["sql"] for q in captured if f'FROM "{table}"' in q["sql"]] == []
        assert sum(f'JOIN "{table}"' in q["sql"] for q in captured) == 1
        expected = "March 2, 2026, 7:30" if time_zone else "March 1, 2026, 11:30"
        assert expected in html

    def test_the_api_stays_in_utc(self, settings):
        from tests.tasks.conftest import client_of

        user = member("shanghai2", "Sales manager", time_zone="Asia/Shanghai", is_staff=True)
        interaction = InteractionFactory(
            customer=CustomerFactory(owner=user),
            occurred_at=datetime.datetime(2026, 3, 1, 23, 30, tzinfo=datetime.UTC),
        )
        body = client_of(user).get(f"/api/interactions/{interaction.pk}").json()
        assert str(body).count("2026-03-01T23:30:00") >= 1


def test_the_rep_table_and_owner_filter_in_chinese(manager, rep, settings):
    settings.CRM_CURRENCY = "CNY"
    OpportunityFactory(customer=CustomerFactory(owner=rep), value=Decimal("1234567"), stage="lead")
    client = browser(manager)
    html = client.get("/admin/", HTTP_ACCEPT_LANGUAGE="zh-hans").content.decode()
    assert "按销售代表" in html and "本周活动" in html and "¥1,234,567.00" in html
    html = client.get("/admin/customers/customer/", HTTP_ACCEPT_LANGUAGE="zh-hans").content.decode()
    assert "我可见的全部" in html


def test_the_company_page_lists_its_deals_with_the_currency(manager, settings):
    from tests.factories import CompanyFactory

    settings.CRM_CURRENCY = "USD"
    company = CompanyFactory(name="Acme", owner=manager)
    OpportunityFactory(customer=CustomerFactory(owner=manager, company=company), company=company, value=Decimal("4200"))
    html = browser(manager).get(f"/admin/companies/company/{company.pk}/change/").content.decode()
    assert "$4,200.00" in html
