from datetime import timedelta
from decimal import Decimal

import pytest
from django.core.files.uploadedfile import SimpleUploadedFile
from django.db import connection
from django.test import Client
from django.test.utils import CaptureQueriesContext
from django.urls import reverse
from django.utils import timezone

from customers.models import Customer
from interactions.models import Interaction
from opportunities.models import Opportunity
from tests.core.admin.helpers import (
    CSV_FORMAT,
    XLSX_FORMAT,
    change_form_data,
    confirm,
    csv_bytes,
    export_data,
    import_rows,
    preview_then_confirm,
    read_csv,
    upload,
    xlsx_bytes,
)
from tests.factories import (
    EMAILS_BEYOND_ASCII,
    CompanyFactory,
    CustomerFactory,
    InteractionFactory,
    ManagerFactory,
    OpportunityFactory,
)

URL = "/admin/customers/customer/"

pytestmark = pytest.mark.django_db


def names(response):
    return [customer.name for customer in response.context["cl"].result_list]


def with_activity(**kwargs):
    customer = CustomerFactory(**kwargs)
    InteractionFactory.create_batch(3, customer=customer)
    OpportunityFactory(customer=customer, value=Decimal("100.00"), stage=Opportunity.Stage.LEAD)
    OpportunityFactory(customer=customer, value=Decimal("250.50"), stage=Opportunity.Stage.NEGOTIATION)
    OpportunityFactory(customer=customer, value=Decimal("9999.00"), stage=Opportunity.Stage.CLOSED)
    return customer


class TestChangelist:
    def test_columns_count_each_relation_once(self, admin_client):
        customer = with_activity(name="Acme buyer")
        latest = timezone.now() - timedelta(days=2)
        InteractionFactory(customer=customer, occurred_at=latest)

        response = admin_client.get(URL)

        assert response.status_code == 200
        row = response.context["cl"].result_list[0]
        assert (row.interaction_count, row.open_opportunity_count) == (4, 2)
        assert row.open_pipeline_value == Decimal("350.50")
        assert row.last_interaction_at >= latest
        html = response.content.decode()
        # The open opportunity count is computed (and filtered on) but not a default column: the list fits 1366 px.
        for header in ["Interactions", "Open pipeline value", "Last interaction", "Owner"]:
            assert header in html

    def test_customer_without_activity_shows_zeros(self, admin_client):
        CustomerFactory()
        row = admin_client.get(URL).context["cl"].result_list[0]
        assert (row.interaction_count, row.open_opportunity_count, row.open_pipeline_value) == (0, 0, 0)
        assert row.last_interaction_at is None

    def test_query_count_does_not_grow_with_rows(self, admin_client):
        with_activity()
        with CaptureQueriesContext(connection) as few:
            assert admin_client.get(URL).status_code == 200
        for _ in range(12):
            with_activity()
        with CaptureQueriesContext(connection) as many:
            response = admin_client.get(URL)
        assert len(response.context["cl"].result_list) == 13
        assert len(many) == len(few)

    def test_a_computed_column_is_not_a_sort(self, admin_client):
        # Sorting by a summary figure would compute it for every customer: the parameter is ignored
        # (tests/core/admin/test_lists_at_size.py); the newest come first as without it.
        CustomerFactory(name="Older")
        busy = CustomerFactory(name="Busy")
        InteractionFactory.create_batch(2, customer=busy)
        column = CustomerAdminColumns.index("interaction_count")
        assert names(admin_client.get(URL, {"o": f"{column}"})) == ["Busy", "Older"]

    @pytest.mark.parametrize(
        ("term", "field"),
        [("Zebra", "name"), ("Stripes Ltd", "company"), ("zebra@herd", "email"), ("555-0199", "phone")],
    )
    def test_search(self, admin_client, term, field):
        CustomerFactory(name="Zebra Co", company="Stripes Ltd", email="zebra@herd.example", phone="555-0199")
        CustomerFactory(name="Other", company="Else", email="other@example.com", phone="123")
        assert names(admin_client.get(URL, {"q": term})) == ["Zebra Co"]

    def test_filter_status(self, admin_client):
        CustomerFactory(name="A lead", status=Customer.Status.LEAD)
        CustomerFactory(name="Active one", status=Customer.Status.ACTIVE)
        assert names(admin_client.get(URL, {"status__exact": Customer.Status.LEAD})) == ["A lead"]

    def test_filter_created_date(self, admin_client):
        old = CustomerFactory(name="Old")
        Customer.objects.filter(pk=old.pk).update(created_at=timezone.now() - timedelta(days=60))
        CustomerFactory(name="New")
        since = (timezone.now() - timedelta(days=7)).isoformat()
        assert names(admin_client.get(URL, {"created_at__gte": since})) == ["New"]

    def test_date_hierarchy(self, admin_client):
        old = CustomerFactory(name="Last year")
        Customer.objects.filter(pk=old.pk).update(created_at=timezone.now() - timedelta(days=400))
        CustomerFactory(name="This year")
        year = timezone.now().year
        response = admin_client.get(URL, {"created_at__year": year})
        assert "This year" in names(response) and "Last year" not in names(response)

    @pytest.mark.parametrize(("value", "expected"), [("yes", ["With deal"]), ("no", ["Only won", "Nothing"])])
    def test_filter_has_open_opportunities(self, admin_client, value, expected):
        OpportunityFactory(customer=CustomerFactory(name="With deal"), stage=Opportunity.Stage.PROPOSAL)
        OpportunityFactory(customer=CustomerFactory(name="Only won"), stage=Opportunity.Stage.CLOSED)
        CustomerFactory(name="Nothing")
        assert sorted(names(admin_client.get(URL, {"has_open": value}))) == sorted(expected)

    @pytest.mark.parametrize(("value", "expected"), [("stale", ["Forgotten", "Never"]), ("recent", ["Recent"])])
    def test_filter_no_interaction_in_30_days(self, admin_client, value, expected):
        InteractionFactory(customer=CustomerFactory(name="Recent"), occurred_at=timezone.now() - timedelta(days=3))
        InteractionFactory(customer=CustomerFactory(name="Forgotten"), occurred_at=timezone.now() - timedelta(days=45))
        CustomerFactory(name="Never")
        assert sorted(names(admin_client.get(URL, {"contacted": value}))) == sorted(expected)

    def test_filters_are_listed(self, admin_client):
        html = admin_client.get(URL).content.decode()
        for label in ["By status", "By created at", "By open opportunities", "No interaction in 30 days"]:
            assert label in html


