import threading
from datetime import UTC, datetime
from decimal import Decimal
from io import StringIO

import pytest
from django.core.management import CommandError, call_command
from django.db.models import Count

from companies.models import Company
from companies.search import SEARCH as COMPANIES
from customers.models import Customer
from customers.search import search_customers
from interactions.models import Interaction
from operations.seeding import UNIQUE_NAME, generate
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


def _schema_objects():
    """Every index and foreign key of the seeded tables, as PostgreSQL would recreate them."""
    from django.db import connection

    from operations.seeding import BulkWriter

    with connection.cursor() as cursor:
        cursor.execute(
            "SELECT indexrelid::regclass::text, pg_get_indexdef(indexrelid) FROM pg_index "
            "WHERE indrelid::regclass::text = ANY(%s)",
            [BulkWriter.tables()],
        )
        indexes = set(cursor.fetchall())
        cursor.execute(
            "SELECT conrelid::regclass::text, conname, pg_get_constraintdef(oid), condeferrable, condeferred "
            "FROM pg_constraint WHERE contype = 'f' AND conrelid::regclass::text = ANY(%s)",
            [BulkWriter.tables()],
        )
        return indexes, set(cursor.fetchall())


@pytest.mark.django_db(transaction=True)
def test_a_fresh_postgresql_load_ends_with_every_index_and_foreign_key_in_place():
    from django.db import connection

    if connection.vendor != "postgresql":
        pytest.skip("indexes and foreign keys are set aside for a load on PostgreSQL only")
    indexes, foreign_keys = _schema_objects()
    assert any("gin_trgm_ops" in definition for _, definition in indexes)
    assert len(foreign_keys) >= 3

    seed("--customers", "30")

    assert _schema_objects() == (indexes, foreign_keys)
    # The rebuilt indexes serve queries, and the foreign keys hold.
    assert search_customers(Customer.objects.all(), UNIQUE_NAME[:7]).count() == 1
    customer = Customer.objects.get(name=UNIQUE_NAME)
    with pytest.raises(Exception, match="foreign key"):
        with connection.cursor() as cursor:
            cursor.execute(
                "SET CONSTRAINTS ALL IMMEDIATE; UPDATE interactions_interaction SET customer_id = %s WHERE id = "
                "(SELECT MIN(id) FROM interactions_interaction)",
                [customer.pk + 10_000],
            )


@pytest.mark.django_db(transaction=True)
def test_appending_keeps_the_indexes_live():
    from django.db import connection

    if connection.vendor != "postgresql":
        pytest.skip("PostgreSQL only")
    seed("--customers", "10")
    before = _schema_objects()

    seed("--customers", "10", "--append")  # the same seed: only the ids differ

    assert _schema_objects() == before
    assert Customer.objects.count() == 20
    assert Customer.objects.filter(name=UNIQUE_NAME).count() == 2


@pytest.mark.django_db(transaction=True)
def test_a_load_that_fails_midway_leaves_the_schema_as_it_was(monkeypatch):
    from django.db import connection

    from operations.management.commands import seed_demo

    before = _schema_objects() if connection.vendor == "postgresql" else None

    def first_batch_then_failure(*args, **kwargs):
        yield next(generate(*args, **kwargs))
        raise RuntimeError("the load stops halfway")

    monkeypatch.setattr(seed_demo, "generate", first_batch_then_failure)
    with pytest.raises(RuntimeError, match="halfway"):
        seed("--customers", "20", "--batch-size", "5")

    assert Customer.objects.count() == 0
    if before is not None:
        assert _schema_objects() == before
    # The search index still follows new customers (its SQLite triggers are in place).
    Customer.objects.create(name="Qwertzu After")
    assert search_customers(Customer.objects.all(), "qwertzu").count() == 1


@pytest.mark.django_db(transaction=True)
def test_seed_demo_adds_tasks_around_today_when_there_is_someone_to_assign_them_to():
    from tasks.models import Task
    from tests.factories import ManagerFactory

    assert "no demo tasks" in seed("--customers", "5")
    assert not Task.objects.exists()
    manager = ManagerFactory(username="boss")
    output = seed("--customers", "30", "--append")
    assert "Added demo tasks around today: 30 for boss." in output
    assert Task.objects.filter(assignee=manager).count() == 30
    assert Task.objects.filter(due_at__isnull=True).exists() and Task.objects.filter(done_at__isnull=False).exists()


