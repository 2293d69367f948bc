"""The capped count (core.paging) gives what counting ``LIMIT cap + 1`` rows gives, whichever statement it runs."""

import pytest
from django.db import connection, transaction
from django.test.utils import CaptureQueriesContext

from core.paging import capped_count
from customers.models import Customer
from interactions.models import Interaction
from tests.factories import CustomerFactory, InteractionFactory


def plain(queryset, cap):
    """The plain path: the rows up to ``cap + 1``, counted."""
    counted = queryset.order_by().values("pk")[: cap + 1].count()
    return min(counted, cap), counted > cap


def counted(queryset, cap):
    with CaptureQueriesContext(connection) as queries:
        answer = capped_count(queryset, cap)
    assert len(queries) == 1
    return answer, queries[0]["sql"]


@pytest.fixture
def customers(db):
    return CustomerFactory.create_batch(6, status="lead") + CustomerFactory.create_batch(3, status="active")


@pytest.mark.parametrize("cap", [0, 1, 5, 8, 9, 10, 50])
def test_a_whole_table_probes_for_the_row_after_the_cap_and_counts_as_the_plain_path(customers, cap):
    for queryset in (Customer.objects.all(), Customer.objects.with_summary(), Customer.objects.order_by("name")):
        answer, sql = counted(queryset, cap)
        assert answer == plain(queryset, cap)
        assert f"OFFSET {cap}" in sql


@pytest.mark.parametrize("cap", [0, 2, 3, 5, 6, 7, 50])
def test_a_filtered_queryset_counts_its_rows_up_to_the_cap(customers, cap):
    for queryset in (Customer.objects.filter(status="lead"), Customer.objects.exclude(status="lead")):
        answer, sql = counted(queryset, cap)
        assert answer == plain(queryset, cap)
        assert "OFFSET" not in sql


def test_the_whole_count_follows_deletes_and_an_empty_table(customers):
    assert capped_count(Customer.objects.all(), 9) == (9, False)
    assert capped_count(Customer.objects.all(), 8) == (8, True)
    Customer.objects.filter(pk=customers[0].pk).delete()
    assert capped_count(Customer.objects.all(), 8) == (8, False)
    Customer.objects.all().delete()
    assert capped_count(Customer.objects.all(), 8) == (0, False)
    assert capped_count(Customer.objects.all(), 0) == (0, False)


def test_a_queryset_that_matches_nothing_asks_nothing(customers):
    with CaptureQueriesContext(connection) as queries:
        assert capped_count(Customer.objects.none(), 5) == (0, False)
    assert len(queries) == 0


def test_rows_of_a_joined_and_distinct_queryset(db):
    customer = CustomerFactory()
    InteractionFactory.create_batch(4, customer=customer)
    InteractionFactory.create_batch(2)
    for queryset in (
        Interaction.objects.select_related("customer"),
        Customer.objects.distinct(),
        Customer.objects.filter(interactions__isnull=False).distinct(),
    ):
        for cap in (0, 1, 2, 3, 5, 6, 7):
            assert capped_count(queryset, cap) == plain(queryset, cap), (queryset.query, cap)


def test_a_locking_queryset_is_counted_as_the_plain_path(customers):
    with transaction.atomic():
        for cap in (0, 8, 9, 10):
            assert capped_count(Customer.objects.select_for_update(), cap) == plain(Customer.objects.all(), cap)
