"""The admin's imports are bounded and their confirmation reads only the user's own signed upload."""

import io
import os
import tempfile
import time
import zipfile

import pytest
from django.contrib.auth.models import Group
from django.core.files.uploadedfile import SimpleUploadedFile
from django.core.management import call_command
from django.test import Client

from customers.models import Customer
from interactions.models import Interaction
from tests.core.admin.helpers import CSV_FORMAT, XLSX_FORMAT, confirm, csv_bytes, upload, xlsx_bytes
from tests.factories import UserFactory

pytestmark = pytest.mark.django_db

URL = "/admin/customers/customer/"
ROWS = [["name", "email"], ["Ada", "ada@example.com"]]


def post_file(client, content, file_format=CSV_FORMAT, name="import.csv", url=URL):
    return client.post(
        f"{url}import/", {"resource": "0", "format": file_format, "import_file": SimpleUploadedFile(name, content)}
    )


def file_error(preview):
    return " ".join(preview.context["form"].errors["import_file"])


def stored_uploads(settings):
    folder = settings.IMPORT_UPLOAD_DIR
    return sorted(path.name for path in folder.iterdir()) if folder.exists() else []


def confirm_with(client, preview, url=URL, **changes):
    data = {**preview.context["confirm_form"].initial, **changes}
    return client.post(f"{url}process_import/", data, follow=True)


def rep(username):
    user = UserFactory(username=username, is_staff=True)
    user.groups.add(Group.objects.get(name="Sales rep"))
    client = Client()
    client.force_login(user)
    return client


def page_messages(response):
    return [str(message) for message in response.context["messages"]]


class TestConfirmationReadsOnlyTheSignedUpload:
    def test_upload_is_kept_under_a_server_name_and_removed_once_imported(self, admin_client, settings):
        preview = upload(admin_client, URL, ROWS)
        reference = preview.context["confirm_form"].initial["import_file_name"]
        (stored,) = stored_uploads(settings)
        assert stored.endswith(".upload") and "import.csv" not in stored and stored[:32] not in reference
        confirm(admin_client, URL, preview)
        assert Customer.objects.get().name == "Ada"
        assert stored_uploads(settings) == []

    def test_a_file_of_the_temp_folder_named_in_the_form_is_not_imported_nor_deleted(self, admin_client):
        preview = upload(admin_client, URL, ROWS)
        planted = tempfile.NamedTemporaryFile(dir=tempfile.gettempdir(), suffix=".csv", delete=False)
        planted.write(csv_bytes([["name"], ["Planted"]]))
        planted.close()
        try:
            response = confirm_with(admin_client, preview, import_file_name=os.path.basename(planted.name))
            assert os.path.exists(planted.name)
        finally:
            os.unlink(planted.name)
        assert not Customer.objects.exists()
        assert response.status_code == 200
        assert any("reference is not valid" in message for message in page_messages(response))

    @pytest.mark.parametrize(
        "tamper", [lambda ref: ref[:-1] + ("A" if ref[-1] != "A" else "B"), lambda ref: "", "x" * 500]
    )
    def test_altered_or_missing_reference_is_a_message_not_an_import(self, admin_client, tamper):
        preview = upload(admin_client, URL, ROWS)
        reference = preview.context["confirm_form"].initial["import_file_name"]
        changed = tamper(reference) if callable(tamper) else tamper
        response = confirm_with(admin_client, preview, import_file_name=changed)
        assert response.status_code == 200
        assert page_messages(response) and "Upload the file again" in page_messages(response)[0]
        assert not Customer.objects.exists()

    def test_another_users_upload_cannot_be_confirmed(self, db):
        alice, bob = rep("alice"), rep("bob")
        preview = upload(alice, URL, ROWS)
        response = confirm_with(bob, preview)
        assert "reference is not valid" in page_messages(response)[0]
        assert not Customer.objects.exists()
        confirm_with(alice, preview)
        assert Customer.objects.get().owner.username == "alice"

    def test_an_upload_for_customers_cannot_be_confirmed_as_interactions(self, admin_client):
        preview = upload(admin_client, URL, ROWS)
        response = confirm_with(admin_client, preview, url="/admin/interactions/interaction/")
        assert "reference is not valid" in page_messages(response)[0]
        assert not Customer.objects.exists() and not Interaction.objects.exists()

    def test_an_upload_is_imported_once(self, admin_client):
        preview = upload(admin_client, URL, ROWS)
        confirm_with(admin_client, preview)
        again = confirm_with(admin_client, preview)
        assert "no longer there" in page_messages(again)[0]
        assert Customer.objects.count() == 1

    def test_an_upload_removed_meanwhile_is_a_message(self, admin_client, settings):
        preview = upload(admin_client, URL, ROWS)
        for path in settings.IMPORT_UPLOAD_DIR.iterdir():
            path.unlink()
        response = confirm_with(admin_client, preview)
        assert "no longer there" in page_messages(response)[0]
        assert not Customer.objects.exists()

    def test_an_expired_upload_is_a_message(self, admin_client, settings):
        preview = upload(admin_client, URL, ROWS)
        settings.IMPORT_UPLOAD_MAX_AGE_HOURS = 0
        time.sleep(1.1)
        response = confirm_with(admin_client, preview)
        assert "Upload the file again" in page_messages(response)[0]
        assert not Customer.objects.exists()

    def test_a_changed_file_is_not_imported(self, admin_client, settings):
        preview = upload(admin_client, URL, ROWS)
        (path,) = settings.IMPORT_UPLOAD_DIR.iterdir()
        path.write_bytes(csv_bytes([["name"], ["Swapped"]]))
        response = confirm_with(admin_client, preview)
        assert "reference is not valid" in page_messages(response)[0]
        assert not Customer.objects.exists()