CustomerAdminColumns = [
    "action_checkbox",
    "name",
    "company",
    "email",
    "phone",
    "phone_valid",
    "status",
    "interaction_count",
    "open_pipeline_value",
    "last_interaction_at",
]


class TestActions:
    def test_set_status_in_bulk_records_history(self, admin_client, admin_user):
        chosen = CustomerFactory.create_batch(2, status=Customer.Status.LEAD)
        untouched = CustomerFactory(status=Customer.Status.LEAD)

        response = preview_then_confirm(
            admin_client,
            URL,
            {"action": "set_status_inactive", "_selected_action": [c.pk for c in chosen]},
            follow=True,
        )

        assert response.status_code == 200
        assert "2 customers set to" in response.content.decode()
        for customer in chosen:
            customer.refresh_from_db()
            assert customer.status == Customer.Status.INACTIVE
            latest = customer.history.first()
            assert (latest.history_type, latest.status, latest.history_user) == ("~", "inactive", admin_user)
        untouched.refresh_from_db()
        assert untouched.status == Customer.Status.LEAD

    def test_one_status_action_per_status(self, admin_client):
        actions = [value for value, _ in admin_client.get(URL).context["action_form"].fields["action"].choices]
        for status in Customer.Status:
            assert f"set_status_{status.value}" in actions
        assert "export_admin_action" in actions

    def test_export_selected_as_csv(self, admin_client):
        chosen = CustomerFactory(name="Picked", email="Picked@Example.com")
        CustomerFactory(name="Left out")

        form_page = admin_client.post(URL, {"action": "export_admin_action", "_selected_action": [chosen.pk]})
        assert form_page.status_code == 200
        form = form_page.context["form"]
        data = {**export_data(form, CSV_FORMAT), "export_items": [chosen.pk]}
        response = admin_client.post(f"{URL}export/", data)

        assert response.status_code == 200
        assert response["Content-Type"].startswith("text/csv")
        rows = read_csv(response)
        assert [(row["name"], row["email"]) for row in rows] == [("Picked", "Picked@Example.com")]
        assert set(rows[0]) >= {"id", "name", "company", "email", "phone", "status", "created_at"}

    def test_export_respects_the_changelist_filters(self, admin_client):
        CustomerFactory(name="Lead A", status=Customer.Status.LEAD)
        CustomerFactory(name="Active B", status=Customer.Status.ACTIVE)
        query = "?status__exact=lead"
        form = admin_client.get(f"{URL}export/{query}").context["form"]
        response = admin_client.post(f"{URL}export/{query}", export_data(form, CSV_FORMAT))
        assert [row["name"] for row in read_csv(response)] == ["Lead A"]

    def test_export_xlsx(self, admin_client):
        from openpyxl import load_workbook

        CustomerFactory(name="Spreadsheet user")
        form = admin_client.get(f"{URL}export/").context["form"]
        response = admin_client.post(f"{URL}export/", export_data(form, XLSX_FORMAT))
        assert response["Content-Type"].startswith("application/vnd.openxmlformats")
        import io

        sheet = load_workbook(io.BytesIO(response.content)).active
        assert "Spreadsheet user" in [cell.value for cell in sheet["B"]]


