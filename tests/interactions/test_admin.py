from datetime import timedelta

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext
from django.utils import timezone

from interactions.models import Interaction
from tests.core.admin.helpers import CSV_FORMAT, XLSX_FORMAT, export_data, import_rows, read_csv, upload
from tests.factories import CustomerFactory, InteractionFactory

URL = "/admin/interactions/interaction/"

pytestmark = pytest.mark.django_db


def notes(response):
    return sorted(interaction.notes for interaction in response.context["cl"].result_list)


class TestChangelist:
    def test_lists_newest_first_with_customer(self, admin_client):
        customer = CustomerFactory(name="Ringo")
        InteractionFactory(customer=customer, notes="first", occurred_at=timezone.now() - timedelta(days=2))
        InteractionFactory(customer=customer, notes="second", occurred_at=timezone.now() - timedelta(days=1))
        response = admin_client.get(URL)
        assert [i.notes for i in response.context["cl"].result_list] == ["second", "first"]
        assert "Ringo" in response.content.decode()

    def test_query_count_does_not_grow_with_rows(self, admin_client):
        InteractionFactory.create_batch(11)
        with CaptureQueriesContext(connection) as few:
            admin_client.get(URL, {"interaction_type__exact": "call"})
        InteractionFactory.create_batch(10)
        with CaptureQueriesContext(connection) as many:
            response = admin_client.get(URL, {"interaction_type__exact": "call"})
        assert len(response.context["cl"].result_list) == 21
        assert len(many) == len(few)

    def test_filter_by_type(self, admin_client):
        InteractionFactory(interaction_type=Interaction.Type.EMAIL, notes="mail")
        InteractionFactory(interaction_type=Interaction.Type.CALL, notes="phone")
        assert notes(admin_client.get(URL, {"interaction_type__exact": "email"})) == ["mail"]

    def test_filter_by_date(self, admin_client):
        InteractionFactory(notes="old", occurred_at=timezone.now() - timedelta(days=90))
        InteractionFactory(notes="new", occurred_at=timezone.now() - timedelta(hours=1))
        since = (timezone.now() - timedelta(days=7)).isoformat()
        assert notes(admin_client.get(URL, {"occurred_at__gte": since})) == ["new"]
        html = admin_client.get(URL).content.decode()
        assert "By occurred at" in html and "By type" in html

    @pytest.mark.parametrize("term", ["pricing", "Globex"])
    def test_search_notes_and_customer_name(self, admin_client, term):
        InteractionFactory(customer=CustomerFactory(name="Globex buyer"), notes="Asked about pricing")
        InteractionFactory(notes="Unrelated")
        assert notes(admin_client.get(URL, {"q": term})) == ["Asked about pricing"]

    def test_customer_is_chosen_with_autocomplete(self, admin_client):
        CustomerFactory(name="Autocomplete Me")
        CustomerFactory(name="Someone else")
        page = admin_client.get(f"{URL}add/").content.decode()
        assert "admin-autocomplete" in page
        assert "Someone else" not in page
        response = admin_client.get(
            "/admin/autocomplete/",
            {"app_label": "interactions", "model_name": "interaction", "field_name": "customer", "term": "Autocomp"},
        )
        results = response.json()["results"]
        assert len(results) == 1 and results[0]["text"].startswith("Autocomplete Me")


HEADER = ["id", "customer", "interaction_type", "notes", "occurred_at"]


