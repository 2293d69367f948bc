"""``manage.py import_customers FILE``: every bad row reported by line, matching by email, all-or-nothing."""

import zipfile
from io import StringIO

import pytest
from django.core.management import CommandError, call_command
from django.db import connection
from openpyxl import Workbook

from companies.models import Company
from companies.services import delete_company
from customers.models import Customer
from customers.services import delete_customer
from tests.concurrency import while_deleting
from tests.factories import EMAILS_BEYOND_ASCII, CompanyFactory, CustomerFactory

pytestmark = pytest.mark.django_db


def run(path, *args):
    out, err = StringIO(), StringIO()
    call_command("import_customers", str(path), *args, stdout=out, stderr=err)
    return out.getvalue(), err.getvalue()


def run_failing(path, *args):
    out, err = StringIO(), StringIO()
    with pytest.raises(CommandError) as info:
        call_command("import_customers", str(path), *args, stdout=out, stderr=err)
    return str(info.value), out.getvalue(), err.getvalue()


def write_csv(tmp_path, text, encoding="utf-8-sig", name="customers.csv"):
    path = tmp_path / name
    path.write_bytes(text.encode(encoding))
    return path


def write_xlsx(tmp_path, rows, name="customers.xlsx"):
    workbook = Workbook()
    sheet = workbook.active
    for row in rows:
        sheet.append(row)
    path = tmp_path / name
    workbook.save(path)
    return path


def snapshot():
    return list(Customer.objects.order_by("id").values_list("name", "company_name", "email", "phone", "status"))


GOOD = "name,company,email,phone,status\n张三,ABC科技,zhangsan@abc.com,13800138000,active\nAlice,,alice@example.com,,lead\n"
MIXED = (
    "name,email,status\n"  # line 1
    "张三,zs@example.com,active\n"  # 2 ok
    ",blank@example.com,\n"  # 3 blank name
    "Li,not-an-email,\n"  # 4 bad email
    "Wang,ZS@Example.com,\n"  # 5 duplicate of line 2
    "Zhao,zhao@example.com,vip\n"  # 6 bad status
    "\n"  # 7 blank line, ignored
    '"Multi\nline",m@example.com,lead\n'  # 8-9 ok
)


class TestHappyPaths:
    def test_imports_csv_with_bom_and_chinese(self, tmp_path):
        out, err = run(write_csv(tmp_path, GOOD))
        assert snapshot() == [
            ("张三", "ABC科技", "zhangsan@abc.com", "13800138000", "active"),
            ("Alice", None, "alice@example.com", None, "lead"),
        ]
        assert "Created 2, updated 0, skipped 0 existing, rejected 0 of 2 rows." in out
        assert err == ""

    def test_imports_gb18030_csv(self, tmp_path):
        run(write_csv(tmp_path, "姓名,公司,邮箱\n王芳,上海云帆贸易,wf@yunfan.cn\n", encoding="gb18030"))
        assert snapshot() == [("王芳", "上海云帆贸易", "wf@yunfan.cn", None, "active")]

    def test_imports_xlsx_with_numeric_phone_and_extra_columns(self, tmp_path):
        path = write_xlsx(
            tmp_path,
            [["Name", "Phone", "Notes"], ["赵敏", 13600136000, "vip"], [None, None, None], ["Bob", "+1 415", None]],
        )
        out, _ = run(path)
        assert "Ignoring columns: Notes" in out
        assert snapshot() == [("赵敏", None, None, "13600136000", "active"), ("Bob", None, None, "+1 415", "active")]

    def test_empty_status_takes_the_default(self, tmp_path):
        run(write_csv(tmp_path, "name,status\nA,\n"))
        assert snapshot() == [("A", None, None, None, "active")]


class TestBadRows:
    def test_every_bad_row_is_reported_with_its_line_and_the_rest_imported(self, tmp_path):
        message, out, err = run_failing(write_csv(tmp_path, MIXED))
        assert err.splitlines() == [
            "line 3: rejected: name: This field may not be blank.",
            "line 4: rejected: email: Enter a valid email address.",
            "line 5: rejected: duplicate email ZS@Example.com (first on line 2)",
            'line 6: rejected: status: "vip" is not a valid choice.',
        ]
        assert message == "4 rows were rejected; the other rows were written."
        assert "Created 2, updated 0, skipped 0 existing, rejected 4 of 6 rows." in out
        assert [row[0] for row in snapshot()] == ["张三", "Multi\nline"]

    def test_too_long_values_are_rejected(self, tmp_path):
        _, _, err = run_failing(write_csv(tmp_path, f"name,phone\n{'x' * 201},1\nok,{'9' * 40}\n"))
        assert "line 2: rejected: name: Ensure this field has no more than 200 characters." in err
        assert "line 3: rejected: phone: Ensure this field has no more than 32 characters." in err
        assert snapshot() == []


