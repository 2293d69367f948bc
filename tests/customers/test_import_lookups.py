"""The admin's import of customers looks the records its rows name up once for the whole file, not once a row: the
customers by id, external id or email (``CRMModelResource.lock_named_records``), locked as a row alone locks its own,
and the companies by name (``companies.services.CompaniesByName``), new names locked as ``company_for_name`` locks
one. Its queries grow with its rows by their writes only, and it writes what the plain path writes, each row looking
its own records up (``read_ahead = False``): the twin test. The races are in tests/core/admin/test_save_race.py."""

import pytest
from django.db import connection, transaction
from django.test import Client
from django.test.utils import CaptureQueriesContext

from companies.models import Company
from core.changesets import Changeset, ChangesetRow
from core.models import Event, Tag
from core.resources import CRMModelResource
from customers.models import Customer
from tests.core.admin.helpers import confirm, staff, upload
from tests.factories import CompanyFactory, CustomerFactory

URL = "/admin/customers/customer/"
HEADER = ["id", "name", "company", "email", "external_id", "status"]

pytestmark = pytest.mark.django_db


# Rows of each kind an import has, the records they name made for them.
def new_at_new_company(n, tag):
    return ["", f"New {tag} {n}", f"New Co {tag} {n}", f"new-{tag}-{n}@example.com", "", "lead"]


def new_at_known_company(n, tag):
    CompanyFactory(name=f"Known {tag} {n}")
    return ["", f"Joins {tag} {n}", f"  KNOWN {tag} {n} ", f"joins-{tag}-{n}@example.com", "", "active"]


def update_by_email(n, tag):
    customer = CustomerFactory(name=f"Old {tag} {n}", email=f"old-{tag}-{n}@example.com")
    return ["", f"By email {tag} {n}", "", customer.email.upper(), "", "inactive"]


def update_by_external_id(n, tag):
    customer = CustomerFactory(name=f"Old {tag} {n}", external_id=f"ext-{tag}-{n}")
    return ["", f"By external id {tag} {n}", "", "", customer.external_id, "prospect"]


def update_by_id(n, tag):
    customer = CustomerFactory(name=f"Old {tag} {n}")
    return [customer.pk, f"By id {tag} {n}", "", "", "", "lead"]


# What a row of each kind reads besides what it writes, however long the file: the API serializer's checks that no
# other customer has its email or its external id, and the last history entry of a customer it changes (a change
# that changes nothing is not recorded). Looking its customer or its company up would be more (before: 2 to 6).
READS = {
    new_at_new_company: 1,
    new_at_known_company: 1,
    update_by_email: 2,
    update_by_external_id: 2,
    update_by_id: 1,
}
# And all its queries: its savepoints, the rows it writes (a company it makes and the customer, each with its
# history entry, its event and, once confirmed, its changeset row) and those reads.
AT_MOST_A_ROW = 13


def queries_of(client, rows, url=URL):
    """(all, reads) of the preview of ``rows`` on the import screen of ``url``, and the same of its confirmation: the
    numbers of queries."""
    with CaptureQueriesContext(connection) as previewed:
        preview = upload(client, url, rows)
    assert preview.context["totals"]["error"] == 0
    with CaptureQueriesContext(connection) as confirmed:
        assert confirm(client, url, preview).status_code == 302

    def counts(queries):
        return len(queries), sum(1 for query in queries.captured_queries if query["sql"].startswith("SELECT"))

    return (*counts(previewed), *counts(confirmed))


@pytest.mark.parametrize("row", READS, ids=lambda row: row.__name__)
def test_the_queries_of_an_import_grow_with_its_rows_by_their_writes_only(admin_client, row):
    few = queries_of(admin_client, [HEADER] + [row(n, "a") for n in range(10)])
    many = queries_of(admin_client, [HEADER] + [row(n, "b") for n in range(40)])

    previewed, previewed_reads, confirmed, confirmed_reads = (
        (after - before) / 30 for before, after in zip(few, many, strict=True)
    )
    assert previewed_reads <= READS[row] and confirmed_reads <= READS[row]
    assert previewed <= AT_MOST_A_ROW and confirmed <= AT_MOST_A_ROW


# -- the twin test ----------------------------------------------------------------------------------------------------


@pytest.fixture
def world(rep):
    """The records a file names: the rep's and another's customers and companies."""
    acme = CompanyFactory(name="Acme", owner=rep)
    CompanyFactory(name="Hidden Co")  # another's: a rep naming it makes their own
    return {
        "by email": CustomerFactory(name="Ann", email="ann@example.com", owner=rep, company=acme),
        "by email beyond ASCII": CustomerFactory(name="Öko", email="Info@ÖKO.example", owner=rep),
        "by external id": CustomerFactory(name="Bob", external_id="crm-7", owner=rep, tags=["vip"]),
        "by id": CustomerFactory(name="Cy", owner=rep, status=Customer.Status.LEAD),
        "unchanged": CustomerFactory(name="Di", email="di@example.com", owner=rep, status=Customer.Status.ACTIVE),
    }


