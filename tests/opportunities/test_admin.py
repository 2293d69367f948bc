from datetime import date, datetime, timedelta
from decimal import Decimal

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext
from django.utils import timezone

from opportunities.models import Opportunity, StageChange
from opportunities.services import opportunity_set_stage
from tests.core.admin.helpers import CSV_FORMAT, XLSX_FORMAT, export_data, form_data, import_rows, read_csv, upload
from tests.factories import CustomerFactory, InteractionFactory, OpportunityFactory

URL = "/admin/opportunities/opportunity/"

pytestmark = pytest.mark.django_db


def titles(response):
    return sorted(opportunity.title for opportunity in response.context["cl"].result_list)


class TestChangelist:
    def test_totals_of_the_filtered_list(self, admin_client):
        OpportunityFactory(title="Small", value=Decimal("100.00"), stage=Opportunity.Stage.LEAD)  # 10 %
        OpportunityFactory(title="Mid", value=Decimal("1000.00"), stage=Opportunity.Stage.PROPOSAL)  # 40 %
        OpportunityFactory(title="Won", value=Decimal("5000.00"), stage=Opportunity.Stage.CLOSED)

        everything = admin_client.get(URL)
        assert everything.context["totals"] == {
            "count": 3,
            "total_value": Decimal("6100.00"),
            "weighted_value": Decimal("5410.00"),
        }
        assert 'data-total="value">$6,100.00<' in everything.content.decode()

        open_only = admin_client.get(URL, {"stage__in": "lead,proposal"})
        assert open_only.context["totals"]["total_value"] == Decimal("1100.00")
        assert open_only.context["totals"]["weighted_value"] == Decimal("410.00")

    def test_totals_cover_every_page_not_only_the_first(self, admin_client):
        OpportunityFactory.create_batch(55, value=Decimal("10.00"), stage=Opportunity.Stage.CLOSED)
        response = admin_client.get(URL)
        assert len(response.context["cl"].result_list) == 50
        assert response.context["totals"]["total_value"] == Decimal("550.00")

    def test_query_count_does_not_grow_with_rows(self, admin_client):
        OpportunityFactory()
        with CaptureQueriesContext(connection) as few:
            admin_client.get(URL)
        OpportunityFactory.create_batch(15)
        with CaptureQueriesContext(connection) as many:
            response = admin_client.get(URL)
        assert len(response.context["cl"].result_list) == 16
        assert len(many) == len(few)

    def test_filter_by_stage(self, admin_client):
        OpportunityFactory(title="Negotiating", stage=Opportunity.Stage.NEGOTIATION)
        OpportunityFactory(title="Lost one", stage=Opportunity.Stage.LOST)
        assert titles(admin_client.get(URL, {"stage__exact": "lost"})) == ["Lost one"]

    @pytest.mark.parametrize(
        ("params", "expected"),
        [
            ({"value_min": "1000"}, ["Big", "Mid"]),
            ({"value_max": "999.99"}, ["Small"]),
            ({"value_min": "1,000", "value_max": "10000"}, ["Mid"]),
            ({"value_min": "100000"}, []),
        ],
    )
    def test_filter_by_value_range(self, admin_client, params, expected):
        OpportunityFactory(title="Small", value=Decimal("999.99"))
        OpportunityFactory(title="Mid", value=Decimal("1000.00"))
        OpportunityFactory(title="Big", value=Decimal("25000.00"))
        response = admin_client.get(URL, params)
        assert titles(response) == expected
        assert response.context["totals"]["count"] == len(expected)

    def test_value_range_brackets_and_form_are_shown(self, admin_client):
        html = admin_client.get(URL, {"stage__exact": "lead"}).content.decode()
        assert "By value" in html and "1,000 to 10,000" in html
        assert 'name="value_min"' in html
        # The little form keeps the other filters.
        assert 'name="stage__exact" value="lead"' in html

    def test_invalid_value_range_warns_instead_of_failing(self, admin_client):
        OpportunityFactory(title="Any")
        response = admin_client.get(URL, {"value_min": "lots", "value_max": "NaN"})
        assert response.status_code == 200
        assert titles(response) == ["Any"]
        assert "The value range needs numbers" in response.content.decode()

    @pytest.mark.parametrize("term", ["Renewal", "Initech"])
    def test_search_title_and_customer(self, admin_client, term):
        OpportunityFactory(title="Renewal 2025", customer=CustomerFactory(name="Initech"))
        OpportunityFactory(title="Other", customer=CustomerFactory(name="Hooli"))
        assert titles(admin_client.get(URL, {"q": term})) == ["Renewal 2025"]

    def test_stage_and_probability_are_editable_from_the_list(self, admin_client, admin_user):
        opportunity = OpportunityFactory(stage=Opportunity.Stage.LEAD, probability=10)
        data = {
            "form-TOTAL_FORMS": "1",
            "form-INITIAL_FORMS": "1",
            "form-MIN_NUM_FORMS": "0",
            "form-MAX_NUM_FORMS": "1000",
            "form-0-id": str(opportunity.pk),
            "form-0-stage": Opportunity.Stage.NEGOTIATION,
            "form-0-probability": "65",
            "_save": "Save",
        }

        response = admin_client.post(URL, data)

        assert response.status_code == 302
        opportunity.refresh_from_db()
        assert (opportunity.stage, opportunity.probability) == ("negotiation", 65)
        assert StageChange.objects.filter(opportunity=opportunity, to_stage="negotiation").exists()
        latest = opportunity.history.first()
        assert (latest.history_type, latest.stage, latest.history_user) == ("~", "negotiation", admin_user)

    def test_list_edit_of_stage_alone_takes_the_stage_probability(self, admin_client):
        opportunity = OpportunityFactory(stage=Opportunity.Stage.LEAD, probability=10)
        data = {
            "form-TOTAL_FORMS": "1",
            "form-INITIAL_FORMS": "1",
            "form-0-id": str(opportunity.pk),
            "form-0-stage": Opportunity.Stage.PROPOSAL,
            "form-0-probability": "10",
            "_save": "Save",
        }
        assert admin_client.post(URL, data).status_code == 302
        opportunity.refresh_from_db()
        assert (opportunity.stage, opportunity.probability) == ("proposal", 40)

    def test_list_edit_rejects_probability_over_100(self, admin_client):
        opportunity = OpportunityFactory(probability=10)
        data = {
            "form-TOTAL_FORMS": "1",
            "form-INITIAL_FORMS": "1",
            "form-0-id": str(opportunity.pk),
            "form-0-stage": opportunity.stage,
            "form-0-probability": "150",
            "_save": "Save",
        }
        response = admin_client.post(URL, data)
        assert response.status_code == 200
        assert response.context["cl"].formset.errors[0]["probability"]
        opportunity.refresh_from_db()
        assert opportunity.probability == 10

    def test_customer_is_chosen_with_autocomplete(self, admin_client):
        CustomerFactory(name="Not in a select")
        html = admin_client.get(f"{URL}add/").content.decode()
        assert "admin-autocomplete" in html and "Not in a select" not in html


