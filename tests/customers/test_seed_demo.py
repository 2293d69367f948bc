from datetime import UTC, datetime
from io import StringIO

import pytest
from django.core.management import CommandError, call_command

from customers.models import Customer
from customers.search import search_customers
from customers.seeding import UNIQUE_NAME, generate
from interactions.models import Interaction
from opportunities.models import Opportunity, StageChange

END = datetime(2026, 1, 1, tzinfo=UTC)


def seed(*args):
    out = StringIO()
    call_command("seed_demo", "--no-progress", "--end", "2026-01-01", *args, stdout=out, stderr=StringIO())
    return out.getvalue()


def test_generate_is_deterministic_for_a_seed():
    first = [batch.customers + batch.opportunities for batch in generate(50, seed=7, end=END, batch_size=20)]
    second = [batch.customers + batch.opportunities for batch in generate(50, seed=7, end=END, batch_size=20)]
    other = [batch.customers + batch.opportunities for batch in generate(50, seed=8, end=END, batch_size=20)]
    assert first == second
    assert first != other


@pytest.mark.django_db(transaction=True)
def test_seed_demo_writes_customers_with_their_history():
    output = seed("--customers", "40")

    assert Customer.objects.count() == 40
    assert "rows/s" in output
    unique = Customer.objects.get(name=UNIQUE_NAME)
    assert unique.pk == 21
    assert Interaction.objects.count() > 40 * 2
    assert Opportunity.objects.count() > 40
    names = "".join(Customer.objects.values_list("name", flat=True))
    assert any("\u4e00" <= char <= "\u9fff" for char in names), "Chinese names are part of the mix"
    assert any(char.isascii() and char.isalpha() for char in names)
    # Everything happens within the year before --end, children after their customer.
    for interaction in Interaction.objects.select_related("customer")[:100]:
        assert interaction.customer.created_at <= interaction.occurred_at <= END
    # closed_at agrees with the stage, and every opportunity starts with its creation event.
    for opportunity in Opportunity.objects.prefetch_related("stage_changes"):
        assert (opportunity.closed_at is None) == (opportunity.stage in Opportunity.OPEN_STAGES)
        changes = sorted(opportunity.stage_changes.all(), key=lambda change: change.pk)
        assert changes[0].from_stage is None
        assert changes[0].to_stage == Opportunity.Stage.LEAD
        assert changes[-1].to_stage == opportunity.stage
    assert StageChange.objects.count() >= Opportunity.objects.count()


@pytest.mark.django_db(transaction=True)
def test_seed_demo_refuses_a_database_with_customers_unless_appending():
    seed("--customers", "5")
    with pytest.raises(CommandError, match="already has customers"):
        seed("--customers", "5")
    seed("--customers", "5", "--append", "--seed", "9")

    assert Customer.objects.count() == 10
    assert sorted(Customer.objects.values_list("pk", flat=True)) == list(range(1, 11))


@pytest.mark.django_db(transaction=True)
def test_seeded_rows_leave_the_id_sequences_and_search_index_ready():
    seed("--customers", "12")

    created = Customer.objects.create(name="After the seed")
    assert created.pk > 12
    # The search index (FTS5 on SQLite, trigram on PostgreSQL) sees the bulk-written rows.
    found = search_customers(Customer.objects.all(), "zyxwvut")
    assert list(found.values_list("name", flat=True)) == [UNIQUE_NAME]
    # ... and keeps following changes afterwards.
    Customer.objects.filter(name=UNIQUE_NAME).update(name="Qwertzu Renamed", email="q@example.com")
    assert search_customers(Customer.objects.all(), "zyxwvut").count() == 0
    assert search_customers(Customer.objects.all(), "qwertzu").count() == 1


@pytest.mark.parametrize("argument", ["0", "-3", "many"])
def test_seed_demo_rejects_a_bad_customer_count(argument):
    with pytest.raises(CommandError, match="customers"):
        call_command("seed_demo", "--customers", argument, stdout=StringIO(), stderr=StringIO())
