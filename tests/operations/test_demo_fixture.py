"""``manage.py loaddata demo`` on an empty database gives data the reports and timelines can show."""

import json
from io import StringIO

import pytest
from django.core.management import CommandError, call_command

from companies.models import Company
from core.models import Event
from customers.models import Customer
from interactions.models import Interaction
from opportunities.models import Opportunity, StageChange
from opportunities.reports import pipeline_summary
from tests.factories import CustomerFactory

pytestmark = pytest.mark.django_db


@pytest.fixture
def demo():
    assert not Customer.objects.exists()
    call_command("loaddata", "demo", stdout=StringIO())


def test_loads_on_an_empty_database(demo):
    assert (Customer.objects.count(), Interaction.objects.count(), Opportunity.objects.count()) == (10, 30, 12)
    assert Customer.objects.get(pk=1).name == "张三"


def test_closed_at_matches_the_stage(demo):
    for opportunity in Opportunity.objects.all():
        assert (opportunity.closed_at is None) == opportunity.is_open
        if not opportunity.is_open:
            assert opportunity.closed_at == opportunity.updated_at


def test_every_opportunity_has_its_stage_history(demo):
    for opportunity in Opportunity.objects.all():
        changes = list(opportunity.stage_changes.order_by("changed_at", "id"))
        assert changes[0].from_stage is None
        assert changes[0].changed_at == opportunity.created_at
        assert changes[-1].to_stage == opportunity.stage
        for earlier, later in zip(changes, changes[1:], strict=False):
            assert later.from_stage == earlier.to_stage
            assert later.changed_at >= earlier.changed_at


def test_interactions_happened_when_they_were_logged(demo):
    for interaction in Interaction.objects.all():
        assert interaction.occurred_at == interaction.created_at


def test_reports_and_timeline_have_content(demo, api):
    summary = pipeline_summary()
    assert summary["won"]["count"] == 2 and summary["lost"]["count"] == 2 and summary["open"]["count"] == 8
    assert Opportunity.objects.filter(stage__in=Opportunity.OPEN_STAGES, expected_close_date__isnull=True).exists()
    assert StageChange.objects.count() == 29
    timeline = api.get("/api/customers/1/timeline").json()
    assert (
        timeline["meta"]["count"]
        == Interaction.objects.filter(customer=1).count()
        + StageChange.objects.filter(opportunity__customer=1).count()
        + Customer.history.filter(id=1).count()
    )


def test_init_demo_loads_it_once(db):
    out = StringIO()
    call_command("init_demo", stdout=out)
    call_command("init_demo", stdout=out)
    assert Customer.objects.count() == 24  # the fixture's 10 and the people init_demo adds to their companies
    assert StageChange.objects.count() == 29


@pytest.mark.parametrize("model", [Customer, Interaction, Opportunity])
def test_every_loaded_record_has_one_created_entry_as_loaded(demo, model):
    history = model.history.model
    assert history.objects.count() == model.objects.count()
    tracked = [field.attname for field in history.tracked_fields]
    for record in model.objects.all():
        entry = record.history.get()
        assert (entry.history_type, entry.history_user, entry.history_date) == ("+", None, record.created_at)
        assert [getattr(entry, name) for name in tracked] == [getattr(record, name) for name in tracked]


@pytest.mark.parametrize(
    ("resource", "change"),
    [
        ("customers", {"phone": "555"}),
        ("interactions", {"notes": "Rewritten"}),
        ("opportunities", {"title": "Retitled"}),
    ],
)
def test_a_change_after_loading_shows_only_the_changed_field(demo, api, resource, change):
    assert api.patch(f"/api/{resource}/1", change, format="json").status_code == 200

    changed, created = api.get(f"/api/{resource}/1/history").json()["data"]

    assert (changed["history_type"], created["history_type"]) == ("changed", "created")
    [(field, new)] = change.items()
    assert [(c["field"], c["new"]) for c in changed["changes"]] == [(field, new)]