class TestImportExport:
    def test_customer_matched_by_id_or_email(self, admin_client, admin_user):
        by_id = CustomerFactory()
        by_email = CustomerFactory(email="Mixed.Case@Example.com")
        rows = [
            HEADER,
            ["", by_id.pk, "call", "by id", "2025-02-03 10:00:00"],
            ["", "mixed.case@example.COM", "email", "by email", ""],
        ]

        import_rows(admin_client, URL, rows)

        assert by_id.interactions.get().notes == "by id"
        created = by_email.interactions.get()
        assert created.interaction_type == Interaction.Type.EMAIL
        assert created.history.get().history_user == admin_user

    def test_unknown_customer_and_type_are_row_errors(self, admin_client):
        customer = CustomerFactory()
        rows = [
            HEADER,
            ["", customer.pk, "call", "ok", ""],
            ["", "nobody@example.com", "call", "no such customer", ""],
            ["", customer.pk, "telepathy", "bad type", ""],
            ["", "", "call", "no customer", ""],
        ]
        preview = upload(admin_client, URL, rows)
        invalid = {row.number: row.field_specific_errors for row in preview.context["result"].invalid_rows}
        assert sorted(invalid) == [2, 3, 4]
        assert "customer" in invalid[2] and "interaction_type" in invalid[3] and "customer" in invalid[4]
        assert invalid[2] == {"customer": ["No customer with id or email “nobody@example.com”."]}
        assert invalid[4] == {"customer": ["A customer id or email is required."]}
        assert not Interaction.objects.exists()

    def test_update_by_id(self, admin_client):
        interaction = InteractionFactory(notes="before")
        import_rows(
            admin_client,
            URL,
            [HEADER, [interaction.pk, interaction.customer.email, "meeting", "after", "2025-01-01 09:00:00"]],
            XLSX_FORMAT,
        )
        interaction.refresh_from_db()
        assert (interaction.notes, interaction.interaction_type) == ("after", "meeting")

    def test_export_respects_filters_and_names_the_customer(self, admin_client):
        InteractionFactory(interaction_type=Interaction.Type.MEETING, customer=CustomerFactory(name="Met"), notes="m")
        InteractionFactory(interaction_type=Interaction.Type.CALL, notes="c")
        query = "?interaction_type__exact=meeting"
        form = admin_client.get(f"{URL}export/{query}").context["form"]
        rows = read_csv(admin_client.post(f"{URL}export/{query}", export_data(form)))
        assert [(row["notes"], row["customer_name"]) for row in rows] == [("m", "Met")]

    @pytest.mark.parametrize(
        ("column", "cell"),
        [
            ("notes", "n" * 30_000),
            ("notes", "before\x00after"),
            ("interaction_type", "telepathy"),
            ("occurred_at", "yesterday-ish"),
            ("occurred_at", "2025-13-01 10:00"),
        ],
    )
    def test_cells_are_refused_with_the_api_message(self, admin_client, api, column, cell):
        customer = CustomerFactory()
        values = {"id": "", "customer": customer.pk, "interaction_type": "call", "notes": "", "occurred_at": ""}
        values[column] = cell

        preview = upload(admin_client, URL, [HEADER, [values[name] for name in HEADER]])
        payload = {"customer_id": customer.pk, "interaction_type": "call", column: cell}
        answer = api.post("/api/interactions", payload, format="json")

        invalid = {row.number: row.field_specific_errors for row in preview.context["result"].invalid_rows}
        assert answer.status_code == 400
        assert invalid == {1: {column: answer.json()["error"]["fields"][column]}}
        assert not Interaction.objects.exists()

    @pytest.mark.parametrize("cell", ["a@example.com\x00", "99999999999999999999999", "1\x00"])
    def test_unusable_customer_cell_is_a_row_error(self, admin_client, cell):
        CustomerFactory(email="a@example.com")
        preview = upload(admin_client, URL, [HEADER, ["", cell, "call", "", ""]])
        invalid = {row.number: row.field_specific_errors for row in preview.context["result"].invalid_rows}
        assert list(invalid) == [1] and list(invalid[1]) == ["customer"]
        assert not preview.context["result"].has_errors()

    def test_export_neutralises_formulas_in_notes(self, admin_client):
        InteractionFactory(notes="=cmd|' /C calc'!A0")
        form = admin_client.get(f"{URL}export/").context["form"]
        rows = read_csv(admin_client.post(f"{URL}export/", export_data(form)))
        assert [row["notes"] for row in rows] == ["'=cmd|' /C calc'!A0"]

    @pytest.mark.parametrize("file_format", [CSV_FORMAT, XLSX_FORMAT])
    def test_an_exported_file_imports_back_without_the_apostrophes_it_put_before_formulas(
        self, admin_client, file_format
    ):
        texts = ["=cmd|' /C calc'!A0", "@acme asked for a call", "-", "'quoted' as typed", "+1 555 0100"]
        for text in texts:
            InteractionFactory(notes=text)
        form = admin_client.get(f"{URL}export/").context["form"]
        rows = read_csv(admin_client.post(f"{URL}export/", export_data(form)))
        assert sorted(row["notes"] for row in rows)[:2] == ["'=cmd|' /C calc'!A0", "'@acme asked for a call"]

        import_rows(admin_client, URL, [list(rows[0]), *(list(row.values()) for row in rows)], file_format)

        assert sorted(Interaction.objects.values_list("notes", flat=True)) == sorted(texts)