HEADER = ["id", "name", "company", "email", "phone", "status"]


class TestImport:
    def test_preview_writes_nothing_then_confirm_creates(self, admin_client, admin_user):
        rows = [HEADER, ["", "New Co buyer", "New Co", "buyer@newco.example", "555", "lead"]]
        preview = upload(admin_client, URL, rows)
        assert preview.status_code == 200
        assert "New Co buyer" in preview.content.decode()
        assert not Customer.objects.exists()

        response = confirm(admin_client, URL, preview)

        assert response.status_code == 302
        customer = Customer.objects.get()
        assert (customer.name, customer.status, customer.phone) == ("New Co buyer", "lead", "555")
        record = customer.history.get()
        assert (record.history_type, record.history_user) == ("+", admin_user)

    def test_the_external_id_column_is_imported_and_a_taken_one_is_a_row_error(self, admin_client):
        taken = CustomerFactory(external_id="billing-1")
        other = CustomerFactory()
        # A row about another record (its id) cannot take an external_id in use.
        rows = [["id", "name", "external_id"], ["", "Ada", "billing-2"], [other.pk, "Bob", "billing-1"]]

        preview = upload(admin_client, URL, rows)
        assert "A record with this external_id already exists." in preview.content.decode()
        import_rows(admin_client, URL, rows[:2])

        assert Customer.objects.get(name="Ada").external_id == "billing-2"
        # Without an id, the row is about the customer with that external_id (tests/core/admin/test_external_ids.py).
        import_rows(admin_client, URL, [["name", "external_id"], ["Renamed", "billing-1"]])
        taken.refresh_from_db()
        assert taken.name == "Renamed"

    def test_rows_match_customers_by_email_in_any_case(self, admin_client):
        existing = CustomerFactory(name="Old name", email="Sales@Acme.example", status=Customer.Status.LEAD)
        rows = [HEADER, ["", "New name", "Acme", "sales@ACME.example", "", "active"]]

        import_rows(admin_client, URL, rows)

        assert Customer.objects.count() == 1
        existing.refresh_from_db()
        assert (existing.name, existing.status, existing.phone) == ("New name", "active", None)
        assert existing.history.first().history_type == "~"

    @pytest.mark.parametrize(("stored", "written"), EMAILS_BEYOND_ASCII.values(), ids=list(EMAILS_BEYOND_ASCII))
    def test_rows_match_an_email_with_capitals_beyond_ascii_in_another_case(self, admin_client, stored, written):
        # The database compares the emails, lowering both sides as the unique index does.
        existing = CustomerFactory(name="Old name", email=stored)

        import_rows(admin_client, URL, [HEADER, ["", "New name", "", written, "", "active"]])

        assert Customer.objects.get() == existing
        existing.refresh_from_db()
        assert (existing.name, existing.email) == ("New name", written)

    def test_rows_match_customers_by_id(self, admin_client):
        existing = CustomerFactory(name="Before")
        import_rows(admin_client, URL, [HEADER, [existing.pk, "After", "", "", "", "active"]])
        existing.refresh_from_db()
        assert existing.name == "After"
        assert (existing.company_name, existing.email) == (None, None)

    def test_xlsx_import(self, admin_client):
        import_rows(
            admin_client, URL, [HEADER, [None, "From Excel", "XL", "xl@example.com", None, "prospect"]], XLSX_FORMAT
        )
        assert Customer.objects.get().name == "From Excel"

    def test_invalid_rows_are_reported_with_their_line_numbers_and_nothing_is_written(self, admin_client):
        CustomerFactory(email="taken@example.com")
        rows = [
            HEADER,
            ["", "Fine", "", "fine@example.com", "", "active"],
            ["", "", "", "noname@example.com", "", "active"],
            ["", "Bad status", "", "bad@example.com", "", "sleeping"],
            ["", "Bad email", "", "not-an-email", "", "active"],
            ["424242", "Unknown id", "", "", "", "active"],
        ]

        preview = upload(admin_client, URL, rows)

        assert preview.context.get("confirm_form") is None
        invalid = {row.number: row for row in preview.context["result"].invalid_rows}
        assert sorted(invalid) == [2, 3, 4, 5]
        assert "name" in invalid[2].field_specific_errors
        assert "status" in invalid[3].field_specific_errors
        assert "email" in invalid[4].field_specific_errors
        assert "id" in invalid[5].field_specific_errors
        assert "No record with id 424242." in preview.content.decode()
        assert Customer.objects.count() == 1

    def test_unreadable_file_is_a_form_error(self, admin_client):
        response = admin_client.post(
            f"{URL}import/",
            {"resource": "0", "format": XLSX_FORMAT, "import_file": SimpleUploadedFile("x.xlsx", b"not a workbook")},
        )
        assert response.status_code == 200
        assert "import_file" in response.context["form"].errors
        assert not Customer.objects.exists()

    def test_file_without_known_columns_is_refused(self, admin_client):
        preview = upload(admin_client, URL, [["colour", "size"], ["red", "L"]])
        assert preview.context.get("confirm_form") is None
        assert "The file lacks the column(s) name" in preview.content.decode()
        assert not Customer.objects.exists()

    def test_unreadable_file_error_says_what_to_do(self, admin_client):
        preview = admin_client.post(
            f"{URL}import/",
            {"resource": "0", "format": XLSX_FORMAT, "import_file": SimpleUploadedFile("x.xlsx", b"\x00garbage" * 50)},
        )
        message = " ".join(preview.context["form"].errors["import_file"])
        assert "cannot be read as XLSX" in message and "Choose the format that matches the file" in message

    @pytest.mark.parametrize("content", [b"", b"id,name,company,email,phone,status\r\n"])
    def test_empty_file_is_a_form_error(self, admin_client, content):
        preview = admin_client.post(
            f"{URL}import/",
            {"resource": "0", "format": CSV_FORMAT, "import_file": SimpleUploadedFile("e.csv", content)},
        )
        assert preview.status_code == 200
        assert preview.context["form"].errors["import_file"]
        assert preview.context.get("confirm_form") is None

    @pytest.mark.parametrize("second", ["buyer@acme.example", "Buyer@ACME.example"])
    def test_same_email_twice_in_a_file_is_an_error_on_the_later_row(self, admin_client, second):
        rows = [
            HEADER,
            ["", "First", "", "buyer@acme.example", "", "active"],
            ["", "Other", "", "other@acme.example", "", "active"],
            ["", "Second", "", second, "", "lead"],
        ]

        preview = upload(admin_client, URL, rows)

        assert preview.context.get("confirm_form") is None
        invalid = {row.number: row.field_specific_errors for row in preview.context["result"].invalid_rows}
        assert invalid == {3: {"email": ["Line 2 of this file has the same email."]}}
        assert "Line 2 of this file has the same email." in preview.content.decode()
        assert not Customer.objects.exists()

    def test_same_email_twice_is_an_error_when_the_customer_exists(self, admin_client):
        existing = CustomerFactory(name="Kept", email="buyer@acme.example")
        rows = [HEADER, ["", "One", "", "BUYER@acme.example", "", ""], ["", "Two", "", "buyer@acme.example", "", ""]]
        preview = upload(admin_client, URL, rows)
        assert [row.number for row in preview.context["result"].invalid_rows] == [2]
        existing.refresh_from_db()
        assert existing.name == "Kept"

    @pytest.mark.parametrize("cell", ["99999999999999999999999", "-3", "1.5"])
    def test_id_that_cannot_be_a_record_is_a_row_error(self, admin_client, cell):
        preview = upload(admin_client, URL, [HEADER, [cell, "Name", "", "", "", ""]])
        invalid = {row.number: row.field_specific_errors for row in preview.context["result"].invalid_rows}
        assert list(invalid) == [1] and list(invalid[1]) == ["id"]
        assert not preview.context["result"].has_errors()

    def test_same_id_twice_in_a_file_is_an_error_on_the_later_row(self, admin_client):
        existing = CustomerFactory(name="Kept")
        rows = [HEADER, [existing.pk, "One", "", "", "", ""], [existing.pk, "Two", "", "", "", ""]]
        preview = upload(admin_client, URL, rows)
        invalid = {row.number: row.field_specific_errors for row in preview.context["result"].invalid_rows}
        assert invalid == {2: {"id": ["Line 2 of this file is about the same record."]}}

    @pytest.mark.parametrize("column", ["name", "company", "email", "phone", "status"])
    def test_nul_character_in_a_cell_is_a_row_error(self, admin_client, column):
        values = {"id": "", "name": "Nul", "company": "", "email": "nul@example.com", "phone": "", "status": "active"}
        values[column] = values[column] + "\x00x" if values[column] else "a\x00b"
        preview = upload(admin_client, URL, [HEADER, [values[name] for name in HEADER]])
        invalid = {row.number: row.field_specific_errors for row in preview.context["result"].invalid_rows}
        assert invalid == {1: {column: ["Null characters are not allowed."]}}
        assert not Customer.objects.exists()

    def test_duplicated_column_is_refused_before_any_row(self, admin_client):
        preview = upload(admin_client, URL, [["name", "email", "Name "], ["A", "a@example.com", "B"]])
        assert preview.context.get("confirm_form") is None
        result = preview.context["result"]
        assert [str(error.error) for error in result.base_errors] == [
            "The column(s) name appear more than once in the first row: each column may appear once."
        ]
        assert (result.rows, result.invalid_rows, result.row_errors()) == ([], [], [])
        assert "Traceback" not in preview.content.decode()
        assert not Customer.objects.exists()

    def test_column_names_ignore_case_and_spaces(self, admin_client):
        import_rows(admin_client, URL, [[" Name", "EMAIL "], ["Cased", "cased@example.com"]])
        assert Customer.objects.get().email == "cased@example.com"

    def test_very_long_text_is_a_row_error(self, admin_client):
        preview = upload(admin_client, URL, [HEADER, ["", "n" * 30_000, "", "", "", ""]])
        assert preview.status_code == 200
        invalid = {row.number: row.field_specific_errors for row in preview.context["result"].invalid_rows}
        assert invalid == {1: {"name": ["Ensure this field has no more than 200 characters."]}}

    def test_unknown_status_says_which_value(self, admin_client):
        preview = upload(admin_client, URL, [HEADER, ["", "X", "", "", "", "sleeping"]])
        invalid = {row.number: row.field_specific_errors for row in preview.context["result"].invalid_rows}
        assert invalid == {1: {"status": ['"sleeping" is not a valid choice.']}}

    def test_gb18030_csv_is_read(self, admin_client):
        content = "姓名占位,name,company,email\r\n,张伟,北京科技有限公司,zhang@example.com\r\n".encode("gb18030")
        with pytest.raises(UnicodeDecodeError):
            content.decode("utf-8")
        preview = admin_client.post(
            f"{URL}import/",
            {"resource": "0", "format": CSV_FORMAT, "import_file": SimpleUploadedFile("c.csv", content)},
        )
        confirm(admin_client, URL, preview)
        assert Customer.objects.values_list("name", "company_name").get() == ("张伟", "北京科技有限公司")

    def test_gb18030_csv_whose_chinese_is_single_characters_in_their_own_cells_is_read(self, admin_client):
        # A gender column beside English names: each 男 or 女 stands alone between commas.
        content = "name,性别,email\r\nAda Lovelace,女,ada@example.com\r\nBob Smith,男,bob@example.com\r\n"
        content += "Carl Jung,男,carl@example.com\r\n"
        preview = admin_client.post(
            f"{URL}import/",
            {
                "resource": "0",
                "format": CSV_FORMAT,
                "import_file": SimpleUploadedFile("c.csv", content.encode("gb18030")),
            },
        )
        confirm(admin_client, URL, preview)
        assert sorted(Customer.objects.values_list("name", flat=True)) == ["Ada Lovelace", "Bob Smith", "Carl Jung"]

    @pytest.mark.parametrize(("file_format", "name"), [(CSV_FORMAT, "xlsx"), (XLSX_FORMAT, "csv")])
    def test_file_whose_content_is_not_what_its_name_says_is_a_form_error(self, admin_client, file_format, name):
        rows = [HEADER, ["", "Wrong format", "", "", "", ""]]
        content = csv_bytes(rows) if name == "xlsx" else xlsx_bytes(rows)
        preview = admin_client.post(
            f"{URL}import/",
            {"resource": "0", "format": file_format, "import_file": SimpleUploadedFile(f"f.{name}", content)},
        )
        assert preview.status_code == 200
        assert preview.context["form"].errors["import_file"]
        assert not Customer.objects.exists()

    NOT_TEXT = "The file is not text in UTF-8 or GB18030. Save it from the spreadsheet as “CSV UTF-8”."

    @pytest.mark.parametrize(
        ("content", "message"),
        [
            (b"name\r\n\xff\xfe\xfa\r\n", NOT_TEXT),
            # Western Windows "CSV" whose every accent is followed by a letter: GB18030 reads it whole, as
            # "J黵gen M黮ler".
            (
                "name,email\r\nJürgen Müller,jm@example.de\r\nSøren Kierkegård,sk@example.dk\r\n".encode("cp1252"),
                NOT_TEXT,
            ),
            # Accents starting words, each followed by a letter: "羘gel" and "觭car".
            ("name\r\nÁngel\r\nÓscar\r\n".encode("cp1252"), NOT_TEXT),
            # UTF-16 without a byte order mark: UTF-8 reads it whole, a NUL after every letter.
            ("name,email\r\nAda,ada@example.com\r\n".encode("utf-16-le"), NOT_TEXT),
            # "Acme, Inc" without quotes: its row has a cell more than the header names.
            (
                b"name,email,company\r\nAda,ada@example.com,Globex\r\nBob,bob@example.com,Acme, Inc\r\n",
                "Line 3 has 4 cells, but the first row names 3 columns: a value holding a comma must be in double "
                "quotes. Check that line.",
            ),
            (
                b"name;email\r\nAda;ada@example.com\r\n",
                "The first row is one cell, “name;email”: its columns are separated by “;”, not by commas. Save "
                "the file as “CSV UTF-8 (comma delimited)” or as XLSX.",
            ),
        ],
        ids=["no-known-encoding", "cp1252", "cp1252-initials", "utf-16-le", "row-wider-than-header", "semicolons"],
    )
    def test_csv_refused_whole_is_a_clear_form_error(self, admin_client, content, message):
        preview = admin_client.post(
            f"{URL}import/",
            {"resource": "0", "format": CSV_FORMAT, "import_file": SimpleUploadedFile("c.csv", content)},
        )
        assert preview.context["form"].errors["import_file"] == [message]
        assert not Customer.objects.exists()

    def test_confirm_writes_nothing_when_a_row_became_invalid_after_the_preview(self, admin_client):
        gone = CustomerFactory(name="Soon deleted")
        rows = [HEADER, ["", "Fine", "", "fine@example.com", "", ""], [gone.pk, "Renamed", "", "", "", ""]]
        preview = upload(admin_client, URL, rows)
        # Meanwhile someone deletes the customer of the second row.
        gone.delete()

        response = confirm(admin_client, URL, preview)

        assert response.status_code == 200
        assert [row.number for row in response.context["result"].invalid_rows] == [2]
        assert "Nothing was imported" in response.content.decode()
        assert not Customer.objects.exists()