def test_loading_again_is_refused_and_changes_nothing(demo):
    with pytest.raises(CommandError) as refused:
        call_command("loaddata", "demo", stdout=StringIO())

    message = str(refused.value)
    assert "\n" not in message and "--replace" in message and "Nothing was loaded" in message
    # Its records with history: 10 companies, 10 customers, 30 interactions, 12 opportunities.
    assert "would overwrite 62 record(s) already in the database" in message
    assert "10 customers.customer" in message and "12 opportunities.opportunity" in message
    for model in (Customer, Interaction, Opportunity):
        assert model.history.filter(history_type="+").count() == model.objects.count()
        assert model.history.count() == model.objects.count()


def test_replacing_records_with_the_values_they_have_adds_no_entry(demo):
    events = Event.objects.count()

    call_command("loaddata", "demo", "--replace", stdout=StringIO())

    for model in (Customer, Interaction, Opportunity):
        assert model.history.count() == model.objects.count()
    assert Event.objects.count() == events


def _state_of_the_demo():
    customer = Customer.objects.get(pk=1)
    deal = Opportunity.objects.get(pk=1)
    return {
        "customer": (customer.owner_id, customer.phone_e164, customer.created_at),
        "deal": (deal.stage, deal.expected_close_date, deal.updated_at),
        "rep's customers": Customer.objects.filter(owner__username="rep").count(),
        "history": [model.history.count() for model in (Company, Customer, Interaction, Opportunity)],
        "events": Event.objects.count(),
    }


def test_loading_over_the_demo_that_init_demo_brought_to_today_is_refused(db):
    call_command("init_demo", stdout=StringIO())
    before = _state_of_the_demo()
    assert before["customer"][0] is not None and before["customer"][1] == "+8613800138000"

    with pytest.raises(CommandError, match="Nothing was loaded"):
        call_command("loaddata", "demo", stdout=StringIO())

    assert _state_of_the_demo() == before


def test_replace_records_each_change_in_the_history_and_the_event_log(db):
    call_command("init_demo", stdout=StringIO())
    owner = Customer.objects.get(pk=1).owner_id
    stage = Opportunity.objects.get(pk=1).stage
    untouched = Customer.objects.filter(pk__gt=10).count()
    entries = Customer.history.count()

    call_command("loaddata", "demo", "--replace", stdout=StringIO())

    customer = Customer.objects.get(pk=1)
    changed, created = customer.history.order_by("-history_date", "-history_id")[:2]
    assert (changed.history_type, created.history_type) == ("~", "+")
    assert changed.history_change_reason == "Replaced from a fixture"
    assert (created.owner_id, changed.owner_id, customer.owner_id) == (owner, None, None)
    event = Event.objects.filter(model="customers.customer", object_id=1).latest("id")
    assert event.type == "customer.updated"
    assert event.changes["owner_id"] == {"old": owner, "new": None}
    deal = Opportunity.objects.get(pk=1)
    latest = deal.history.order_by("-history_date", "-history_id").first()
    assert (latest.history_type, latest.stage) == ("~", deal.stage)
    event = Event.objects.filter(model="opportunities.opportunity", object_id=1).latest("id")
    assert event.type == "opportunity.updated" and event.changes["expected_close_date"]["new"] == str(
        deal.expected_close_date
    )
    assert stage == deal.stage or event.changes["stage"] == {"old": stage, "new": deal.stage}
    # One entry per record the fixture replaced; the people init_demo added are as they were.
    assert Customer.history.count() == entries + 10
    assert Customer.objects.filter(pk__gt=10).count() == untouched


def test_a_fixture_overwriting_history_entries_is_refused(db, tmp_path):
    customer = CustomerFactory(name="Here before")
    entry = customer.history.get()
    fixture = tmp_path / "history.json"
    fixture.write_text(
        json.dumps(
            [
                {
                    "model": "customers.historicalcustomer",
                    "pk": entry.history_id,
                    "fields": {
                        "id": 999,
                        "name": "Someone else",
                        "status": "active",
                        "created_at": "2025-01-01T00:00:00Z",
                        "history_date": "2025-01-01T00:00:00Z",
                        "history_type": "+",
                    },
                }
            ]
        )
    )

    with pytest.raises(CommandError, match="1 customers.historicalcustomer"):
        call_command("loaddata", str(fixture), stdout=StringIO())

    assert list(Customer.history.values_list("history_id", "id", "name")) == [
        (entry.history_id, customer.pk, "Here before")
    ]


