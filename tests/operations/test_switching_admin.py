"""The admin's "Import from HubSpot / Pipedrive / other file" screen: upload, map, preview, confirm; roles."""

from pathlib import Path

import pytest
from django.contrib.auth.models import Group
from django.core.files.uploadedfile import SimpleUploadedFile
from django.test import Client
from django.urls import reverse

from companies.models import Company
from customers.models import Customer
from operations.models import ColumnMapping
from opportunities.models import Opportunity
from tests.factories import CustomerFactory, UserFactory

pytestmark = pytest.mark.django_db

SAMPLES = Path(__file__).resolve().parent.parent / "fixtures" / "vendors"
URL = "/admin/operations/columnmapping/switch/"


@pytest.fixture(autouse=True)
def _dollars(settings):
    settings.CRM_CURRENCY = "USD"


def client_of(group):
    user = UserFactory(is_staff=True)
    if group:
        user.groups.add(Group.objects.get(name=group))
    client = Client()
    client.force_login(user)
    return client, user


def files(*names):
    return [SimpleUploadedFile(name, (SAMPLES / name).read_bytes()) for name in names]


def post_upload(client, source, names, kind="customers"):
    return client.post(URL, {"step": "upload", "source": source, "kind": kind, "files": files(*names)})


def confirm(client, preview):
    context = preview.context
    data = {"step": "confirm", "vendor": context["vendor"], "kind": context["kind"], "reference": [], "name": []}
    for reference, name in context["references"]:
        data["reference"].append(reference)
        data["name"].append(name)
    return client.post(URL, data)


def test_hubspot_preview_writes_nothing_then_confirm_imports():
    client, manager = client_of("Sales manager")
    preview = post_upload(client, "hubspot", ["hubspot-companies.csv", "hubspot-contacts.csv", "hubspot-deals.csv"])
    assert preview.status_code == 200 and preview.context["step"] == "preview"
    assert not Customer.objects.exists() and not Company.objects.exists()
    assert dict(preview.context["counts"])["customers"] == [4, 0, 0, 3]
    page = preview.content.decode()
    assert "unknown lifecycle stage &#x27;Astronaut&#x27;" in page
    assert "北京星辰科技有限公司" in page
    done = confirm(client, preview)
    assert done.status_code == 200 and done.context["step"] == "done"
    assert Customer.objects.count() == 4 and Opportunity.objects.count() == 2
    assert set(Customer.objects.values_list("owner", flat=True)) == {manager.pk}
    # The upload was claimed: the same confirmation again imports nothing.
    again = confirm(client, preview)
    assert again.status_code == 302
    assert Customer.objects.count() == 4


def test_a_rep_imports_into_their_book_and_read_only_users_cannot():
    rep_client, rep = client_of("Sales rep")
    preview = post_upload(rep_client, "pipedrive", ["pipedrive-organizations.csv", "pipedrive-persons.csv"])
    confirm(rep_client, preview)
    assert set(Customer.objects.values_list("owner", flat=True)) == {rep.pk}
    for group in ("Read-only", None):
        client, _user = client_of(group)
        assert client.get(URL).status_code == 403
        refused = post_upload(client, "pipedrive", ["pipedrive-persons.csv"])
        assert refused.status_code == 403
    assert Customer.objects.count() == 2
    # Another user's upload cannot be confirmed.
    other, _user = client_of("Sales rep")
    assert confirm(other, preview).status_code == 302
    assert Customer.objects.count() == 2


def test_other_file_is_mapped_saved_and_the_mapping_reused():
    client, user = client_of("Sales rep")
    page = post_upload(client, "other", ["other-contacts.csv"])
    assert page.context["step"] == "map"
    guessed = {column["header"]: column["chosen"] for column in page.context["columns"]}
    # Guessed from the headers the import commands know (手机: phone).
    assert guessed == {"Full name": "", "E-mail": "", "手机": "phone", "Employer": "", "Notes": ""}
    ((reference, name),) = page.context["references"]
    choice = {"column_0": "name", "column_1": "email", "column_2": "phone", "column_3": "company", "column_4": ""}
    # A field chosen twice, or a required one left out, is asked again.
    twice = client.post(
        URL, {"step": "map", "kind": "customers", "reference": reference, "name": name, **choice, "column_2": "email"}
    )
    assert twice.context["step"] == "map" and "chosen for two columns" in " ".join(twice.context["errors"])
    nameless = client.post(
        URL, {"step": "map", "kind": "customers", "reference": reference, "name": name, **choice, "column_0": ""}
    )
    assert "Choose a column for Name" in " ".join(nameless.context["errors"])
    assert not ColumnMapping.objects.exists()
    preview = client.post(URL, {"step": "map", "kind": "customers", "reference": reference, "name": name, **choice})
    assert preview.context["step"] == "preview"
    saved = ColumnMapping.objects.get(user=user)
    assert saved.mapping == {
        "full name": "name",
        "e-mail": "email",
        "手机": "phone",
        "employer": "company",
        "notes": "",
    }
    confirm(client, preview)
    assert Customer.objects.get(email="wang.fang@example.cn").company.name == "华南物流"
    # The next file with the same headers starts from the saved mapping.
    again = post_upload(client, "other", ["other-contacts.csv"])
    assert [column["chosen"] for column in again.context["columns"]] == ["name", "email", "phone", "company", ""]
    # Another user's saved mapping is theirs only.
    other_client, _other = client_of("Sales rep")
    theirs = post_upload(other_client, "other", ["other-contacts.csv"])
    assert [column["chosen"] for column in theirs.context["columns"]] == ["", "", "phone", "", ""]


