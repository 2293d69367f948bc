"""The admin's imports of records below a customer (interactions, deals, tasks) find the customers their rows name, by
id or email, once for the whole file (``CustomerChildResource.read_named_customers``), among those it holds before the
rows (``parents_named``), not once a row. Their queries grow with their rows by their writes and the serializer's
checks only, and they write what the plain path writes, each row looking its own customer up (``read_ahead = False``):
the twin test. The races of a customer deleted meanwhile are in tests/core/admin/test_save_race.py."""

import pytest
from django.db import transaction
from django.test import Client

from core.changesets import Changeset, ChangesetRow
from core.models import Event
from core.resources import CRMModelResource
from customers.models import Customer
from interactions.models import Interaction
from opportunities.models import Opportunity
from tasks.models import Task
from tests.customers.test_import_lookups import previewed_then_confirmed, queries_of
from tests.factories import CompanyFactory, CustomerFactory

pytestmark = pytest.mark.django_db

URL = "/admin/interactions/interaction/"
HEADER = ["customer", "interaction_type", "notes"]


def by_id(n, tag):
    return [CustomerFactory(name=f"Id {tag} {n}").pk, "call", f"By id {tag} {n}"]


def by_email(n, tag):
    customer = CustomerFactory(name=f"Email {tag} {n}", email=f"mail-{tag}-{n}@example.com")
    return [customer.email.upper(), "email", f"By email {tag} {n}"]


# A new interaction's row reads, however long the file, only what the API serializer reads to check it: that its
# customer is one the user sees. Looking its customer up by id or email was one more.
READS = 1
# And all its queries: its savepoints, the interaction it writes with its history entry, its event and, once
# confirmed, its changeset row, and that read.
AT_MOST_A_ROW = 9


@pytest.mark.parametrize("row", [by_id, by_email], ids=lambda row: row.__name__)
def test_the_queries_of_an_import_below_customers_grow_with_its_rows_by_their_writes_only(admin_client, row):
    few = queries_of(admin_client, [HEADER] + [row(n, "a") for n in range(10)], URL)
    many = queries_of(admin_client, [HEADER] + [row(n, "b") for n in range(40)], URL)

    previewed, previewed_reads, confirmed, confirmed_reads = (
        (after - before) / 30 for before, after in zip(few, many, strict=True)
    )
    assert previewed_reads <= READS and confirmed_reads <= READS
    assert previewed <= AT_MOST_A_ROW and confirmed <= AT_MOST_A_ROW


# -- the twin test ----------------------------------------------------------------------------------------------------


@pytest.fixture
def world(rep, other_rep):
    """The customers a file names: the rep's, by id or email (in ASCII or not), and another's."""
    acme = CompanyFactory(name="Acme", owner=rep)
    return {
        "ann": CustomerFactory(name="Ann", email="ann@example.com", owner=rep, company=acme),
        "oko": CustomerFactory(name="Öko", email="Info@ÖKO.example", owner=rep),
        "cy": CustomerFactory(name="Cy", owner=rep),
        "theirs": CustomerFactory(name="Theirs", email="theirs@example.com", owner=other_rep),
    }


def twin_files(world):
    """For each import, its URL and its file: rows naming customers by id and email, twice, unknown and another's."""
    ann, oko, cy, theirs = world["ann"], world["oko"], world["cy"], world["theirs"]
    return {
        "interactions": (
            "/admin/interactions/interaction/",
            [
                ["customer", "interaction_type", "notes"],
                [ann.pk, "call", "By id"],
                ["ANN@example.com", "email", "By email"],
                ["INFO@ÖKO.EXAMPLE", "meeting", "Beyond ASCII"],
                [f" {cy.pk} ", "note", "Spaces"],
                [cy.pk, "call", "Again"],
                [theirs.pk, "call", "Another's by id"],
                ["theirs@example.com", "call", "Another's by email"],
                ["nobody@example.com", "call", "Unknown email"],
                ["999999", "call", "Unknown id"],
                ["", "call", "None"],
            ],
        ),
        "deals": (
            "/admin/opportunities/opportunity/",
            [
                ["customer", "title", "value", "stage"],
                [ann.pk, "By id", "100", "negotiation"],
                ["ann@EXAMPLE.com", "By email", "200", "proposal"],
                ["info@öko.example", "Beyond ASCII", "", ""],
                [cy.pk, "Cy's", "5", "closed"],
                ["theirs@example.com", "Another's", "1", ""],
                ["nobody@example.com", "Unknown", "1", ""],
            ],
        ),
        "tasks": (
            "/admin/tasks/task/",
            [
                ["customer", "title", "priority"],
                [ann.pk, "By id", "high"],
                ["Ann@Example.com", "By email", "low"],
                [oko.email, "Beyond ASCII", ""],
                [theirs.pk, "Another's", ""],
                ["999999", "Unknown", ""],
            ],
        ),
    }


