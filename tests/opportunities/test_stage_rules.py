"""The stage rules (default probability, ``closed_at``) come from ``opportunity_set_stage``, whatever
writes the change: the API, the admin's form, its list, the customer page's inline or an import."""

import ast
import datetime
from pathlib import Path

import pytest
from django.conf import settings
from django.utils import timezone

from opportunities.models import Opportunity, StageChange
from opportunities.services import opportunity_set_stage, stage_fields
from tests.core.admin.helpers import change_form_data, form_data, import_rows
from tests.factories import OpportunityFactory

pytestmark = pytest.mark.django_db

Stage = Opportunity.Stage
ADMIN = "/admin/opportunities/opportunity/"


def by_api(api, admin_client, opportunity, stage, probability):
    body = {"stage": stage} if probability is None else {"stage": stage, "probability": probability}
    response = api.put(f"/api/opportunities/{opportunity.pk}", body, format="json")
    assert response.status_code == 200, response.content


def shown_then_changed(client, url, prefix, stage, probability):
    """Post ``url``'s change page as shown, with the stage (and a chosen probability) of ``prefix`` changed."""
    data = change_form_data(client.get(url))
    data[f"{prefix}stage"] = stage
    if probability is not None:
        data[f"{prefix}probability"] = probability
    response = client.post(url, data)
    assert response.status_code == 302, response.content.decode()[:2000]


def by_admin_form(api, admin_client, opportunity, stage, probability):
    shown_then_changed(admin_client, f"{ADMIN}{opportunity.pk}/change/", "", stage, probability)


def by_customer_inline(api, admin_client, opportunity, stage, probability):
    url = f"/admin/customers/customer/{opportunity.customer_id}/change/"
    shown_then_changed(admin_client, url, "opportunities-0-", stage, probability)


def by_admin_list(api, admin_client, opportunity, stage, probability):
    formset = admin_client.get(ADMIN).context["cl"].formset
    data = {**form_data(formset.management_form), **form_data(formset.forms[0]), "_save": "Save"}
    data["form-0-stage"] = stage
    if probability is not None:
        data["form-0-probability"] = probability
    response = admin_client.post(ADMIN, data)
    assert response.status_code == 302, response.content.decode()[:2000]


def by_import(api, admin_client, opportunity, stage, probability):
    columns = ["id", "customer", "title", "stage"]
    row = [opportunity.pk, opportunity.customer_id, opportunity.title, stage]
    if probability is not None:
        columns.append("probability")
        row.append(probability)
    import_rows(admin_client, ADMIN, [columns, row])


WRITERS = [by_api, by_admin_form, by_admin_list, by_customer_inline, by_import]


@pytest.mark.parametrize("write", WRITERS, ids=lambda writer: writer.__name__)
class TestEveryWriterFollowsTheStageRules:
    def change(self, api, admin_client, write, start, stage, probability=None):
        opportunity = OpportunityFactory(stage=start, probability=15)
        opportunity = Opportunity.objects.select_related("customer").get(pk=opportunity.pk)
        write(api, admin_client, opportunity, stage, probability)
        return Opportunity.objects.get(pk=opportunity.pk)

    def test_a_move_without_probability_takes_the_stage_default(self, api, admin_client, write):
        moved = self.change(api, admin_client, write, Stage.LEAD, Stage.NEGOTIATION)
        assert (moved.stage, moved.probability, moved.closed_at) == (Stage.NEGOTIATION, 70, None)

    def test_a_chosen_probability_is_kept(self, api, admin_client, write):
        moved = self.change(api, admin_client, write, Stage.LEAD, Stage.PROPOSAL, probability=55)
        assert (moved.stage, moved.probability) == (Stage.PROPOSAL, 55)

    def test_closing_stamps_closed_at_and_logs_the_step(self, api, admin_client, write):
        before = timezone.now()
        won = self.change(api, admin_client, write, Stage.NEGOTIATION, Stage.CLOSED)
        assert won.probability == 100
        assert before <= won.closed_at <= timezone.now()
        assert StageChange.objects.filter(opportunity=won, from_stage=Stage.NEGOTIATION, to_stage=Stage.CLOSED)

    def test_reopening_clears_closed_at(self, api, admin_client, write):
        reopened = self.change(api, admin_client, write, Stage.LOST, Stage.PROPOSAL)
        assert (reopened.probability, reopened.closed_at) == (40, None)

    def test_staying_at_the_stage_keeps_the_probability(self, api, admin_client, write):
        kept = self.change(api, admin_client, write, Stage.LEAD, Stage.LEAD)
        assert kept.probability == 15


class TestTheRules:
    def test_a_new_opportunity_takes_the_stage_default_and_closes_at_the_given_time(self):
        at = timezone.make_aware(datetime.datetime(2024, 5, 1, 12))
        opportunity = Opportunity()
        opportunity_set_stage(opportunity=opportunity, stage=Stage.LOST, at=at)
        assert (opportunity.stage, opportunity.probability, opportunity.closed_at) == (Stage.LOST, 0, at)

    def test_saving_after_the_service_keeps_its_closing_time(self):
        at = timezone.make_aware(datetime.datetime(2024, 5, 1, 12))
        opportunity = Opportunity.objects.get(pk=OpportunityFactory().pk)
        opportunity_set_stage(opportunity=opportunity, stage=Stage.CLOSED, at=at)
        opportunity.save()
        assert Opportunity.objects.get(pk=opportunity.pk).closed_at == at

    def test_a_plain_save_follows_the_same_rules(self):
        opportunity = Opportunity.objects.get(pk=OpportunityFactory(stage=Stage.CLOSED).pk)
        closed_at = opportunity.closed_at
        opportunity.title = "Renamed"
        opportunity.save()
        assert Opportunity.objects.get(pk=opportunity.pk).closed_at == closed_at

    @pytest.mark.parametrize("stage", list(Stage))
    def test_rows_written_without_the_orm_get_what_the_service_gives(self, stage):
        at = timezone.make_aware(datetime.datetime(2024, 5, 1, 12))
        opportunity = Opportunity()
        opportunity_set_stage(opportunity=opportunity, stage=stage, at=at)
        assert stage_fields(stage=stage, moved=True, at=at) == (opportunity.probability, opportunity.closed_at)


def test_the_stage_defaults_are_read_by_the_service_alone():
    """Anything else that picks a probability or a closing time for a stage goes through the service."""
    root = Path(settings.BASE_DIR)
    readers = set()
    for package in ("core", "customers", "interactions", "opportunities", "operations", "crm_site"):
        for path in (root / package).rglob("*.py"):
            tree = ast.parse(path.read_text(encoding="utf-8"))
            names = {node.attr for node in ast.walk(tree) if isinstance(node, ast.Attribute)}
            if "DEFAULT_PROBABILITY" in names:
                readers.add(str(path.relative_to(root)))
    assert readers == {"opportunities/services.py"}