class TestExportIsSafeForSpreadsheets:
    """Text that a spreadsheet would run as a formula is exported with a leading apostrophe, as by the API."""

    def make(self):
        return CustomerFactory(name='=HYPERLINK("http://x")', company="@SUM(A1)", phone="+86 138 0013 8000")

    def test_csv(self, admin_client):
        self.make()
        # A lone "-" is not a formula.
        CustomerFactory(name="\tTabbed", company="-2+3", phone="-")
        form = admin_client.get(f"{URL}export/").context["form"]
        rows = read_csv(admin_client.post(f"{URL}export/", export_data(form, CSV_FORMAT)))
        cells = sorted((row["name"], row["company"], row["phone"]) for row in rows)
        assert cells == [("'\tTabbed", "'-2+3", "-"), ('\'=HYPERLINK("http://x")', "'@SUM(A1)", "+86 138 0013 8000")]

    def test_xlsx(self, admin_client):
        import io

        from openpyxl import load_workbook

        self.make()
        form = admin_client.get(f"{URL}export/").context["form"]
        response = admin_client.post(f"{URL}export/", export_data(form, XLSX_FORMAT))
        sheet = load_workbook(io.BytesIO(response.content)).active
        header = [cell.value for cell in sheet[1]]
        row = dict(zip(header, [cell.value for cell in sheet[2]], strict=True))
        assert (row["name"], row["company"], row["phone"]) == (
            '\'=HYPERLINK("http://x")',
            "'@SUM(A1)",
            "+86 138 0013 8000",
        )
        assert sheet.cell(2, header.index("name") + 1).data_type == "s"