HEADER = ["id", "customer", "title", "value", "stage", "probability", "expected_close_date"]


class TestImportExport:
    def test_import_matches_customers_by_id_or_email(self, admin_client):
        first = CustomerFactory()
        second = CustomerFactory(email="deals@example.com")
        rows = [
            HEADER,
            ["", first.pk, "By id", "1500.00", "proposal", "", "2025-06-30"],
            ["", "DEALS@example.com", "By email", "200", "negotiation", "80", ""],
        ]
        import_rows(admin_client, URL, rows)
        by_id = first.opportunities.get()
        assert (by_id.title, by_id.value, by_id.probability) == ("By id", Decimal("1500.00"), 40)
        assert by_id.expected_close_date.isoformat() == "2025-06-30"
        assert second.opportunities.get().probability == 80

    def test_invalid_rows_are_reported_with_line_numbers(self, admin_client):
        customer = CustomerFactory()
        rows = [
            HEADER,
            ["", customer.pk, "Fine", "10", "lead", "", ""],
            ["", customer.pk, "Negative", "-5", "lead", "", ""],
            ["", customer.pk, "Too likely", "10", "lead", "101", ""],
            ["", customer.pk, "Bad date", "10", "lead", "", "someday"],
            ["", customer.pk, "", "10", "lead", "", ""],
        ]
        preview = upload(admin_client, URL, rows)
        invalid = {row.number: row.field_specific_errors for row in preview.context["result"].invalid_rows}
        assert sorted(invalid) == [2, 3, 4, 5]
        assert "value" in invalid[2] and "probability" in invalid[3]
        assert "expected_close_date" in invalid[4] and "title" in invalid[5]
        assert not Opportunity.objects.exists()

    def test_export_respects_filters(self, admin_client):
        OpportunityFactory(title="Won deal", stage=Opportunity.Stage.CLOSED, customer=CustomerFactory(name="Happy"))
        OpportunityFactory(title="Open deal", stage=Opportunity.Stage.LEAD)
        query = "?stage__exact=closed"
        form = admin_client.get(f"{URL}export/{query}").context["form"]
        rows = read_csv(admin_client.post(f"{URL}export/{query}", export_data(form)))
        assert [(row["title"], row["customer_name"], row["stage"]) for row in rows] == [("Won deal", "Happy", "closed")]
        assert rows[0]["closed_at"]