def test_a_fixture_carrying_its_history_gets_no_second_entry(db, tmp_path):
    fixture = tmp_path / "with_history.json"
    fixture.write_text(
        json.dumps(
            [
                {
                    "model": "customers.customer",
                    "pk": 7,
                    "fields": {
                        "name": "Kept",
                        "status": "active",
                        "created_at": "2025-01-01T00:00:00Z",
                        "updated_at": "2025-01-01T00:00:00Z",
                    },
                },
                {
                    "model": "customers.historicalcustomer",
                    "pk": 70,
                    "fields": {
                        "id": 7,
                        "name": "Kept",
                        "status": "active",
                        "created_at": "2025-01-01T00:00:00Z",
                        "history_date": "2025-01-01T00:00:00Z",
                        "history_type": "+",
                    },
                },
            ]
        )
    )

    call_command("loaddata", str(fixture), stdout=StringIO())

    assert list(Customer.history.values_list("history_id", "id")) == [(70, 7)]


def test_init_demo_records_the_creation_of_what_it_loads(db):
    call_command("init_demo", stdout=StringIO())

    assert Opportunity.history.filter(history_type="+").count() == Opportunity.objects.count() == 12


def test_loaddata_help_says_loaded_records_get_history(capsys):
    with pytest.raises(SystemExit):
        call_command("loaddata", "--help")
    assert "'created' entry" in " ".join(capsys.readouterr().out.split())


# The columns each model's save computes from its other fields (``set_derived_fields``).
DERIVED = {
    Customer: ("phone_e164", "phone_national"),
    Company: ("name", "name_key", "domain", "phone_e164", "phone_national"),
}


def _derived(record):
    return {name: getattr(record, name) for name in DERIVED[type(record)]}


@pytest.mark.parametrize("model", [Customer, Company])
def test_loaded_rows_hold_the_columns_a_save_computes(demo, model):
    # Computed as loaded, in the region of the deployment; the twin is a save of the same record.
    for record in model.objects.order_by("pk"):
        loaded = _derived(record)
        record.save()
        record.refresh_from_db()
        assert loaded == _derived(record), record.pk


def test_stale_derived_values_of_a_fixture_are_computed_again(db, tmp_path, settings):
    settings.CRM_PHONE_REGION = "CN"
    fixture = tmp_path / "stale.json"
    fields = {"created_at": "2025-01-01T00:00:00Z", "updated_at": "2025-01-01T00:00:00Z"}
    fixture.write_text(
        json.dumps(
            [
                {
                    "model": "companies.company",
                    "pk": 7,
                    "fields": {"name": "Acme  Ltd", "name_key": "stale", "phone": "010 6552 9988", **fields},
                },
                {
                    "model": "customers.customer",
                    "pk": 7,
                    "fields": {"name": "Ann", "phone": "138 0013 8000", "phone_e164": "+15550000000", **fields},
                },
            ]
        )
    )

    call_command("loaddata", str(fixture), stdout=StringIO())

    company = Company.objects.get(pk=7)
    assert (company.name, company.name_key, company.phone_e164) == ("Acme Ltd", "acme ltd", "+861065529988")
    assert Customer.objects.get(pk=7).phone_e164 == "+8613800138000"
    # The "created" entry holds the record as stored.
    assert Company.history.get(id=7).name == "Acme Ltd"


def test_loaded_customers_are_found_by_their_number_at_once(demo, api):
    assert Customer.objects.get(pk=1).phone_e164 == "+8613800138000"
    assert Customer.objects.get(pk=1).phone_national == "13800138000"
    found = api.get("/api/customers", {"search": "+86 138-0013-8000"}).json()["data"]
    assert [row["name"] for row in found] == ["张三"]


def test_replaced_records_get_their_derived_columns_again(db):
    call_command("init_demo", stdout=StringIO())

    call_command("loaddata", "demo", "--replace", stdout=StringIO())

    assert Customer.objects.get(pk=1).phone_e164 == "+8613800138000"