def outcome(client, url, rows):
    """What importing ``rows`` shows and writes, without what differs between two runs (ids, times, request ids):
    the preview's counts, rows and errors, then, its valid rows confirmed, the records, their history, the events and
    the changeset."""
    shown = previewed_then_confirmed(client, url, rows)
    customers = {customer.pk: customer.name for customer in Customer._base_manager.all()}
    records = {
        model._meta.label_lower: {pk: title for pk, title in model._base_manager.values_list("pk", field)}
        for model, field in ((Interaction, "notes"), (Opportunity, "title"), (Task, "title"))
    }

    def plain(model, values):
        if not isinstance(values, dict):
            return values
        kept = {}
        for key, value in values.items():
            if key in ("created_at", "updated_at", "closed_at", "changed_at", "occurred_at", "due_at"):
                continue
            if key == "id" and model not in records:
                continue  # a deal's stage change: a number of its own sequence (not rolled back on PostgreSQL)
            named = {
                "customer_id": customers,
                "opportunity_id": records["opportunities.opportunity"],
                "id": records.get(model),
            }.get(key)
            if named is not None:
                value = {k: named.get(v, v) for k, v in value.items()} if isinstance(value, dict) else named.get(value)
            kept[key] = value
        return kept

    written = []
    for model, fields in (
        (Interaction, ("notes", "interaction_type", "created_by_id")),
        (Opportunity, ("title", "value", "stage", "probability", "company_id", "created_by_id")),
        (Task, ("title", "priority", "assignee_id", "created_by_id")),
    ):
        label = model._meta.label_lower
        written.append(
            sorted(
                ((customers[customer], *rest) for customer, *rest in model.objects.values_list("customer", *fields)),
                key=repr,
            )
        )
        written.append(
            [
                (kind, customers.get(customer), *rest)
                for kind, customer, *rest in model.history.order_by("history_id").values_list(
                    "history_type", "customer", *fields, "history_user_id"
                )
            ]
        )
        written.append(
            [
                (
                    e.type,
                    records[label].get(e.object_id),
                    e.owner_id,
                    e.actor_id,
                    plain(label, e.changes),
                    plain(label, e.data),
                )
                for e in Event.objects.filter(model=label).order_by("id")
            ]
        )
    written.append(list(Changeset.objects.order_by("id").values_list("kind", "label", "source", "user_id")))
    written.append(
        [
            (
                r.model,
                records.get(r.model, {}).get(r.object_id),
                r.op,
                plain(r.model, r.before),
                plain(r.model, r.after),
            )
            for r in ChangesetRow.objects.order_by("changeset_id", "seq")
        ]
    )
    return shown, written


def run(client, url, rows, *, read_ahead, monkeypatch):
    """``outcome`` of the import with its customers looked up once for the file, or by each row; rolled back."""
    monkeypatch.setattr(CRMModelResource, "read_ahead", read_ahead)
    with transaction.atomic():
        seen = outcome(client, url, rows)
        transaction.set_rollback(True)
    return seen


@pytest.mark.parametrize("kind", ["interactions", "deals", "tasks"])
@pytest.mark.parametrize("who", ["manager", "rep"])
def test_an_import_below_customers_writes_what_it_wrote_when_each_row_looked_its_customer_up(
    world, rep, manager, who, kind, monkeypatch
):
    client = Client()
    client.force_login(manager if who == "manager" else rep)
    url, rows = twin_files(world)[kind]

    read_ahead = run(client, url, rows, read_ahead=True, monkeypatch=monkeypatch)
    row_by_row = run(client, url, rows, read_ahead=False, monkeypatch=monkeypatch)

    assert read_ahead == row_by_row
    # The file's cases happened: rows imported by id and email, rows refused for an unknown customer (and, for a
    # rep, for another's).
    (totals, _previewed, refused), _written = read_ahead
    assert totals["new"] >= 3 and totals["error"] >= 1
    if who == "rep":
        assert totals["error"] >= 2
    assert refused