class TestExistingCustomers:
    def test_match_by_email_ignoring_case_is_skipped(self, tmp_path):
        existing = CustomerFactory(name="Old", email="Alice@Example.com", phone="1")
        out, _ = run(write_csv(tmp_path, GOOD))
        assert (
            f"line 3: skipped: a customer with email alice@example.com exists already (id {existing.pk}); not changed"
            in out
        )
        assert "Created 1, updated 0, skipped 1 existing, rejected 0 of 2 rows." in out
        existing.refresh_from_db()
        assert (existing.name, existing.phone, existing.status) == ("Old", "1", "active")

    @pytest.mark.parametrize(("stored", "written"), EMAILS_BEYOND_ASCII.values(), ids=list(EMAILS_BEYOND_ASCII))
    def test_an_email_with_capitals_beyond_ascii_matches_its_customer_in_another_case(self, tmp_path, stored, written):
        # The database compares the emails, lowering both sides as the unique index does: the row updates the
        # customer, rather than making a new one that the unique email refuses.
        existing = CustomerFactory(name="Old", email=stored)
        out, _ = run(write_csv(tmp_path, f"name,email\nNew,{written}\n"), "--update-existing")
        assert "Created 0, updated 1, skipped 0 existing, rejected 0 of 1 rows." in out
        existing.refresh_from_db()
        assert (existing.name, existing.email) == ("New", written)
        assert Customer.objects.count() == 1

    def test_update_existing_changes_only_given_cells(self, tmp_path):
        existing = CustomerFactory(name="Old", company="Keep Co", email="Alice@Example.com", phone="1")
        out, _ = run(write_csv(tmp_path, GOOD), "--update-existing")
        assert "Created 1, updated 1" in out
        existing.refresh_from_db()
        assert (existing.name, existing.company_name, existing.email, existing.phone, existing.status) == (
            "Alice",
            "Keep Co",
            "alice@example.com",
            "1",
            "lead",
        )
        assert Customer.objects.count() == 2

    def test_update_existing_again_with_the_same_file_changes_nothing_and_says_so(self, tmp_path):
        from core.models import Changeset

        path = write_csv(tmp_path, GOOD)
        run(path, "--update-existing")
        before, history, changesets = snapshot(), Customer.history.count(), Changeset.objects.count()
        out, _ = run(path, "--update-existing")
        assert "Created 0, updated 0, 2 already as in the file, skipped 0 existing, rejected 0 of 2 rows." in out
        assert snapshot() == before
        assert Customer.history.count() == history
        assert Changeset.objects.count() == changesets


class TestModes:
    def test_dry_run_writes_nothing_and_reports(self, tmp_path):
        CustomerFactory(email="alice@example.com")
        before = snapshot()
        out, _ = run(write_csv(tmp_path, GOOD), "--dry-run", "--update-existing")
        assert snapshot() == before
        assert (
            "Would create 1, would update 1, skipped 0 existing, rejected 0 of 2 rows. Nothing was written (--dry-run)."
            in out
        )

    def test_dry_run_with_bad_rows_fails_and_writes_nothing(self, tmp_path):
        message, _, err = run_failing(write_csv(tmp_path, MIXED), "--dry-run")
        assert message == "4 rows were rejected; nothing was written (--dry-run)."
        assert err.count("rejected:") == 4
        assert snapshot() == []

    def test_atomic_writes_nothing_when_a_row_is_bad(self, tmp_path):
        message, out, _ = run_failing(write_csv(tmp_path, MIXED), "--atomic")
        assert message == "4 rows were rejected; nothing was written (--atomic)."
        assert "Would create 2" in out
        assert snapshot() == []

    def test_atomic_writes_everything_when_all_rows_are_good(self, tmp_path):
        run(write_csv(tmp_path, GOOD), "--atomic")
        assert len(snapshot()) == 2

    def test_batches_beyond_one_are_matched_too(self, tmp_path):
        CustomerFactory(email="c1200@example.com")
        lines = ["name,email"] + [f"C{i},c{i}@example.com" for i in range(1300)] + ["Dup,C5@example.com"]
        message, out, err = run_failing(write_csv(tmp_path, "\n".join(lines) + "\n"), "--max-rows", "2000")
        assert "line 1202: skipped: a customer with email c1200@example.com exists already" in out
        assert err.strip() == "line 1302: rejected: duplicate email C5@example.com (first on line 7)"
        assert Customer.objects.count() == 1300


