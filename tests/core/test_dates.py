"""Dates typed into records (an interaction's ``occurred_at``, an opportunity's ``expected_close_date``)
fall in the years 1900-2200, alike through the API, the admin's forms and the admin's import."""

import datetime

import pytest

from core.dates import FIRST_YEAR, LAST_YEAR
from interactions.models import Interaction
from opportunities.models import Opportunity
from tests.core.admin.helpers import import_rows, upload
from tests.factories import CustomerFactory, InteractionFactory, OpportunityFactory

pytestmark = pytest.mark.django_db

MESSAGE = f"Enter a date in the years {FIRST_YEAR} to {LAST_YEAR}."

OUT_OF_RANGE_MOMENTS = [
    "9999-12-31T00:00:00Z",
    "2201-01-01T00:00:00Z",
    "1899-12-31T23:59:59Z",
    "0001-01-01T00:00:00Z",
    # 2200 where it happened, but 2201 in UTC, the time zone dates are stored and drilled into in.
    "2200-12-31T23:30:00-01:00",
]
IN_RANGE_MOMENTS = ["1900-01-01T00:00:00Z", "2200-12-31T23:59:59Z", "2025-03-01T10:00:00+08:00"]
OUT_OF_RANGE_DAYS = ["9999-12-31", "2201-01-01", "1899-12-31", "0001-01-01"]
IN_RANGE_DAYS = ["1900-01-01", "2200-12-31"]


class TestAPI:
    @pytest.mark.parametrize("moment", OUT_OF_RANGE_MOMENTS)
    def test_interaction_create_refuses_an_implausible_occurred_at(self, api, moment):
        customer = CustomerFactory()

        response = api.post(
            "/api/interactions",
            {"customer_id": customer.pk, "interaction_type": "call", "occurred_at": moment},
            format="json",
        )

        assert response.status_code == 400
        assert response.json()["error"]["fields"] == {"occurred_at": [MESSAGE]}
        assert not Interaction.objects.exists()

    @pytest.mark.parametrize("moment", IN_RANGE_MOMENTS)
    def test_interaction_create_takes_the_first_and_last_plausible_moments(self, api, moment):
        customer = CustomerFactory()

        response = api.post(
            "/api/interactions",
            {"customer_id": customer.pk, "interaction_type": "call", "occurred_at": moment},
            format="json",
        )

        assert response.status_code == 201
        stored = Interaction.objects.get().occurred_at
        assert stored == datetime.datetime.fromisoformat(moment)

    def test_interaction_update_refuses_an_implausible_occurred_at(self, api):
        interaction = InteractionFactory()
        before = interaction.occurred_at

        response = api.patch(
            f"/api/interactions/{interaction.pk}", {"occurred_at": "9999-12-31T00:00:00Z"}, format="json"
        )

        assert response.status_code == 400
        assert response.json()["error"]["fields"] == {"occurred_at": [MESSAGE]}
        interaction.refresh_from_db()
        assert interaction.occurred_at == before

    def test_a_stored_implausible_date_does_not_block_other_changes(self, api):
        # Records stored before the check keep working: only the dates sent are checked.
        interaction = InteractionFactory(occurred_at=datetime.datetime(9999, 12, 31, tzinfo=datetime.UTC))

        response = api.patch(f"/api/interactions/{interaction.pk}", {"notes": "still here"}, format="json")

        assert response.status_code == 200
        assert response.json()["data"]["occurred_at"] == "9999-12-31T00:00:00Z"

    @pytest.mark.parametrize("day", OUT_OF_RANGE_DAYS)
    def test_opportunity_create_and_update_refuse_an_implausible_close_date(self, api, day):
        customer = CustomerFactory()
        opportunity = OpportunityFactory(customer=customer, expected_close_date=datetime.date(2025, 6, 30))

        created = api.post(
            "/api/opportunities", {"customer_id": customer.pk, "title": "x", "expected_close_date": day}, format="json"
        )
        updated = api.patch(f"/api/opportunities/{opportunity.pk}", {"expected_close_date": day}, format="json")

        for response in (created, updated):
            assert response.status_code == 400
            assert response.json()["error"]["fields"] == {"expected_close_date": [MESSAGE]}
        assert Opportunity.objects.get().expected_close_date == datetime.date(2025, 6, 30)

    @pytest.mark.parametrize("day", IN_RANGE_DAYS)
    def test_opportunity_takes_the_first_and_last_plausible_close_dates(self, api, day):
        customer = CustomerFactory()

        response = api.post(
            "/api/opportunities", {"customer_id": customer.pk, "title": "x", "expected_close_date": day}, format="json"
        )

        assert response.status_code == 201
        assert response.json()["data"]["expected_close_date"] == day

    def test_the_schema_states_the_years(self, api):
        schema = api.get("/api/schema/", {"format": "json"}).json()["components"]["schemas"]

        assert f"{FIRST_YEAR}-{LAST_YEAR}" in schema["Interaction"]["properties"]["occurred_at"]["description"]
        assert f"{FIRST_YEAR}-{LAST_YEAR}" in schema["Opportunity"]["properties"]["expected_close_date"]["description"]


