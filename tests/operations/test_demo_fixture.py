"""``manage.py loaddata demo`` on an empty database gives data the reports and timelines can show."""

import json
from io import StringIO

import pytest
from django.core.management import call_command

from customers.models import Customer
from interactions.models import Interaction
from opportunities.models import Opportunity, StageChange
from opportunities.reports import pipeline_summary

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


def test_loading_again_adds_no_second_entry(demo):
    call_command("loaddata", "demo", stdout=StringIO())

    for model in (Customer, Interaction, Opportunity):
        assert model.history.filter(history_type="+").count() == model.objects.count()
        assert model.history.count() == model.objects.count()


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