@pytest.mark.django_db(transaction=True)
def test_seed_demo_gives_the_customers_to_the_demo_reps():
    from operations.demo import create_demo_users
    from tasks.models import Task

    create_demo_users()
    output = seed("--customers", "10")
    assert "owned by the demo reps: rep, rep2" in output
    assert not Customer.objects.filter(owner__isnull=True).exists()
    assert Customer.objects.filter(owner__username="rep").count() == 5
    assert Customer.objects.filter(owner__username="rep2").count() == 5
    # A company is owned like the first customer that names it, as a save links it (Customer.link_company).
    assert Company.objects.exists()
    for company in Company.objects.all():
        assert company.owner_id == company.customers.order_by("pk").first().owner_id
    # Each rep's demo tasks are on their own customers.
    counts = {name: Task.objects.filter(assignee__username=name).count() for name in ("rep", "rep2")}
    assert f"Added demo tasks around today: {counts['rep']} for rep, {counts['rep2']} for rep2." in output
    for username, count in counts.items():
        assert count > 0
        assert not Task.objects.filter(assignee__username=username).exclude(customer__owner__username=username).exists()


@pytest.mark.parametrize("region", ["US", "CN"])
@pytest.mark.parametrize("batch_size", ["5000", "7"], ids=["one-batch", "batches-read-beside"])
@pytest.mark.django_db(transaction=True)
def test_seeded_numbers_have_the_forms_a_save_gives_them(settings, region, batch_size):
    # The twin of the fast path: the same number saved through the model.
    settings.CRM_PHONE_REGION = region
    seed("--customers", "30", "--batch-size", batch_size)

    seeded = list(Customer.objects.order_by("pk").values_list("pk", "phone", "phone_e164", "phone_national"))
    assert any(number for _pk, _phone, number, _national in seeded), "some numbers are valid ones"
    for pk, phone, *forms in seeded:
        twin = Customer.objects.create(name=f"Twin of {pk}", phone=phone)
        assert [twin.phone_e164, twin.phone_national] == forms, phone


@pytest.mark.django_db(transaction=True)
def test_a_seeded_customer_is_found_by_the_number_stored(api, admin_client):
    from django.urls import reverse

    seed("--customers", "30", "--batch-size", "7")
    customer = Customer.objects.filter(phone_e164__isnull=False).order_by("pk").first()

    found = api.get("/api/customers", {"search": customer.phone}).json()["data"]
    assert [row["id"] for row in found] == [customer.pk]
    page = admin_client.get(reverse("admin:customers_customer_changelist"), {"q": customer.phone})
    assert [row.pk for row in page.context["cl"].result_list] == [customer.pk]


@pytest.mark.django_db
def test_no_search_trigger_fires_while_the_writer_loads_on_sqlite():
    from django.db import connection

    from operations.seeding import BulkWriter

    if connection.vendor != "sqlite":
        pytest.skip("PostgreSQL's search indexes are indexes, set aside with the others")
    BulkWriter(fresh=True)  # in the test's transaction, rolled back with it

    tables = BulkWriter.tables()
    with connection.cursor() as cursor:
        cursor.execute(
            f"SELECT name FROM sqlite_master WHERE type = 'trigger' AND tbl_name IN ({', '.join(['%s'] * len(tables))})",
            tables,
        )
        assert [name for (name,) in cursor.fetchall() if "_search_" in name] == []


