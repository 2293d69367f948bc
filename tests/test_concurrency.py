"""The helpers of tests/concurrency.py end what a test started, whatever it failed at."""

import pytest
from django.db import connection, transaction

from customers.models import Customer
from tests import concurrency
from tests.concurrency import Held, Thread, stop_started, waits
from tests.factories import CustomerFactory

pytestmark = [
    pytest.mark.django_db(transaction=True),
    pytest.mark.skipif(connection.vendor != "postgresql", reason="two connections at once: PostgreSQL"),
]


def renamed_at_once(customer, name):
    """Whether ``customer`` can be renamed now, without waiting for another session's lock."""
    with transaction.atomic(), connection.cursor() as cursor:
        cursor.execute("SET LOCAL lock_timeout = '2s'")
        return Customer.objects.filter(pk=customer.pk).update(name=name) == 1


def test_a_held_transaction_and_a_step_waiting_for_it_are_ended_and_rolled_back():
    """As a test that failed before it let its ``Held`` go leaves them."""
    customer = CustomerFactory(name="Ann")
    held = Held(lambda: [Customer.objects.filter(pk=customer.pk).update(name="Held"), CustomerFactory(name="Held's")])
    held.start()
    assert held.written.wait(concurrency.PATIENCE)
    late = Thread(lambda: Customer.objects.filter(pk=customer.pk).update(name="Late"))
    late.start()
    assert waits(late)

    assert stop_started() == []

    assert not held.is_alive() and not late.is_alive()
    # The held write was rolled back; the late one, let through, was written.
    assert list(Customer.objects.values_list("name", flat=True)) == ["Late"]
    assert renamed_at_once(customer, "Bea")


def test_a_session_that_does_not_end_is_ended_by_the_server(monkeypatch):
    """A step stuck in the database with its rows locked (here waiting for a lock this test never lets go): its
    session is ended, its transaction rolled back and its locks freed."""
    monkeypatch.setattr(concurrency, "PATIENCE", 1)
    customer = CustomerFactory(name="Ann")

    def stuck():
        with transaction.atomic():
            Customer.objects.filter(pk=customer.pk).update(name="Stuck")
            with connection.cursor() as cursor:
                cursor.execute("SELECT pg_advisory_lock(4242)")

    with connection.cursor() as cursor:
        cursor.execute("SELECT pg_advisory_lock(4242)")
    try:
        thread = Thread(stuck)
        thread.start()
        assert waits(thread)

        assert stop_started() == []
    finally:
        with connection.cursor() as cursor:
            cursor.execute("SELECT pg_advisory_unlock(4242)")

    assert thread.error is not None and not thread.is_alive()
    assert Customer.objects.get(pk=customer.pk).name == "Ann"
    assert renamed_at_once(customer, "Bea")
