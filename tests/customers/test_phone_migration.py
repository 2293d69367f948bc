"""The migrations that store each phone number's national significant number beside its E.164 form."""

import pytest

from tests.companies.test_migration import migrate, to_latest

BEFORE = [("customers", "0014_customer_owner_sort_idx"), ("companies", "0010_name_key_cut_to_its_length")]


@pytest.fixture
def before_national_numbers(transactional_db):
    yield migrate(BEFORE)
    to_latest()


def test_forwards_fills_the_national_numbers_of_the_stored_numbers(before_national_numbers):
    apps = before_national_numbers
    Customer = apps.get_model("customers", "Customer")
    Company = apps.get_model("companies", "Company")
    numbers = {"张三": "+8613800138000", "Bob": "+442079460000", "Carla": "+390612345678", "Dee": None}
    for name, number in numbers.items():
        Customer.objects.create(name=name, phone=number, phone_e164=number, status="active")
    # More than one statement's worth.
    Customer.objects.bulk_create(
        Customer(name=f"n{n}", phone_e164=f"+1415555{n:04d}", status="active") for n in range(2100)
    )
    Company.objects.create(name="Acme", name_key="acme", phone_e164="+861065529988")

    apps = to_latest()

    Customer = apps.get_model("customers", "Customer")
    Company = apps.get_model("companies", "Company")
    national = dict(Customer.objects.filter(name__in=numbers).values_list("name", "phone_national"))
    assert national == {"张三": "13800138000", "Bob": "2079460000", "Carla": "0612345678", "Dee": None}
    assert not Customer.objects.filter(name__startswith="n", phone_national__isnull=True).exists()
    assert Customer.objects.get(name="n2099").phone_national == "4155552099"
    assert Company.objects.get(name="Acme").phone_national == "1065529988"
