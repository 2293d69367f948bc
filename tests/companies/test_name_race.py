"""One company per name, however it is spelled and however many writers name it at once."""

import pytest
from django.db import connection, transaction

from companies.models import Company
from companies.names import name_key
from customers.models import Customer
from tests.concurrency import Held, Thread, waits


def test_name_key_folds_width_case_and_spacing():
    assert name_key("ＡＢＣ科技") == name_key("abc科技") == name_key("  Abc科技 ")
    assert name_key("ＡＢＣ　 科技") == "abc 科技"  # an ideographic space is a space
    assert name_key("ABC科技") != name_key("ABD科技")


@pytest.mark.django_db
def test_full_width_name_links_the_existing_company():
    company = Company.objects.create(name="ABC科技")
    customer = Customer.objects.create(name="王伟", company_name="ＡＢＣ科技")
    assert customer.company == company
    assert Company.objects.count() == 1


@pytest.mark.django_db(transaction=True)
@pytest.mark.skipif(connection.vendor != "postgresql", reason="two connections at once: PostgreSQL")
def test_two_writers_naming_a_new_company_at_once_make_one():
    """The first writer holds its transaction open; the second must wait for it and find its company."""

    def second_writer():
        with transaction.atomic():
            return Customer.objects.create(name="Bob", company_name=" race  HOLDINGS").company_id

    with Held(lambda: Customer.objects.create(name="Alice", company_name="Race Holdings").company_id) as first:
        second = Thread(second_writer)
        second.start()
        # The second writer is waiting for the first one's lock on the name before the first commits.
        assert waits(second), "the second writer never waited for the first"
        first_company = first.commit()

    assert second.answer() == first_company
    assert Company.objects.filter(name_key="race holdings").count() == 1