class TestChangePage:
    def test_inlines_newest_interaction_first_and_history_link(self, admin_client):
        customer = CustomerFactory()
        InteractionFactory(customer=customer, notes="NOTE-OLDER", occurred_at=timezone.now() - timedelta(days=5))
        InteractionFactory(customer=customer, notes="NOTE-NEWER", occurred_at=timezone.now() - timedelta(days=1))
        OpportunityFactory(customer=customer, title="Big deal")

        response = admin_client.get(f"{URL}{customer.pk}/change/")

        html = response.content.decode()
        assert html.index("NOTE-NEWER") < html.index("NOTE-OLDER")
        assert "Big deal" in html
        history_url = reverse("admin:customers_customer_history", args=[customer.pk])
        assert f'href="{history_url}"' in html
        readonly = response.context["adminform"].readonly_fields
        assert {"created_at", "updated_at"} <= set(readonly)

    def test_add_customer_with_inline_interaction_and_opportunity(self, admin_client, admin_user):
        company = CompanyFactory(name="Inline Ltd")
        data = {
            "name": "Inline Ltd buyer",
            "company": str(company.pk),
            "status": Customer.Status.PROSPECT,
            "email": "inline@example.com",
            "phone": "",
            "interactions-TOTAL_FORMS": "1",
            "interactions-INITIAL_FORMS": "0",
            "interactions-0-occurred_at_0": "2025-03-01",
            "interactions-0-occurred_at_1": "10:00:00",
            "interactions-0-interaction_type": Interaction.Type.MEETING,
            "interactions-0-notes": "Kick-off",
            "opportunities-TOTAL_FORMS": "1",
            "opportunities-INITIAL_FORMS": "0",
            "tasks-TOTAL_FORMS": "0",
            "tasks-INITIAL_FORMS": "0",
            "opportunities-0-title": "First order",
            "opportunities-0-value": "1200.00",
            "opportunities-0-stage": Opportunity.Stage.PROPOSAL,
            "opportunities-0-probability": "",
            "opportunities-0-expected_close_date": "",
        }

        response = admin_client.post(f"{URL}add/", data)

        assert response.status_code == 302, response.context["errors"] if response.context else response
        customer = Customer.objects.get(name="Inline Ltd buyer")
        assert (customer.company, customer.company_name, customer.phone) == (company, "Inline Ltd", None)
        interaction = customer.interactions.get()
        assert interaction.notes == "Kick-off"
        opportunity = customer.opportunities.get()
        # The opportunity is with the customer's company.
        assert (opportunity.title, opportunity.probability, opportunity.company) == ("First order", 40, company)
        for obj in (customer, interaction, opportunity):
            assert obj.history.get().history_user == admin_user

    def test_history_page_shows_field_differences(self, admin_client):
        customer = CustomerFactory(name="Before rename")
        customer.name = "After rename"
        customer.save()
        html = admin_client.get(reverse("admin:customers_customer_history", args=[customer.pk])).content.decode()
        assert "Before rename" in html and "After rename" in html
        assert "&rarr;" in html or "→" in html

    def test_a_manager_sets_the_external_id_on_the_change_page(self, admin_client):
        customer = CustomerFactory()
        page = admin_client.get(f"{URL}{customer.pk}/change/")
        data = {**page.context["adminform"].form.initial, "external_id": "crm-77"}
        data = {key: ("" if value is None else value) for key, value in data.items()}
        data.update({key: value for key, value in _inline_management(page).items()})

        response = admin_client.post(f"{URL}{customer.pk}/change/", data)

        assert response.status_code == 302, response.content.decode()[:3000]
        assert Customer.objects.get(pk=customer.pk).external_id == "crm-77"