def test_huge_odd_and_wrong_files_are_refused_with_a_message(settings):
    client, _user = client_of("Sales manager")
    settings.IMPORT_MAX_BYTES = 100
    big = post_upload(client, "hubspot", ["hubspot-contacts.csv"])
    assert "the limit is 100 bytes" in " ".join(big.context["form"].errors["files"])
    settings.IMPORT_MAX_BYTES = 1024 * 1024
    odd = client.post(
        URL,
        {
            "step": "upload",
            "source": "hubspot",
            "kind": "customers",
            "files": [SimpleUploadedFile("x.pdf", b"%PDF-1.4")],
        },
    )
    assert "must be a .csv or .xlsx file" in " ".join(odd.context["form"].errors["files"])
    broken = client.post(
        URL,
        {
            "step": "upload",
            "source": "hubspot",
            "kind": "customers",
            "files": [SimpleUploadedFile("x.xlsx", b"not a zip")],
        },
    )
    assert "not a readable .xlsx workbook" in " ".join(broken.context["form"].errors["files"])
    wrong = post_upload(client, "pipedrive", ["other-contacts.csv"])
    assert "not those of a pipedrive export" in " ".join(wrong.context["form"].errors["files"])
    forged = client.post(URL, {"step": "confirm", "vendor": "hubspot", "reference": "forged", "name": "x.csv"})
    assert forged.status_code == 302
    assert not Customer.objects.exists()


@pytest.mark.parametrize("source", ["hubspot", "other"])
def test_a_file_in_another_encoding_is_refused_without_naming_a_command_option(source):
    client, _user = client_of("Sales manager")
    text = (SAMPLES / "hubspot-contacts.csv").read_text(encoding="utf-8-sig")
    upload = SimpleUploadedFile("contacts.csv", text.encode("utf-16"))
    page = client.post(URL, {"step": "upload", "source": source, "kind": "customers", "files": [upload]})
    assert page.context["form"].errors["files"] == [
        "contacts.csv is not text in utf-8-sig or gb18030. Save it as 'CSV UTF-8'."
    ]
    assert not Customer.objects.exists()


def test_the_screen_is_linked_from_the_mappings_list():
    client, _user = client_of("Sales rep")
    page = client.get(reverse("admin:operations_columnmapping_changelist"))
    assert URL in page.content.decode()


def test_the_screen_follows_the_browser_language():
    client, _user = client_of("Sales rep")
    page = client.get(URL, HTTP_ACCEPT_LANGUAGE="zh-hans").content.decode()
    assert "从 HubSpot、Pipedrive 或其他文件导入" in page and "导出自" in page
    assert "公司、联系人和交易可一次导入（最多 3 个文件）" in page  # the files' help, read in the reader's language
    data = {"step": "upload", "source": "other", "kind": "customers", "files": files("other-contacts.csv")}
    mapping = client.post(URL, data, HTTP_ACCEPT_LANGUAGE="zh-hans").content.decode()
    assert "映射列（客户）" in mapping and "— 忽略 —" in mapping


def test_a_header_with_a_nul_character_is_mapped_and_saved():
    client, user = client_of("Sales rep")
    data = b"Na\x00me,Mail\nLi Lei,li@example.cn\n"
    upload = {"step": "upload", "source": "other", "kind": "customers", "files": [SimpleUploadedFile("n.csv", data)]}
    page = client.post(URL, upload)
    ((reference, name),) = page.context["references"]
    preview = client.post(
        URL,
        {
            "step": "map",
            "kind": "customers",
            "reference": reference,
            "name": name,
            "column_0": "name",
            "column_1": "email",
        },
    )
    assert preview.context["step"] == "preview"
    assert ColumnMapping.objects.get(user=user).mapping == {"name": "name", "mail": "email"}
    confirm(client, preview)
    assert Customer.objects.get().email == "li@example.cn"


def test_the_preview_notes_a_lost_reason_left_out_of_a_deal_that_is_not_lost():
    client, _manager = client_of("Sales manager")
    CustomerFactory(name="Lee", email="lee@example.com")
    text = "Deal - ID,Deal - Title,Deal - Status,Deal - Person,Deal - Lost reason\n1,Lost,lost,Lee,Price\n"
    text += "2,Won,won,Lee,Timing\n"
    upload = SimpleUploadedFile("deals.csv", text.encode())
    preview = client.post(URL, {"step": "upload", "source": "pipedrive", "kind": "deals", "files": [upload]})
    assert preview.status_code == 200 and preview.context["step"] == "preview"
    assert "the lost reason &#x27;Timing&#x27; is left out: the deal is not lost" in preview.content.decode()
    confirm(client, preview)
    assert dict(Opportunity.objects.values_list("title", "lost_reason")) == {"Lost": "Price", "Won": ""}