class TestAbandonedUploads:
    def test_purge_removes_uploads_older_than_the_setting_and_nothing_else(self, admin_client, settings):
        upload(admin_client, URL, ROWS)
        upload(admin_client, URL, [["name"], ["Fresh"]])
        old, fresh = sorted(settings.IMPORT_UPLOAD_DIR.iterdir())
        foreign = settings.IMPORT_UPLOAD_DIR / "notes.txt"
        foreign.write_text("not an upload")
        hours_ago = time.time() - (settings.IMPORT_UPLOAD_MAX_AGE_HOURS * 3600 + 60)
        os.utime(old, (hours_ago, hours_ago))
        os.utime(foreign, (hours_ago, hours_ago))

        from core.uploads import purge_abandoned_uploads

        assert purge_abandoned_uploads() == 1
        assert not old.exists() and fresh.exists() and foreign.exists()

    def test_purge_uploads_command_reports_what_it_removed(self, admin_client, settings):
        upload(admin_client, URL, ROWS)
        (path,) = settings.IMPORT_UPLOAD_DIR.iterdir()
        hours_ago = time.time() - (settings.IMPORT_UPLOAD_MAX_AGE_HOURS * 3600 + 60)
        os.utime(path, (hours_ago, hours_ago))
        out = io.StringIO()
        call_command("purge_uploads", stdout=out)
        assert "Removed 1 abandoned upload" in out.getvalue()
        assert not path.exists()


def xlsx_with(part, content, rows=ROWS):
    """A workbook from ``rows`` whose sheet XML has ``content`` inserted before its data."""
    source = zipfile.ZipFile(io.BytesIO(xlsx_bytes(rows)))
    out = io.BytesIO()
    with zipfile.ZipFile(out, "w", zipfile.ZIP_DEFLATED) as target:
        for info in source.infolist():
            data = source.read(info)
            if info.filename == part:
                data = data.replace(b"<sheetData>", content + b"<sheetData>", 1)
            target.writestr(info.filename, data)
    return out.getvalue()