class TestAdminForms:
    def test_interaction_form_refuses_year_9999(self, admin_client):
        customer = CustomerFactory()

        response = admin_client.post(
            "/admin/interactions/interaction/add/",
            {
                "customer": customer.pk,
                "interaction_type": Interaction.Type.CALL,
                "notes": "typo",
                "occurred_at_0": "9999-12-31",
                "occurred_at_1": "10:00:00",
            },
        )

        assert response.status_code == 200
        assert response.context["adminform"].form.errors == {"occurred_at": [MESSAGE]}
        assert not Interaction.objects.exists()

    def test_opportunity_form_refuses_year_9999(self, admin_client):
        opportunity = OpportunityFactory(expected_close_date=None)

        response = admin_client.post(
            f"/admin/opportunities/opportunity/{opportunity.pk}/change/",
            {
                "customer": opportunity.customer_id,
                "title": opportunity.title,
                "value": "1000.00",
                "stage": opportunity.stage,
                "probability": "10",
                "expected_close_date": "9999-12-31",
            },
        )

        assert response.status_code == 200
        assert response.context["adminform"].form.errors == {"expected_close_date": [MESSAGE]}
        opportunity.refresh_from_db()
        assert opportunity.expected_close_date is None

    def test_customer_inlines_refuse_implausible_dates(self, admin_client):
        data = {
            "name": "Inline typo",
            "company": "",
            "status": "active",
            "email": "",
            "phone": "",
            "interactions-TOTAL_FORMS": "1",
            "interactions-INITIAL_FORMS": "0",
            "interactions-0-occurred_at_0": "1899-12-31",
            "interactions-0-occurred_at_1": "10:00:00",
            "interactions-0-interaction_type": Interaction.Type.MEETING,
            "interactions-0-notes": "",
            "opportunities-TOTAL_FORMS": "1",
            "opportunities-INITIAL_FORMS": "0",
            "tasks-TOTAL_FORMS": "0",
            "tasks-INITIAL_FORMS": "0",
            "opportunities-0-title": "Deal",
            "opportunities-0-value": "1",
            "opportunities-0-stage": Opportunity.Stage.LEAD,
            "opportunities-0-probability": "",
            "opportunities-0-expected_close_date": "2201-01-01",
        }

        response = admin_client.post("/admin/customers/customer/add/", data)

        assert response.status_code == 200
        errors = [inline.formset.errors for inline in response.context["inline_admin_formsets"]]
        assert errors == [[{"occurred_at": [MESSAGE]}], [{"expected_close_date": [MESSAGE]}], []]
        assert not Interaction.objects.exists() and not Opportunity.objects.exists()


class TestAdminImport:
    def test_interaction_rows_with_implausible_dates_are_row_errors(self, admin_client):
        customer = CustomerFactory()
        rows = [
            ["id", "customer", "interaction_type", "notes", "occurred_at"],
            ["", customer.pk, "call", "fine", "2025-02-03 10:00:00"],
            ["", customer.pk, "call", "typo", "9999-12-31 10:00:00"],
        ]

        preview = upload(admin_client, "/admin/interactions/interaction/", rows)

        invalid = {row.number: row.field_specific_errors for row in preview.context["result"].invalid_rows}
        assert invalid == {2: {"occurred_at": [MESSAGE]}}
        assert not Interaction.objects.exists()

    def test_opportunity_rows_with_implausible_dates_are_row_errors(self, admin_client):
        customer = CustomerFactory()
        rows = [
            ["id", "customer", "title", "value", "stage", "probability", "expected_close_date"],
            ["", customer.pk, "Fine", "10", "lead", "", "2200-12-31"],
            ["", customer.pk, "Typo", "10", "lead", "", "9999-12-31"],
        ]

        preview = upload(admin_client, "/admin/opportunities/opportunity/", rows)

        invalid = {row.number: row.field_specific_errors for row in preview.context["result"].invalid_rows}
        assert invalid == {2: {"expected_close_date": [MESSAGE]}}

    def test_plausible_rows_import(self, admin_client):
        customer = CustomerFactory()
        rows = [
            ["id", "customer", "title", "value", "stage", "probability", "expected_close_date"],
            ["", customer.pk, "Fine", "10", "lead", "", "1900-01-01"],
        ]

        import_rows(admin_client, "/admin/opportunities/opportunity/", rows)

        assert Opportunity.objects.get().expected_close_date == datetime.date(1900, 1, 1)