class TestBadFiles:
    def test_missing_required_column(self, tmp_path):
        message, _, _ = run_failing(write_csv(tmp_path, "company,email\nX,x@example.com\n"))
        assert message.endswith("lacks the required column(s): name (found: company, email).")

    def test_wrong_encoding(self, tmp_path):
        message, _, _ = run_failing(write_csv(tmp_path, GOOD, encoding="utf-16"))
        assert "is not text in utf-8-sig or gb18030" in message
        assert snapshot() == []

    @pytest.mark.parametrize(
        ("text", "encoding", "names"),
        [
            # Every accent followed by a letter: GB18030 reads it whole, as "J黵gen M黮ler" and "Concei玢o".
            (
                "name,email\nJürgen Müller,jm@example.de\nAna Conceição,ac@example.br\n",
                "cp1252",
                ["Jürgen Müller", "Ana Conceição"],
            ),
            # No byte order mark: UTF-8 reads it whole, a NUL after every letter.
            ("name,email\nAda,ada@example.com\n", "utf-16-le", ["Ada"]),
        ],
        ids=["cp1252", "utf-16-le"],
    )
    def test_text_that_reads_only_as_garbage_is_refused_and_the_right_encoding_imports_it(
        self, tmp_path, text, encoding, names
    ):
        path = write_csv(tmp_path, text, encoding=encoding)
        message, _, _ = run_failing(path)
        assert message.endswith(
            "is not text in utf-8-sig or gb18030. Save it as 'CSV UTF-8'. Or pass --encoding with the file's "
            "encoding (cp1252: Western Windows)."
        )
        assert snapshot() == []
        run(path, "--encoding", encoding)
        assert [name for name, *_ in snapshot()] == names

    def test_gb18030_with_rare_characters_and_latin_letters_is_still_read(self, tmp_path):
        text = "姓名,公司,邮箱\n朱镕基,ABC科技,zrj@example.cn\n王喆,SOHO现代城A座,wz@example.cn\n"
        run(write_csv(tmp_path, text, encoding="gb18030"))
        assert [row[:2] for row in snapshot()] == [("朱镕基", "ABC科技"), ("王喆", "SOHO现代城A座")]

    def test_gb18030_whose_chinese_is_single_characters_in_their_own_cells_is_read(self, tmp_path):
        # A gender column beside English names: each 男 or 女 stands alone between commas.
        text = "name,性别,email\nAda Lovelace,女,ada@example.com\nBob Smith,男,bob@example.com\nCarl Jung,男,c@example.com\n"
        run(write_csv(tmp_path, text, encoding="gb18030"))
        assert [row[0] for row in snapshot()] == ["Ada Lovelace", "Bob Smith", "Carl Jung"]

    def test_cells_an_export_guarded_with_an_apostrophe_import_without_it(self, tmp_path):
        text = "name,company,email\n'-Dash Ltd,'@acme,dash@example.com\n'quoted',Plain,q@example.com\n"
        run(write_csv(tmp_path, text))
        assert [row[:2] for row in snapshot()] == [("-Dash Ltd", "@acme"), ("'quoted'", "Plain")]

    def test_explicit_encoding(self, tmp_path):
        run(write_csv(tmp_path, GOOD, encoding="utf-16"), "--encoding", "utf-16")
        assert len(snapshot()) == 2

    def test_unknown_encoding(self, tmp_path):
        message, _, _ = run_failing(write_csv(tmp_path, GOOD), "--encoding", "klingon")
        assert message == "Unknown encoding: klingon"

    @pytest.mark.parametrize("content", ["", "\n\n", ",,\n"])
    def test_empty_file(self, tmp_path, content):
        message, _, _ = run_failing(write_csv(tmp_path, content, encoding="utf-8"))
        assert message.endswith("is empty.")

    def test_header_without_rows_imports_nothing(self, tmp_path):
        out, _ = run(write_csv(tmp_path, "name,email\n"))
        assert "rejected 0 of 0 rows" in out

    def test_duplicate_column(self, tmp_path):
        message, _, _ = run_failing(write_csv(tmp_path, "name,姓名\na,b\n"))
        assert message.endswith("has the column 'name' twice.")

    def test_not_a_workbook(self, tmp_path):
        path = tmp_path / "fake.xlsx"
        path.write_text("name\nx\n")
        message, _, _ = run_failing(path)
        assert "is not a readable .xlsx workbook" in message

    @pytest.mark.parametrize("name", ["customers.txt", "missing.csv"])
    def test_wrong_extension_or_missing_file(self, tmp_path, name):
        path = tmp_path / name
        if name.endswith(".txt"):
            path.write_text("name\nx\n")
            expected = "must be a .csv or .xlsx file."
        else:
            expected = "does not exist or is not a file."
        message, _, _ = run_failing(path)
        assert message.endswith(expected)

    def test_nul_bytes_reject_the_row(self, tmp_path):
        path = tmp_path / "nul.csv"
        path.write_bytes(b"name\nA\x00B\nC\n")
        _, _, err = run_failing(path)
        assert err.strip() == "line 2: rejected: name: Null characters are not allowed."
        assert [row[0] for row in snapshot()] == ["C"]