def _inline_management(page):
    """The management form fields of every inline formset on a change page, as a browser sends them."""
    fields = {}
    for formset in page.context["inline_admin_formsets"]:
        management = formset.formset.management_form
        for name in ("TOTAL_FORMS", "INITIAL_FORMS", "MIN_NUM_FORMS", "MAX_NUM_FORMS"):
            fields[f"{management.prefix}-{name}"] = management[name].value()
    return fields


class TestDelete:
    def test_confirmation_lists_what_the_cascade_removes(self, admin_client):
        customer = CustomerFactory(name="Going away")
        InteractionFactory(customer=customer, notes="a call")
        OpportunityFactory(customer=customer, title="Doomed deal")

        response = admin_client.get(f"{URL}{customer.pk}/delete/")

        assert response.status_code == 200
        html = response.content.decode()
        assert "Doomed deal" in html
        assert "Interaction" in html
        assert response.context["model_count"]
        counts = {str(name): count for name, count in response.context["model_count"]}
        assert counts["interactions"] == 1 and counts["opportunities"] == 1
        assert Customer.objects.filter(pk=customer.pk).exists()

    def test_delete_records_the_deletion_of_children(self, admin_client, admin_user):
        customer = with_activity()
        child_ids = list(customer.interactions.values_list("pk", flat=True))

        response = admin_client.post(f"{URL}{customer.pk}/delete/", {"post": "yes"})

        assert response.status_code == 302
        assert not Customer.objects.exists() and not Interaction.objects.exists()
        deleted = Interaction.history.filter(history_type="-")
        assert sorted(deleted.values_list("id", flat=True)) == sorted(child_ids)
        assert {record.history_user for record in deleted} == {admin_user}
        assert Opportunity.history.filter(history_type="-").count() == 3
        assert Customer.history.filter(history_type="-", history_user=admin_user).count() == 1

    def test_bulk_delete_action(self, admin_client):
        customers = [with_activity(), with_activity()]
        response = preview_then_confirm(
            admin_client,
            URL,
            {"action": "delete_selected", "_selected_action": [c.pk for c in customers], "post": "yes"},
        )
        assert response.status_code == 302
        assert not Customer.objects.exists()
        assert Interaction.history.filter(history_type="-").count() == 6