class TestImportsAreBounded:
    def test_more_rows_than_the_limit_are_refused_before_any_row_is_checked(self, admin_client, settings):
        settings.IMPORT_MAX_ROWS = 5
        rows = [["name"], *([f"Row {n}"] for n in range(6))]
        preview = post_file(admin_client, csv_bytes(rows))
        assert "more than 5 rows" in file_error(preview) and "DJANGO_IMPORT_MAX_ROWS" in file_error(preview)
        assert "result" not in preview.context
        assert stored_uploads(settings) == []
        assert upload(admin_client, URL, rows[:6]).context["totals"]["new"] == 5

    @pytest.mark.parametrize("file_format", [CSV_FORMAT, XLSX_FORMAT])
    def test_a_cell_longer_than_the_limit_refuses_the_file(self, admin_client, settings, file_format):
        settings.IMPORT_MAX_CELL_CHARS = 50
        rows = [["name", "company"], ["Ada", "c" * 51]]
        content = csv_bytes(rows) if file_format == CSV_FORMAT else xlsx_bytes(rows)
        preview = post_file(
            admin_client, content, file_format, "big." + ("csv" if file_format == CSV_FORMAT else "xlsx")
        )
        assert "Line 2, column 2 holds more than 50 characters" in file_error(preview)

    def test_a_file_larger_than_the_limit_is_refused(self, admin_client, settings):
        settings.IMPORT_MAX_BYTES = 100
        preview = post_file(admin_client, csv_bytes([["name"], *([f"Row {n}"] for n in range(30))]))
        assert "the limit is 100 bytes" in file_error(preview)

    def test_a_workbook_whose_sheet_unzips_beyond_the_limit_is_refused_unread(self, admin_client, settings):
        # The giant XML comment that once held a worker for minutes, at a scale a test can build.
        settings.IMPORT_MAX_UNZIPPED_BYTES = 1024 * 1024
        content = xlsx_with("xl/worksheets/sheet1.xml", b"<!--" + b"x" * (2 * 1024 * 1024) + b"-->")
        preview = post_file(admin_client, content, XLSX_FORMAT, "comment.xlsx")
        assert "DJANGO_IMPORT_MAX_UNZIPPED_BYTES" in file_error(preview)
        assert not Customer.objects.exists()

    def test_a_highly_compressed_part_is_refused(self, admin_client):
        content = xlsx_with("xl/worksheets/sheet1.xml", b"<!--" + b"x" * (4 * 1024 * 1024) + b"-->")
        preview = post_file(admin_client, content, XLSX_FORMAT, "bomb.xlsx")
        assert "compressed" in file_error(preview) and "not a spreadsheet" in file_error(preview)

    def test_a_zip_that_lies_about_its_sizes_is_refused(self, admin_client):
        content = bytearray(xlsx_with("xl/worksheets/sheet1.xml", b"<!--" + b"x" * 200_000 + b"-->"))
        # Shrink the sheet's declared size in the central directory: unzipping must stop, not trust it.
        start = content.rfind(b"PK\x01\x02", 0, content.find(b"xl/worksheets/sheet1.xml", content.find(b"PK\x01\x02")))
        assert start != -1
        content[start + 24 : start + 28] = (1000).to_bytes(4, "little")
        preview = post_file(admin_client, bytes(content), XLSX_FORMAT, "liar.xlsx")
        assert "cannot be read as XLSX" in file_error(preview)

    def test_a_workbook_declaring_entities_is_refused(self, admin_client):
        source = zipfile.ZipFile(io.BytesIO(xlsx_bytes(ROWS)))
        out = io.BytesIO()
        with zipfile.ZipFile(out, "w") as target:
            for info in source.infolist():
                data = source.read(info)
                if info.filename == "xl/worksheets/sheet1.xml":
                    data = b'<!DOCTYPE w [<!ENTITY a "aaaaaaaaaa">]>' + data
                target.writestr(info.filename, data)
        preview = post_file(admin_client, out.getvalue(), XLSX_FORMAT, "dtd.xlsx")
        assert "document type" in file_error(preview)

    def test_xlsx_values_are_read_as_before(self, admin_client):
        rows = [["name", "email", "phone"], ["张三", "zs@example.com", 13800138000]]
        preview = post_file(admin_client, xlsx_bytes(rows), XLSX_FORMAT, "ok.xlsx")
        confirm(admin_client, URL, preview)
        customer = Customer.objects.get()
        assert (customer.name, customer.email, customer.phone) == ("张三", "zs@example.com", "13800138000")


class TestPreviewIsBounded:
    def test_preview_shows_the_counts_and_the_first_hundred_rows(self, admin_client):
        rows = [["name"], *([f"Row {n}"] for n in range(150))]
        preview = upload(admin_client, URL, rows)
        page = preview.content.decode()
        assert preview.context["totals"] == {"new": 150, "update": 0, "skip": 0, "error": 0}
        assert "New: 150" in page
        assert page.count('<tr class="new">') == 100
        assert "Row 99" in page and "Row 100<" not in page
        assert "50 more rows are not" in page

    def test_errors_are_shown_a_page_at_a_time(self, admin_client):
        rows = [["name", "email"], *(["", f"bad{n}"] for n in range(120))]
        preview = upload(admin_client, URL, rows)
        errors = preview.context["error_page"]
        assert preview.context["totals"]["error"] == 120
        assert len(errors) == 50 and errors.paginator.num_pages == 3
        assert "confirm_form" not in preview.context
        page = preview.content.decode()
        assert "Errors page 1 of 3" in page and "page=2" in page

        reference = preview.context["upload"]
        third = admin_client.get(f"{URL}import/", {"upload": reference, "page": 3})
        assert third.status_code == 200
        assert [line for line, _found, _values in third.context["error_page"]] == list(
            range(102, 122)
        )  # the header is line 1
        assert not Customer.objects.exists()

    def test_an_error_page_of_another_users_upload_is_refused(self, admin_client, db):
        preview = upload(admin_client, URL, [["name", "email"], ["", "bad"]])
        response = rep("eve").get(f"{URL}import/", {"upload": preview.context["upload"], "page": 1}, follow=True)
        assert "reference is not valid" in page_messages(response)[0]


def test_bounds_and_counts_speak_chinese(admin_client, settings):
    settings.IMPORT_MAX_ROWS = 1
    refused = admin_client.post(
        f"{URL}import/",
        {"resource": "0", "format": CSV_FORMAT, "import_file": SimpleUploadedFile("a.csv", csv_bytes(ROWS * 3))},
        HTTP_ACCEPT_LANGUAGE="zh-hans",
    )
    assert "上限为 1 行" in file_error(refused)
    settings.IMPORT_MAX_ROWS = 500
    preview = admin_client.post(
        f"{URL}import/",
        {"resource": "0", "format": CSV_FORMAT, "import_file": SimpleUploadedFile("a.csv", csv_bytes(ROWS))},
        HTTP_ACCEPT_LANGUAGE="zh-hans",
    )
    assert "新增：1 · 更新：0 · 跳过：0 · 错误：0" in preview.content.decode()