@pytest.mark.django_db(transaction=True)
def test_the_search_indexes_of_seeded_companies_interactions_and_opportunities_are_built():
    from interactions.search import SEARCH as INTERACTIONS
    from opportunities.search import SEARCH as OPPORTUNITIES

    seed("--customers", "20", "--batch-size", "7")

    for search, model, term in (
        (COMPANIES, Company, "hold"),
        (INTERACTIONS, Interaction, "demo"),
        (OPPORTUNITIES, Opportunity, "licence"),
    ):
        found = search.filter(model.objects.all(), term)
        assert found.exists()
        assert set(found.values_list("pk", flat=True)) == set(
            model.objects.filter(search.icontains_q(term)).values_list("pk", flat=True)
        )
    # ... and keep following new rows.
    customer = Customer.objects.get(name=UNIQUE_NAME)
    added = Interaction.objects.create(customer=customer, interaction_type=Interaction.Type.CALL, notes="Qwertzu call")
    assert list(INTERACTIONS.filter(Interaction.objects.all(), "qwertzu").values_list("pk", flat=True)) == [added.pk]


def _company_links():
    """(customer id, company text, linked company's id and name) of every customer."""
    return list(Customer.objects.order_by("pk").values_list("pk", "company_name", "company_id", "company__name"))


@pytest.mark.django_db(transaction=True)
def test_seeded_customers_and_deals_are_linked_to_their_companies_once_a_name(api):
    seed("--customers", "60", "--batch-size", "7")

    links = _company_links()
    assert any(company_id for _pk, _text, company_id, _name in links)
    assert any(company_id is None for _pk, _text, company_id, _name in links), "some customers have no company"
    for pk, text, company_id, name in links:
        # The text is the linked company's name, and the company a save would link that text to.
        assert text == name, pk
        if text is not None:
            assert Company.objects.named(text).first().pk == company_id
    keys = Company.objects.values("name_key").annotate(n=Count("pk")).filter(n__gt=1)
    assert not keys.exists(), "one company a name"
    assert set(Company.objects.values_list("pk", flat=True)) == {company_id for *_, company_id, _ in links} - {None}
    # A deal is with its customer's company, as a new one saved is.
    deals = list(Opportunity.objects.values_list("company_id", "customer__company_id"))
    assert any(company_id for company_id, _ in deals)
    assert all(company_id == customers_company for company_id, customers_company in deals)

    # The company list and page show them: its people and its open pipeline.
    found = api.get("/api/companies", {"search": "Unique Holdings"}).json()["data"]
    assert [(row["name"], row["people_count"]) for row in found] == [("Unique Holdings", 1)]
    unique = Customer.objects.get(name=UNIQUE_NAME)
    open_deals = unique.opportunities.filter(stage__in=Opportunity.OPEN_STAGES)
    assert open_deals.exists()
    assert Decimal(str(found[0]["open_pipeline_value"])) == sum(deal.value for deal in open_deals)
    # A customer saved later with a seeded company's name (in another case) joins that company.
    joined = Customer.objects.create(name="Joins Later", company_name="  UNIQUE   holdings ")
    assert (joined.company_id, joined.company_name) == (unique.company_id, "Unique Holdings")


@pytest.mark.django_db(transaction=True)
def test_seeding_again_links_to_the_companies_already_there():
    # A company of a name the generator uses, written in another case and spacing (an import, say).
    imported = Company.objects.create(name="unique  HOLDINGS", domain="unique.example")
    seed("--customers", "30")
    companies = Company.objects.count()
    links = _company_links()

    with pytest.raises(CommandError, match="already has customers"):
        seed("--customers", "30")
    assert (Company.objects.count(), _company_links()) == (companies, links)

    seed("--customers", "30", "--append")  # the same seed: the same company names again

    assert Company.objects.count() == companies
    assert Customer.objects.count() == 60
    appended = _company_links()[30:]
    assert [(text, company_id) for _pk, text, company_id, _name in appended] == [
        (text, company_id) for _pk, text, company_id, _name in links
    ]
    for unique in Customer.objects.filter(name=UNIQUE_NAME):
        assert (unique.company_id, unique.company_name) == (imported.pk, "unique HOLDINGS")
    assert Company.objects.named("Unique Holdings").count() == 1


@pytest.mark.django_db(transaction=True)
def test_a_seeded_company_has_the_columns_a_save_gives_it():
    seed("--customers", "30")

    assert Company.objects.exists()
    for company in Company.objects.all():
        twin = Company.objects.create(name=company.name)
        assert [twin.name, twin.name_key, twin.domain, twin.phone_e164, twin.phone_national] == [
            company.name,
            company.name_key,
            company.domain,
            company.phone_e164,
            company.phone_national,
        ]
        assert (company.website, company.tags, company.custom_fields) == ("", [], {})
        twin.delete()