def test_inline_opportunity_edit_from_the_customer_page(admin_client, admin_user):
    customer = CustomerFactory(name="Inline edit")
    opportunity = OpportunityFactory(customer=customer, stage=Opportunity.Stage.LEAD, probability=10)
    data = {
        "name": customer.name,
        "company": "",
        "status": customer.status,
        "email": customer.email,
        "phone": customer.phone,
        "interactions-TOTAL_FORMS": "0",
        "interactions-INITIAL_FORMS": "0",
        "opportunities-TOTAL_FORMS": "1",
        "opportunities-INITIAL_FORMS": "1",
        "tasks-TOTAL_FORMS": "0",
        "tasks-INITIAL_FORMS": "0",
        "opportunities-0-id": str(opportunity.pk),
        "opportunities-0-customer": str(customer.pk),
        "opportunities-0-title": "Renamed inline",
        "opportunities-0-value": "1000.00",
        "opportunities-0-stage": Opportunity.Stage.NEGOTIATION,
        "opportunities-0-probability": "10",
        "opportunities-0-expected_close_date": "",
    }

    response = admin_client.post(f"{URL}{customer.pk}/change/", data)

    assert response.status_code == 302
    opportunity.refresh_from_db()
    assert (opportunity.title, opportunity.stage, opportunity.probability) == ("Renamed inline", "negotiation", 70)
    assert opportunity.history.first().history_user == admin_user