class TestHostileFiles:
    """A file beyond the import bounds, or damaged anywhere, is refused whole: not one row is written."""

    @pytest.fixture(autouse=True)
    def existing(self, db):
        return CustomerFactory(name="Here before", email="before@example.com")

    def refused(self, path, *args):
        before = snapshot()
        message, _, _ = run_failing(path, *args)
        assert snapshot() == before
        assert "\n" not in message
        return message

    def test_more_rows_than_the_limit(self, tmp_path, settings):
        settings.IMPORT_MAX_ROWS = 3
        path = write_csv(tmp_path, "name\n" + "".join(f"Row {n}\n" for n in range(4)))
        assert "more than 3 rows" in self.refused(path)

    def test_a_cell_beyond_the_limit_after_good_rows(self, tmp_path, settings):
        settings.IMPORT_MAX_CELL_CHARS = 100
        path = write_csv(tmp_path, "name,company\nGood,\nAlso good,\nLast," + "c" * 101 + "\n")
        assert "Line 4, column 2 holds more than 100 characters" in self.refused(path)

    def test_a_file_larger_than_the_limit(self, tmp_path, settings):
        settings.IMPORT_MAX_BYTES = 50
        path = write_csv(tmp_path, GOOD)
        assert "DJANGO_IMPORT_MAX_BYTES" in self.refused(path)

    @pytest.mark.parametrize(
        "text",
        [
            'name,email\nAnn,ann@example.com\n"Bob,bob@example.com\nCid,cid@example.com\nDee,dee@example.com\n',
            'name,email\nAnn,ann@example.com\nBob,"bob@example.com',
        ],
        ids=["stray-quote", "unclosed-at-the-end"],
    )
    def test_a_quote_never_closed_is_refused_not_read_as_one_cell_to_the_end(self, tmp_path, text):
        # Read leniently, the rest of the file became the name of one customer: 2 rows "created",
        # the others gone without a word.
        assert "Line 3 opens a quoted cell that is never closed" in self.refused(write_csv(tmp_path, text))

    def test_quoted_cells_over_several_lines_still_import(self, tmp_path):
        run(write_csv(tmp_path, 'name,company\n"Multi\nline",x\nLast,"A ""quoted""\nname"\n'))
        assert [row[:2] for row in snapshot()] == [
            ("Here before", None),
            ("Multi\nline", "x"),
            ("Last", 'A "quoted" name'),
        ]

    def test_the_operator_may_raise_the_bounds_for_one_run(self, tmp_path, settings):
        settings.IMPORT_MAX_ROWS, settings.IMPORT_MAX_BYTES = 1, 50
        run(write_csv(tmp_path, GOOD), "--max-rows", "2", "--max-bytes", "1000")
        assert Customer.objects.filter(email="alice@example.com").exists()

    def test_a_workbook_that_unzips_beyond_the_limit(self, tmp_path, settings):
        settings.IMPORT_MAX_UNZIPPED_BYTES = 1024 * 1024
        source = write_xlsx(tmp_path, [["name"], ["Bomb"]], name="source.xlsx")
        path = tmp_path / "bomb.xlsx"
        with zipfile.ZipFile(source) as original, zipfile.ZipFile(path, "w", zipfile.ZIP_DEFLATED) as bomb:
            for info in original.infolist():
                data = original.read(info)
                if info.filename == "xl/worksheets/sheet1.xml":
                    data = data.replace(b"<sheetData>", b"<!--" + b"x" * (3 * 1024 * 1024) + b"--><sheetData>", 1)
                bomb.writestr(info.filename, data)
        assert "DJANGO_IMPORT_MAX_UNZIPPED_BYTES" in self.refused(path)

    def test_a_workbook_repeating_one_long_text_in_every_cell_is_refused(self, tmp_path, settings):
        # One shared string of 30,000 characters named by 400 cells: a file of a few KB, 12 million characters
        # once read (at the default bounds, 500 rows of 200 such cells: 3 GB from a file of 100 KB).
        settings.IMPORT_MAX_UNZIPPED_BYTES = 1024 * 1024
        main = 'xmlns="http://schemas.openxmlformats.org/spreadsheetml/2006/main"'
        kinds = "http://schemas.openxmlformats.org/officeDocument/2006/relationships"
        cells = "".join(
            f'<c r="{column}1" t="inlineStr"><is><t>h{column}</t></is></c>' for column in "ABCDEFGHIJKLMNOPQRST"
        )
        rows = "".join(
            f'<row r="{row}">'
            + "".join(f'<c r="{column}{row}" t="s"><v>0</v></c>' for column in "ABCDEFGHIJKLMNOPQRST")
            + "</row>"
            for row in range(2, 22)
        )
        parts = {
            "xl/workbook.xml": f'<workbook {main} xmlns:r="{kinds}"><sheets><sheet name="S" sheetId="1" r:id="s"/></sheets></workbook>',
            "xl/_rels/workbook.xml.rels": (
                '<Relationships xmlns="http://schemas.openxmlformats.org/package/2006/relationships">'
                f'<Relationship Id="s" Type="{kinds}/worksheet" Target="worksheets/sheet1.xml"/>'
                f'<Relationship Id="t" Type="{kinds}/sharedStrings" Target="sharedStrings.xml"/></Relationships>'
            ),
            "xl/sharedStrings.xml": f'<sst {main}><si><t xml:space="preserve"> {"x" * 30_000}</t></si></sst>',
            "xl/worksheets/sheet1.xml": f'<worksheet {main}><sheetData><row r="1">{cells.replace("hA", "name")}</row>{rows}</sheetData></worksheet>',
        }
        path = tmp_path / "repeated.xlsx"
        with zipfile.ZipFile(path, "w", zipfile.ZIP_DEFLATED) as workbook:
            for name, text in parts.items():
                workbook.writestr(name, text)
        assert path.stat().st_size < 50_000
        assert self.refused(path).endswith(
            "The workbook's cells hold more than 1048576 characters in all (DJANGO_IMPORT_MAX_UNZIPPED_BYTES)."
        )

    def test_a_truncated_workbook(self, tmp_path):
        good = write_xlsx(tmp_path, [["name"], *([f"Row {n}"] for n in range(200))], name="good.xlsx")
        path = tmp_path / "cut.xlsx"
        path.write_bytes(good.read_bytes()[: good.stat().st_size // 2])
        assert "is not a readable .xlsx workbook" in self.refused(path)

    def test_binary_garbage_named_csv(self, tmp_path):
        path = tmp_path / "garbage.csv"
        path.write_bytes(b"\xff\xfe\x00\x81" * 500)
        assert "is not text in utf-8-sig or gb18030" in self.refused(path)

    @pytest.mark.parametrize("atomic", [[], ["--atomic"]])
    def test_a_row_wider_than_the_header_is_refused_with_its_line(self, tmp_path, atomic):
        # "Acme, Inc" without quotes: the row has a cell more than the header names, and " Inc" was dropped.
        path = write_csv(
            tmp_path, "name,email,company\nAda,ada@example.com,Globex\nBob,bob@example.com,Acme, Inc\n", name="w.csv"
        )
        message = self.refused(path, *atomic)
        assert message == (
            f"{path}: Line 3 has 4 cells, but the first row names 3 columns: a value holding a comma "
            "must be in double quotes. Check that line."
        )

    @pytest.mark.parametrize("delimiter", [";", "\t"], ids=["semicolon", "tab"])
    def test_a_file_separated_by_another_delimiter_is_refused_saying_so(self, tmp_path, delimiter):
        # Excel's "CSV" where the decimal mark is a comma, or a "text" export: one column, "name;email".
        text = f"name{delimiter}email\nAda{delimiter}ada@example.com\n"
        message = self.refused(write_csv(tmp_path, text, name="d.csv"))
        assert message.endswith(
            f"The first row is one cell, “name{delimiter}email”: its columns are separated by “{delimiter}”, not "
            "by commas. Save the file as “CSV UTF-8 (comma delimited)” or as XLSX."
        )

    def test_text_not_in_the_given_encoding(self, tmp_path):
        path = write_csv(tmp_path, GOOD, encoding="gb18030")
        assert "Cannot read" in self.refused(path, "--encoding", "ascii")


class TestExternalId:
    def test_sets_external_ids_and_matches_by_them_before_the_email(self, tmp_path):
        run(write_csv(tmp_path, "name,email,external_id\nAda,ada@example.com,crm2-1\nBob,,crm2-2\n"))
        assert dict(Customer.objects.values_list("external_id", "name")) == {"crm2-1": "Ada", "crm2-2": "Bob"}

        # Another email, the same external_id: the same customer, left alone without --update-existing...
        path = write_csv(tmp_path, "name,email,external_id\nAda Lovelace,ada@new.example.com,crm2-1\n", name="b.csv")
        out, _ = run(path)
        assert "external_id crm2-1 exists already" in out
        # ...and updated with it, not duplicated.
        run(path, "--update-existing")
        ada = Customer.objects.get(external_id="crm2-1")
        assert (ada.name, ada.email, Customer.objects.count()) == ("Ada Lovelace", "ada@new.example.com", 2)

    def test_a_repeated_external_id_in_one_file_is_a_rejected_row(self, tmp_path):
        path = write_csv(tmp_path, "name,external_id\nOne,x-1\nTwo,x-1\n")
        message, out, err = run_failing(path)
        assert "line 3" in (out + err + message) and "duplicate external_id x-1 (first on line 2)" in out + err
        assert list(Customer.objects.values_list("name", flat=True)) == ["One"]

    def test_chinese_header(self, tmp_path):
        run(write_csv(tmp_path, "姓名,外部编号\n张三,erp-9\n"))
        assert Customer.objects.get(external_id="erp-9").name == "张三"


@pytest.mark.skipif(connection.vendor != "postgresql", reason="two connections at once: PostgreSQL")
@pytest.mark.django_db(transaction=True)
def test_a_company_deleted_while_the_import_starts_is_named_as_after_its_delete(tmp_path):
    # The company's delete is under way (the company locked, its people unlinked, not committed) when the import
    # starts: the import waits for it and links the row's customer by the name as after the delete (to a company
    # made anew), rather than to the company deleted, which failed the import at its COMMIT.
    company = CompanyFactory(name="Acme")
    path = write_csv(tmp_path, "name,company\nAnn,ACME\n")

    errors = while_deleting(delete_company, company, lambda: run(path))

    assert not errors
    assert not Company.objects.filter(pk=company.pk).exists()
    ann = Customer.objects.get(name="Ann")
    assert ann.company_id != company.pk and ann.company.name == "ACME"


@pytest.mark.skipif(connection.vendor != "postgresql", reason="two connections at once: PostgreSQL")
@pytest.mark.django_db(transaction=True)
@pytest.mark.parametrize("named_by", ["email", "external_id"])
def test_a_customer_deleted_while_an_update_names_it_is_made_anew_not_again(tmp_path, named_by):
    # The customer's delete is under way when the import (--update-existing) reads the customer its row names:
    # the import waits for it and makes a new customer, as had it come after the delete, rather than saving the
    # customer read before, which put it back under its old id without its interactions and deals.
    ann = CustomerFactory(name="Ann", email="ann@example.com", external_id="crm-1")
    path = write_csv(tmp_path, f"name,{named_by}\nAnn Again,{getattr(ann, named_by)}\n")

    errors = while_deleting(delete_customer, ann, lambda: run(path, "--update-existing"))

    assert not errors
    assert not Customer.objects.filter(pk=ann.pk).exists()
    assert Customer.objects.get().name == "Ann Again"
