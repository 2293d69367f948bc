"""``GET /api/<resource>/export?format=csv|xlsx``: same filters as the list, streamed CSV, XLSX."""

import csv
import datetime
import io
from decimal import Decimal

import pytest
from django.http import StreamingHttpResponse
from django.utils import timezone
from openpyxl import load_workbook

from core.api.exports import ExportMixin
from customers.models import Customer
from interactions.models import Interaction
from opportunities.models import Opportunity
from tests.factories import CustomerFactory, InteractionFactory, OpportunityFactory

CUSTOMER_HEADER = [
    "id",
    "name",
    "company",
    "email",
    "phone",
    "status",
    "created_at",
    "updated_at",
    "owner_id",
    "external_id",
    "created_by_id",
    "company_id",
    "phone_e164",
    "tags",
]


def read_csv(response):
    assert isinstance(response, StreamingHttpResponse)
    raw = b"".join(response.streaming_content)
    assert raw.startswith("\ufeff".encode())
    return list(csv.reader(io.StringIO(raw.decode("utf-8-sig"))))


def read_xlsx(response):
    workbook = load_workbook(io.BytesIO(b"".join(response.streaming_content)), read_only=True)
    return [list(row) for sheet in workbook.worksheets for row in sheet.iter_rows(values_only=True)]


def customer_row(customer):
    return [
        str(customer.pk),
        customer.name,
        customer.company_name or "",
        customer.email or "",
        customer.phone or "",
        customer.status,
        customer.created_at.isoformat(),
        customer.updated_at.isoformat(),
        "",
        customer.external_id or "",
        "",
        str(customer.company_id or ""),
        customer.phone_e164 or "",
        ", ".join(customer.tags),
    ]


@pytest.mark.django_db
class TestCsvExport:
    def test_customers_as_csv_with_bom_and_chinese(self, api):
        CustomerFactory(name="张三", company="ABC科技", email=None)
        CustomerFactory(name="Alice", company=None)
        response = api.get("/api/customers/export", {"format": "csv"})
        assert response.status_code == 200
        assert response["Content-Type"] == "text/csv; charset=utf-8"
        assert response["Content-Disposition"].startswith('attachment; filename="customers-')
        assert response["Content-Disposition"].endswith('.csv"')
        rows = read_csv(response)
        assert rows[0] == CUSTOMER_HEADER
        assert rows[1:] == [customer_row(c) for c in Customer.objects.all()]
        assert rows[2][1:3] == ["张三", "ABC科技"]

    def test_csv_is_the_default_format(self, api):
        CustomerFactory()
        response = api.get("/api/customers/export/")
        assert response.status_code == 200
        assert len(read_csv(response)) == 2

    def test_same_filters_search_and_ordering_as_the_list(self, api):
        CustomerFactory(name="张三", status=Customer.Status.LEAD)
        CustomerFactory(name="张伟", status=Customer.Status.ACTIVE)
        CustomerFactory(name="Bob 张", status=Customer.Status.LEAD)
        CustomerFactory(name="Carol", status=Customer.Status.LEAD)
        params = {"search": "张", "status": "lead", "ordering": "name"}
        listed = [row["id"] for row in api.get("/api/customers", params).json()["data"]]
        exported = [int(row[0]) for row in read_csv(api.get("/api/customers/export", params))[1:]]
        assert exported == listed
        assert len(exported) == 2

    def test_interactions_and_opportunities(self, api):
        customer = CustomerFactory()
        other = CustomerFactory()
        note = InteractionFactory(customer=customer, notes='第一次拜访, "quoted"\nsecond line')
        InteractionFactory(customer=other)
        rows = read_csv(api.get("/api/interactions/export", {"customer_id": customer.pk}))
        assert rows == [
            [
                "id",
                "customer_id",
                "interaction_type",
                "notes",
                "occurred_at",
                "created_at",
                "external_id",
                "created_by_id",
            ],
            [
                str(note.pk),
                str(customer.pk),
                "call",
                note.notes,
                note.occurred_at.isoformat(),
                note.created_at.isoformat(),
                "",
                "",
            ],
        ]
        deal = OpportunityFactory(
            customer=customer,
            value=Decimal("1234.50"),
            stage=Opportunity.Stage.CLOSED,
            expected_close_date=datetime.date(2026, 12, 1),
        )
        OpportunityFactory(customer=customer, stage=Opportunity.Stage.LEAD)
        rows = read_csv(api.get("/api/opportunities/export", {"stage": "closed"}))
        assert rows[1] == [
            str(deal.pk),
            str(customer.pk),
            deal.title,
            "1234.50",
            "closed",
            "100",
            "2026-12-01",
            deal.closed_at.isoformat(),
            "",
            deal.created_at.isoformat(),
            deal.updated_at.isoformat(),
            "",
            "",
            "",
            "",
        ]
        assert len(rows) == 2

    def test_formula_like_text_is_neutralised_but_phones_are_kept(self, api):
        CustomerFactory(name='=HYPERLINK("http://x")', company="-2+3", phone="+86 138 0013 8000", email="a@b.co")
        row = read_csv(api.get("/api/customers/export"))[1]
        assert row[1] == '\'=HYPERLINK("http://x")'
        assert row[2] == "'-2+3"
        assert row[4] == "+86 138 0013 8000"

    def test_rows_are_streamed_in_chunks_from_an_iterator(self, api, monkeypatch, django_assert_num_queries):
        monkeypatch.setattr(ExportMixin, "export_chunk_size", 3)
        CustomerFactory.create_batch(10)
        # Only the token and the custom field definitions (the columns): no row is read before streaming starts.
        with django_assert_num_queries(2):
            response = api.get("/api/customers/export")
        chunks = list(response.streaming_content)
        # Header chunk with the first rows, then three rows per chunk.
        assert len(chunks) == 4
        assert sum(chunk.count(b"\r\n") for chunk in chunks) == 11

    @pytest.mark.parametrize("size", [2, 20])
    def test_query_count_is_fixed(self, api, django_assert_num_queries, size):
        CustomerFactory.create_batch(size)
        with django_assert_num_queries(3):  # token, custom field definitions, rows
            response = api.get("/api/customers/export")
            assert len(read_csv(response)) == size + 1