class TestTwoPeopleOnOneRecord:
    """Two staff open the same customer; the one who saves second does not undo the first one's change."""

    def pages(self, customer):
        first, second = ManagerFactory(username="first"), ManagerFactory(username="second")
        first.is_staff = second.is_staff = True
        first.save(), second.save()
        clients = [Client(), Client()]
        for client, user in zip(clients, (first, second), strict=True):
            client.force_login(user)
        url = f"{URL}{customer.pk}/change/"
        return url, [(client, change_form_data(client.get(url))) for client in clients]

    def test_the_second_save_is_refused_and_the_first_change_kept(self):
        customer = CustomerFactory(name="Old name", email="old@example.com")
        url, [(first, first_form), (second, second_form)] = self.pages(customer)

        assert first.post(url, {**first_form, "name": "New name"}).status_code == 302
        response = second.post(url, {**second_form, "email": "new@example.com"})

        assert response.status_code == 200
        assert "Changed by someone else since this page was shown" in str(response.context["adminform"].form.errors)
        customer.refresh_from_db()
        assert (customer.name, customer.email) == ("New name", "old@example.com")
        assert customer.history.filter(history_type="~").count() == 1

    def test_a_page_opened_after_the_change_saves(self):
        customer = CustomerFactory(name="Old name", email="old@example.com")
        url, [(first, first_form), (second, _)] = self.pages(customer)
        assert first.post(url, {**first_form, "name": "New name"}).status_code == 302

        again = change_form_data(second.get(url))
        assert second.post(url, {**again, "email": "new@example.com"}).status_code == 302

        customer.refresh_from_db()
        assert (customer.name, customer.email) == ("New name", "new@example.com")