class TestDashboard:
    def test_index_shows_pipeline_closing_this_month_and_latest_interactions(self, admin_client):
        today = timezone.localdate()
        OpportunityFactory(title="Closing soon", value=Decimal("300"), stage="proposal", expected_close_date=today)
        OpportunityFactory(title="Later", stage="proposal", expected_close_date=today + timedelta(days=70))
        OpportunityFactory(title="Won", value=Decimal("700"), stage=Opportunity.Stage.CLOSED)
        OpportunityFactory(title="Lost", value=Decimal("100"), stage=Opportunity.Stage.LOST)
        InteractionFactory(notes="Latest chat")

        response = admin_client.get("/admin/")

        assert response.status_code == 200
        context = response.context
        assert context["pipeline"]["closing_this_month"]["count"] == 1
        assert [o.title for o in context["closing_this_month"]] == ["Closing soon"]
        assert context["win_rate_percent"] == {"by_count": 50.0, "by_value": 87.5}
        bars = {bar["stage"]: bar for bar in context["pipeline_bars"]}
        assert (bars["proposal"]["value_width"], bars["closed"]["value_width"]) == (100.0, 53.8)
        assert bars["proposal"]["count"] == 2
        html = response.content.decode()
        assert 'id="pipeline-chart"' in html and "Closing soon" in html and "Latest chat" in html
        assert "50.0%" in html
        # Nothing is fetched from elsewhere: no external scripts or stylesheets.
        assert "https://" not in html.split("</head>")[0]

    def test_dashboard_query_count_does_not_grow_with_data(self, admin_client):
        today = timezone.localdate()
        OpportunityFactory(expected_close_date=today)
        InteractionFactory()
        with CaptureQueriesContext(connection) as few:
            admin_client.get("/admin/")
        OpportunityFactory.create_batch(8, expected_close_date=today)
        InteractionFactory.create_batch(8)
        with CaptureQueriesContext(connection) as many:
            admin_client.get("/admin/")
        assert len(many) == len(few)

    def test_staff_without_pipeline_permission_see_no_figures(self, client, django_user_model):
        user = django_user_model.objects.create_user("plain", password="pw", is_staff=True)
        client.force_login(user)
        response = client.get("/admin/")
        assert response.status_code == 200
        assert "pipeline" not in response.context
        assert 'id="pipeline-chart"' not in response.content.decode()