@pytest.mark.django_db(transaction=True)
def test_two_runs_at_once_take_turns_the_second_after_the_first(monkeypatch):
    # The first run is held inside its transaction, its rows written; the second waits for it, then reads what it
    # wrote: its ids go on after the first's, and the company names the first made link to its companies. Without
    # waiting, both wrote the same ids, and the second failed at the first's with an IntegrityError's traceback.
    from tests.concurrency import Thread, waits

    first, release = _a_run_held_after_ten_customers(monkeypatch, "--customers", "10", "--append", "--seed", "9")
    try:
        second = Thread(lambda: seed("--customers", "10", "--append", "--seed", "9"))
        second.start()
        assert waits(second), "the second run never waited for the first"
    finally:
        release.set()
    first.answer()
    second.answer()

    assert sorted(Customer.objects.values_list("pk", flat=True)) == list(range(1, 31))
    keys = Company.objects.values("name_key").annotate(n=Count("pk"))
    assert not keys.filter(n__gt=1).exists()


@pytest.mark.django_db(transaction=True)
def test_a_customer_or_company_created_while_a_seed_appends_takes_an_id_after_the_seeds(monkeypatch, api):
    # The run is held inside its transaction, its first batch written. The API's creates take their ids off the
    # sequences, which the run moved past every id it may write before writing: they end at once, with ids after
    # the run's. Before, the sequences were moved only at the run's end: a create took an id the run had written
    # (uncommitted), waited for the run, and failed (a 500) once the run committed.
    from tests.concurrency import Thread, waits

    run, release = _a_run_held_after_ten_customers(monkeypatch, "--customers", "10", "--append", "--batch-size", "5")
    try:
        creates = Thread(
            lambda: [
                api.post("/api/customers", {"name": "Created meanwhile"}, format="json"),
                api.post("/api/companies", {"name": "Created Meanwhile Ltd"}, format="json"),
            ]
        )
        creates.start()
        assert not waits(creates), "a create waited for the run"
    finally:
        release.set()
    run.answer()
    customer, company = creates.answer()

    assert (customer.status_code, company.status_code) == (201, 201)
    seeded = Customer.objects.exclude(name="Created meanwhile")
    assert sorted(seeded.values_list("pk", flat=True)) == list(range(1, 21))
    assert customer.json()["data"]["id"] > 20
    seeded_companies = Company.objects.exclude(name="Created Meanwhile Ltd").values_list("pk", flat=True)
    assert company.json()["data"]["id"] > max(seeded_companies)
    assert (
        Interaction.objects.filter(customer__pk__gt=10).exists()
        and Opportunity.objects.filter(customer__pk__gt=10).exists()
    )
    # After the run, new rows still take free ids.
    assert Customer.objects.create(name="After the run").pk > customer.json()["data"]["id"]


def _a_run_held_after_ten_customers(monkeypatch, *args):
    """Ten customers seeded, then a run of ``seed(*args)`` in a thread of its own, stopped after its first batch,
    its rows written and its transaction open: (the run's thread, the event that lets it go on). The runs after it
    go through. PostgreSQL only (two connections at once; SQLite runs one writer at a time)."""
    from django.db import connection

    from operations.management.commands import seed_demo
    from tests.concurrency import Thread

    if connection.vendor != "postgresql":
        pytest.skip("two connections at once: PostgreSQL (SQLite runs one writer at a time)")
    seed("--customers", "10")
    written, release, runs = threading.Event(), threading.Event(), []

    def held_after_its_first_rows(*args, **kwargs):
        batches = generate(*args, **kwargs)
        runs.append(None)
        first = len(runs) == 1
        yield next(batches)
        if first:
            written.set()
            release.wait(60)
        yield from batches

    monkeypatch.setattr(seed_demo, "generate", held_after_its_first_rows)
    run = Thread(lambda: seed(*args))
    run.start()
    if not written.wait(60):
        release.set()
        raise AssertionError("the run never wrote")
    return run, release