@pytest.mark.django_db
class TestXlsxExport:
    def test_customers_as_xlsx(self, api):
        customer = CustomerFactory(name="王芳", company="=1+1", email="wangfang@example.cn")
        response = api.get("/api/customers/export", {"format": "xlsx"})
        assert response.status_code == 200
        assert response["Content-Type"] == "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet"
        assert response["Content-Disposition"].startswith('attachment; filename="customers-')
        rows = read_xlsx(response)
        assert rows[0] == CUSTOMER_HEADER
        assert rows[1][:6] == [customer.pk, "王芳", "'=1+1", "wangfang@example.cn", "13800138000", "active"]
        # Excel keeps times to the millisecond, in UTC.
        created = customer.created_at.astimezone(datetime.UTC).replace(tzinfo=None)
        assert abs(rows[1][6] - created) < datetime.timedelta(milliseconds=1)

    def test_opportunity_values_and_dates_are_typed(self, api):
        deal = OpportunityFactory(value=Decimal("99.99"), expected_close_date=datetime.date(2027, 1, 15))
        rows = read_xlsx(api.get("/api/opportunities/export", {"format": "xlsx"}))
        assert rows[1][3] == pytest.approx(99.99)
        assert rows[1][6] == datetime.datetime(2027, 1, 15)
        assert rows[1][0] == deal.pk

    def test_control_characters_are_dropped(self, api):
        InteractionFactory(notes="bell\x07 and tab\tkept")
        rows = read_xlsx(api.get("/api/interactions/export", {"format": "xlsx"}))
        assert rows[1][3] == "bell and tab\tkept"

    def test_empty_export_has_the_header(self, api):
        rows = read_xlsx(api.get("/api/interactions/export", {"format": "xlsx"}))
        assert rows == [
            [
                "id",
                "customer_id",
                "interaction_type",
                "notes",
                "occurred_at",
                "created_at",
                "external_id",
                "created_by_id",
            ]
        ]


@pytest.mark.django_db
class TestExportErrors:
    @pytest.mark.parametrize("resource", ["customers", "interactions", "opportunities"])
    def test_unknown_format_is_400_in_the_envelope(self, api, resource):
        response = api.get(f"/api/{resource}/export", {"format": "pdf"})
        assert response.status_code == 400
        assert response["Content-Type"] == "application/json"
        assert response.json()["error"]["fields"] == {"format": ['"pdf" is not a valid choice.']}

    @pytest.mark.parametrize(
        ("resource", "params"),
        [
            ("customers", {"status": "vip"}),
            ("interactions", {"customer_id": "abc"}),
            ("opportunities", {"min_value": "-5", "format": "xlsx"}),
        ],
    )
    def test_bad_filter_is_400_in_the_envelope(self, api, resource, params):
        response = api.get(f"/api/{resource}/export", params)
        assert response.status_code == 400
        assert response.json()["success"] is False

    def test_requires_authentication(self, anon_client):
        response = anon_client.get("/api/customers/export", {"format": "csv"})
        assert response.status_code == 401
        assert response.json()["success"] is False

    def test_post_is_405(self, api):
        response = api.post("/api/customers/export?format=csv")
        assert response.status_code == 405
        assert response.json()["success"] is False

    def test_format_still_selects_renderers_elsewhere(self, api):
        CustomerFactory()
        assert api.get("/api/customers", {"format": "json"}).json()["success"] is True


def test_export_times_are_utc_iso(db, api):
    interaction = InteractionFactory(occurred_at=timezone.make_aware(datetime.datetime(2026, 1, 2, 3, 4, 5)))
    assert read_csv(api.get("/api/interactions/export"))[1][4] == "2026-01-02T03:04:05+00:00"
    assert Interaction.objects.get().pk == interaction.pk
