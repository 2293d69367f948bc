"""``manage.py import_companies``: rows checked like the API, matched by domain written any way."""

import pytest
from django.core.management import CommandError, call_command
from django.db import connection

from companies.models import Company
from companies.services import delete_company
from tests.concurrency import while_deleting
from tests.factories import CompanyFactory

pytestmark = pytest.mark.django_db


def write(tmp_path, text, encoding="utf-8-sig"):
    path = tmp_path / "companies.csv"
    path.write_bytes(text.encode(encoding))
    return path


def test_imports_chinese_headers_in_gb18030(tmp_path, capsys):
    path = write(
        tmp_path, "公司名称,域名,行业,规模\n华为技术有限公司,https://www.huawei.com/cn,通信,1001+\n", "gb18030"
    )
    call_command("import_companies", str(path))
    company = Company.objects.get()
    assert (company.name, company.domain, company.industry, company.size) == (
        "华为技术有限公司",
        "huawei.com",
        "通信",
        "1001+",
    )
    assert company.history.get().history_type == "+"
    assert "Created 1" in capsys.readouterr().out


def test_existing_domain_is_skipped_unless_updating(tmp_path, capsys):
    existing = CompanyFactory(name="Acme", domain="acme.com", industry="Old")
    path = write(tmp_path, "name,domain,industry\nAcme Corp,WWW.ACME.COM,Robots\n")
    call_command("import_companies", str(path))
    existing.refresh_from_db()
    assert existing.industry == "Old"
    assert "exists already" in capsys.readouterr().out
    call_command("import_companies", str(path), "--update-existing")
    existing.refresh_from_db()
    assert (existing.name, existing.industry) == ("Acme Corp", "Robots")


def test_bad_rows_are_reported_and_atomic_writes_nothing(tmp_path, capsys):
    path = write(tmp_path, "name,domain,size\nGood,good.com,\n,nameless.com,\nBad size,bad.com,huge\nTwin,GOOD.com,\n")
    with pytest.raises(CommandError, match="3 rows were rejected"):
        call_command("import_companies", str(path), "--atomic")
    assert not Company.objects.exists()
    err = capsys.readouterr().err
    assert "line 3: rejected: name:" in err
    assert "line 4: rejected: size:" in err
    assert "line 5: rejected: duplicate domain GOOD.com (first on line 2)" in err


def test_missing_name_column_is_refused(tmp_path):
    with pytest.raises(CommandError, match="lacks the required column"):
        call_command("import_companies", str(write(tmp_path, "domain\nexample.com\n")))


@pytest.mark.skipif(connection.vendor != "postgresql", reason="two connections at once: PostgreSQL")
@pytest.mark.django_db(transaction=True)
def test_a_company_deleted_while_an_update_names_it_by_domain_is_made_anew_not_again(tmp_path):
    acme = CompanyFactory(name="Acme", domain="acme.com")
    path = write(tmp_path, "name,domain\nAcme Again,acme.com\n")

    errors = while_deleting(
        delete_company, acme, lambda: call_command("import_companies", str(path), "--update-existing")
    )

    assert not errors
    assert not Company.objects.filter(pk=acme.pk).exists()
    assert Company.objects.get().name == "Acme Again"
