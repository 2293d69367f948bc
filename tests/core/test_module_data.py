"""Data built once for a module (the ``module_data`` fixture): each test finds it as built."""

import pytest

from customers.models import Customer
from tests.factories import CustomerFactory, fresh

pytestmark = pytest.mark.django_db


@pytest.fixture(scope="module")
def built(module_data):
    return module_data(lambda: {"customer": CustomerFactory(name="Built once")})


@pytest.fixture
def customer(built):
    return fresh(built)["customer"]


def test_a_test_changes_the_built_record_and_adds_another(customer):
    customer.name = "Changed"
    customer.save()
    CustomerFactory(name="Added")

    assert sorted(Customer.objects.values_list("name", flat=True)) == ["Added", "Changed"]


def test_the_next_test_finds_the_data_as_built(built, customer):
    assert customer.name == "Built once"
    assert list(Customer.objects.values_list("name", flat=True)) == ["Built once"]
    # The module's instance is not the one a test gets: a change made in memory stays with that test.
    assert customer is not built["customer"]
