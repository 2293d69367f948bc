"""Custom fields in the command-line imports (import_customers, import_companies), and the purge command."""

from io import StringIO

import pytest
from django.core.management import CommandError, call_command

from companies.models import Company
from core.models import CustomField
from customers.models import Customer
from tests.factories import CustomerFactory

pytestmark = pytest.mark.django_db


def run(command, path, *args, rejects=False):
    out, err = StringIO(), StringIO()
    if rejects:
        with pytest.raises(CommandError) as info:
            call_command(command, str(path), *args, stdout=out, stderr=err)
        return out.getvalue() + err.getvalue() + str(info.value)
    call_command(command, str(path), *args, stdout=out, stderr=err)
    return out.getvalue()


@pytest.fixture
def fields():
    CustomField.objects.create(model="customers", key="seats", label="Seats", label_zh="席位", field_type="number")
    CustomField.objects.create(
        model="customers", key="labels", label="Labels", field_type="multi_choice", choices=["vip", "eu"]
    )
    CustomField.objects.create(model="companies", key="tier", label="Tier", field_type="choice", choices=["a", "b"])


def test_import_customers_maps_columns_by_key_and_label(tmp_path, fields):
    path = tmp_path / "c.csv"
    path.write_text('name,email,席位,labels\nAnn,ann@example.com,12,"vip, eu"\nBob,bob@example.com,many,\n')
    output = run("import_customers", path, rejects=True)
    ann = Customer.objects.get(email="ann@example.com")
    assert ann.custom_fields == {"seats": 12, "labels": ["vip", "eu"]}
    assert not Customer.objects.filter(email="bob@example.com").exists()
    assert "custom_fields.seats: Enter a whole number." in output


def test_import_update_merges_and_required_fields_apply_to_new_rows(tmp_path, fields):
    CustomerFactory(name="Ann", email="ann@example.com", custom_fields={"labels": ["eu"]})
    CustomField.objects.create(model="customers", key="code", label="Code", required=True)
    path = tmp_path / "c.csv"
    path.write_text("name,email,seats\nAnn,ann@example.com,3\nNew,new@example.com,4\n")
    output = run("import_customers", path, "--update-existing", rejects=True)
    assert "custom_fields.code" in output
    assert Customer.objects.get(email="ann@example.com").custom_fields == {"labels": ["eu"], "seats": 3}
    assert not Customer.objects.filter(email="new@example.com").exists()


def test_import_companies(tmp_path, fields):
    path = tmp_path / "c.csv"
    path.write_text("name,domain,Tier\nAcme,acme.example,B\n")
    run("import_companies", path)
    assert Company.objects.get(domain="acme.example").custom_fields == {"tier": "b"}