class TestImportIsAsStrictAsTheAPI:
    """Each cell is refused or stored by the admin import exactly as the API does with the same value."""

    @pytest.mark.parametrize(
        ("column", "cell", "sent"),
        [
            ("probability", "50.5", 50.5),
            ("probability", "high", "high"),
            ("probability", "101", 101),
            ("value", "-1", -1),
            ("value", "abc", "abc"),
            ("value", "1e15", 1e15),
            ("stage", "won", "won"),
            ("expected_close_date", "soon", "soon"),
            ("expected_close_date", "2025-02-30", "2025-02-30"),
            ("title", "a\x00b", "a\x00b"),
            ("title", "t" * 30_000, "t" * 30_000),
        ],
    )
    def test_refused_with_the_api_message(self, admin_client, api, column, cell, sent):
        customer = CustomerFactory()
        values = {"id": "", "customer": customer.pk, "title": "Deal", "value": "10", "stage": "lead"}
        values.update({"probability": "", "expected_close_date": "", column: cell})

        preview = upload(admin_client, URL, [HEADER, [values[name] for name in HEADER]])
        payload = {"customer_id": customer.pk, "title": "Deal", column: sent}
        answer = api.post("/api/opportunities", payload, format="json")

        invalid = {row.number: row.field_specific_errors for row in preview.context["result"].invalid_rows}
        assert answer.status_code == 400
        assert invalid == {1: {column: answer.json()["error"]["fields"][column]}}
        assert not Opportunity.objects.exists()

    @pytest.mark.parametrize("file_format", [CSV_FORMAT, XLSX_FORMAT])
    @pytest.mark.parametrize(("cell", "stored"), [("1.999", "2.00"), ("0.005", "0.01"), ("1500", "1500.00")])
    def test_value_is_rounded_like_the_api_does(self, admin_client, api, file_format, cell, stored):
        customer = CustomerFactory()
        typed = float(cell) if file_format == XLSX_FORMAT else cell
        import_rows(admin_client, URL, [HEADER, ["", customer.pk, "Deal", typed, "lead", "", ""]], file_format)
        answer = api.post(
            "/api/opportunities", {"customer_id": customer.pk, "title": "API", "value": float(cell)}, format="json"
        )
        assert Opportunity.objects.get(title="Deal").value == Decimal(stored)
        assert Opportunity.objects.get(title="API").value == Decimal(stored)
        assert answer.status_code == 201

    def test_probability_typed_as_a_decimal_in_xlsx_is_refused(self, admin_client):
        customer = CustomerFactory()
        preview = upload(admin_client, URL, [HEADER, ["", customer.pk, "Deal", 10, "lead", 50.5, None]], XLSX_FORMAT)
        invalid = {row.number: row.field_specific_errors for row in preview.context["result"].invalid_rows}
        assert invalid == {1: {"probability": ["A valid integer is required."]}}

    def test_whole_numbers_and_dates_from_xlsx_are_taken(self, admin_client):
        customer = CustomerFactory()
        row = ["", customer.pk, "Deal", 10, "proposal", 55.0, datetime(2025, 7, 1)]
        import_rows(admin_client, URL, [HEADER, row], XLSX_FORMAT)
        opportunity = Opportunity.objects.get()
        assert (opportunity.probability, opportunity.expected_close_date) == (55, date(2025, 7, 1))

    def test_update_that_changes_stage_takes_the_stage_default_probability(self, admin_client):
        opportunity = OpportunityFactory(stage=Opportunity.Stage.LEAD, probability=15)
        columns = ["id", "customer", "title", "stage"]
        import_rows(admin_client, URL, [columns, [opportunity.pk, opportunity.customer_id, "Moved", "negotiation"]])
        opportunity.refresh_from_db()
        assert (opportunity.title, opportunity.stage, opportunity.probability) == ("Moved", "negotiation", 70)
        assert opportunity.closed_at is None


class TestListEditMeanwhile:
    """The list's stage and probability, saved while someone else moved a deal of the page."""

    def shown(self, client):
        """The list's form as the page shows it, posted back as a browser does."""
        formset = client.get(URL).context["cl"].formset
        data = {"_save": "Save", **form_data(formset.management_form)}
        for form in formset.forms:
            data.update(form_data(form))
        return data, {form.instance.pk: form.prefix for form in formset.forms}

    def test_a_row_left_as_shown_is_not_written_back(self, admin_client):
        moved, edited = OpportunityFactory(title="Moved"), OpportunityFactory(title="Edited")
        data, prefixes = self.shown(admin_client)
        # Someone else moves a deal of the page (the board, the API) meanwhile.
        opportunity_set_stage(opportunity=moved, stage=Opportunity.Stage.NEGOTIATION, probability=None)
        moved.save()

        response = admin_client.post(URL, {**data, f"{prefixes[edited.pk]}-probability": "55"})

        assert response.status_code == 302
        moved.refresh_from_db(), edited.refresh_from_db()
        assert (moved.stage, moved.probability) == ("negotiation", 70)
        assert (edited.stage, edited.probability) == ("lead", 55)

    def test_a_row_edited_after_someone_else_changed_it_is_refused(self, admin_client):
        deal = OpportunityFactory(title="Both")
        data, prefixes = self.shown(admin_client)
        opportunity_set_stage(opportunity=deal, stage=Opportunity.Stage.NEGOTIATION, probability=None)
        deal.save()

        response = admin_client.post(URL, {**data, f"{prefixes[deal.pk]}-probability": "55"})

        assert response.status_code == 200
        assert "Changed by someone else" in str(response.context["cl"].formset.errors)
        deal.refresh_from_db()
        assert (deal.stage, deal.probability) == ("negotiation", 70)