def twin_file(world):
    return [
        ["id", "name", "company", "email", "external_id", "status", "tags"],
        ["", "New", "Nova", "new@example.com", "", "lead", "vip, new"],
        ["", "Also new", "  NOVA ", "", "", "", ""],
        ["", "Joins", " acme ", "joins@example.com", "", "", ""],
        ["", "Hides", "hidden co", "", "", "", ""],
        ["", "Ann 2", "Nova", "ANN@example.com", "", "inactive", ""],
        ["", "Öko 2", "", "INFO@ÖKO.EXAMPLE", "", "", ""],
        ["", "Bob 2", "Acme", "", "crm-7", "prospect", "vip, gold"],
        [world["by id"].pk, "Cy 2", "", "", "", "", ""],
        ["", "Di", "", "di@example.com", "", "active", ""],
        ["", "Wrong", "", "wrong@example.com", "", "sleeping", ""],
        ["", "Twice", "", "new@EXAMPLE.com", "", "", ""],
    ]


def previewed_then_confirmed(client, url, rows):
    """The preview of ``rows`` on the import screen of ``url`` (its counts, valid rows and errors); its valid rows are
    then confirmed."""
    preview = upload(client, url, rows)
    shown = (
        preview.context["totals"],
        [(row.import_type, row.object_repr) for row in preview.context["result"].valid_rows()],
        [(line, found) for line, found, _cells in preview.context["error_page"].object_list],
    )
    form = preview.context["skip_form"]
    answer = client.post(
        f"{url}process_import/", {**form.initial, "skip_invalid": "1", "rejected": preview.context["rejected"]}
    )
    assert answer.status_code == 302
    return shown


def outcome(client, rows):
    """What importing ``rows`` shows and writes, without what differs between two runs (ids, times, request ids):
    the preview's counts, rows and errors, then, its valid rows confirmed, the companies and customers, their
    history, the events and the changeset."""
    shown = previewed_then_confirmed(client, URL, rows)
    names = {
        "customers.customer": {customer.pk: customer.name for customer in Customer._base_manager.all()},
        "companies.company": {company.pk: company.name for company in Company._base_manager.all()},
        "core.tag": {tag.pk: tag.name for tag in Tag.objects.all()},
    }

    def plain(model, values):
        if not isinstance(values, dict):
            return values
        kept = {}
        for key, value in values.items():
            if key in ("created_at", "updated_at"):
                continue
            named = names.get(model if key == "id" else "companies.company" if key == "company_id" else None)
            if named is not None:
                value = {k: named.get(v, v) for k, v in value.items()} if isinstance(value, dict) else named.get(value)
            kept[key] = value
        return kept

    def rows(queryset, *fields):
        return [
            tuple(
                names["companies.company"].get(value) if field == "company_id" else value
                for field, value in zip(fields, row, strict=True)
            )
            for row in queryset.values_list(*fields)
        ]

    customer = ("name", "email", "company_id", "company_name", "status", "tags", "external_id", "owner_id")
    written = (
        sorted(rows(Company.objects.all(), "name", "owner_id", "created_by_id", "tags"), key=repr),
        sorted(rows(Customer.objects.all(), *customer, "created_by_id"), key=repr),
        rows(Customer.history.order_by("history_id"), "history_type", *customer, "history_user_id"),
        rows(Company.history.order_by("history_id"), "history_type", "name", "owner_id", "history_user_id"),
        [
            (
                e.type,
                names[e.model].get(e.object_id),
                e.owner_id,
                e.actor_id,
                plain(e.model, e.changes),
                plain(e.model, e.data),
            )
            for e in Event.objects.order_by("id")
        ],
        list(Changeset.objects.order_by("id").values_list("kind", "label", "source", "user_id")),
        [
            (r.model, names[r.model].get(r.object_id), r.op, plain(r.model, r.before), plain(r.model, r.after), r.name)
            for r in ChangesetRow.objects.order_by("changeset_id", "seq")
        ],
    )
    return shown, written


def run(client, rows, *, read_ahead, monkeypatch):
    """``outcome`` of the import with its records looked up once for the file, or by each row; rolled back."""
    monkeypatch.setattr(CRMModelResource, "read_ahead", read_ahead)
    with transaction.atomic():
        seen = outcome(client, rows)
        transaction.set_rollback(True)
    return seen


@pytest.mark.parametrize("who", ["Sales manager", "Sales rep"])
def test_an_import_writes_what_it_wrote_when_each_row_looked_its_records_up(world, rep, who, monkeypatch):
    client = staff("boss", who)[1] if who == "Sales manager" else logged_in(rep)
    rows = twin_file(world)

    read_ahead = run(client, rows, read_ahead=True, monkeypatch=monkeypatch)
    row_by_row = run(client, rows, read_ahead=False, monkeypatch=monkeypatch)

    assert read_ahead == row_by_row
    # The file's cases happened: new customers at a company new to the file and at one of the user's, updates by
    # email (ASCII or not), external id and id, an unchanged row, rows refused.
    (totals, previewed, refused), (companies, customers, *_) = read_ahead
    assert totals == {"new": 4, "update": 4, "skip": 1, "error": 2}
    assert [line for line, _found in refused] == [11, 12]
    nova = sorted(name for name, _email, company, *_ in customers if company == "Nova")
    assert nova == ["Also new", "Ann 2", "New"]
    # A rep's "hidden co" is a company of their own; a manager's is the one there.
    assert sorted(name for name, *_ in companies if name.lower() == "hidden co") == (
        ["Hidden Co", "hidden co"] if who == "Sales rep" else ["Hidden Co"]
    )


def logged_in(user):
    client = Client()
    client.force_login(user)
    return client
