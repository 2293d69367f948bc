"""``manage.py loaddata demo`` on an empty database gives data the reports and timelines can show."""

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
        == Interaction.objects.filter(customer=1).count() + StageChange.objects.filter(opportunity__customer=1).count()
    )


def test_init_demo_loads_it_once(db):
    out = StringIO()
    call_command("init_demo", stdout=out)
    call_command("init_demo", stdout=out)
    assert Customer.objects.count() == 10
    assert StageChange.objects.count() == 29
