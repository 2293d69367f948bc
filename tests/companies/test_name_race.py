"""One company per name, however it is spelled and however many writers name it at once."""

import threading

import pytest
from django.db import connection, connections, transaction

from companies.models import Company
from companies.names import name_key
from customers.models import Customer


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
    first_created = threading.Event()
    release = threading.Event()
    results, errors = {}, []

    def first():
        try:
            with transaction.atomic():
                results["first"] = Customer.objects.create(name="Alice", company_name="Race Holdings").company_id
                first_created.set()
                release.wait(10)
        except Exception as exc:  # pragma: no cover - reported below
            errors.append(exc)
            first_created.set()
        finally:
            connections.close_all()

    def second():
        try:
            first_created.wait(10)
            with transaction.atomic():
                results["second"] = Customer.objects.create(name="Bob", company_name=" race  HOLDINGS").company_id
        except Exception as exc:  # pragma: no cover - reported below
            errors.append(exc)
        finally:
            connections.close_all()

    threads = [threading.Thread(target=first), threading.Thread(target=second)]
    for thread in threads:
        thread.start()
    first_created.wait(10)
    # The second writer is waiting for the first one's lock on the name before the first commits.
    with connection.cursor() as cursor:
        for _ in range(200):
            cursor.execute("SELECT count(*) FROM pg_locks WHERE locktype = 'advisory' AND NOT granted")
            if cursor.fetchone()[0]:
                break
            threading.Event().wait(0.05)
        else:
            pytest.fail("the second writer never waited for the first")
    release.set()
    for thread in threads:
        thread.join(20)
    assert not errors
    assert results["first"] == results["second"]
    assert Company.objects.filter(name_key="race holdings").count() == 1
