"""Why a deal was lost: ``lost_reason``, given to a lost deal only and cleared when it is reopened or won
(``opportunities.services``), through the API, the admin, imports, history and events. The pipeline report's
lost deals by reason: ``test_pipeline_report.py``."""

import pytest
from django.urls import reverse

from core.changesets import Changeset
from core.models import Event
from opportunities.models import Opportunity
from opportunities.services import move_to_stage
from tests.core.admin.helpers import change_form_data, form_data, import_rows, preview_then_confirm, upload
from tests.core.test_changesets import snapshot
from tests.factories import CustomerFactory, OpportunityFactory

pytestmark = pytest.mark.django_db

Stage = Opportunity.Stage
URL = "/api/opportunities"
ADMIN = "/admin/opportunities/opportunity/"
REPORT = "/api/reports/pipeline"
REFUSAL = "Only a lost deal has a lost reason: move it to “Lost”, or leave the reason empty."


def lost(reason="", **fields):
    return OpportunityFactory(stage=Stage.LOST, lost_reason=reason, **fields)


def refused(response):
    assert response.status_code == 400, response.content
    body = response.json()
    assert body["success"] is False
    return body["error"]["fields"]


class TestTheAPI:
    def test_a_deal_created_lost_takes_its_reason(self, api):
        customer = CustomerFactory()
        body = {"customer_id": customer.pk, "title": "Lost to a rival", "stage": "lost", "lost_reason": "  Price  "}
        response = api.post(URL, body, format="json")
        assert response.status_code == 201, response.content
        data = response.json()["data"]
        assert (data["stage"], data["lost_reason"]) == ("lost", "Price")
        assert Opportunity.objects.get(pk=data["id"]).lost_reason == "Price"

    def test_the_list_filters_by_reason_as_the_report_names_it(self, api):
        lost("Price", title="A"), lost("Price", title="B"), lost("Timing", title="C"), OpportunityFactory(title="Open")

        def titles(reason):
            response = api.get(URL, {"lost_reason": reason})
            assert response.status_code == 200, response.content
            return sorted(deal["title"] for deal in response.json()["data"])

        [group] = [g for g in api.get(REPORT).json()["data"]["lost_reasons"] if g["count"] == 2]
        assert titles(group["reason"]) == ["A", "B"]
        assert titles(" Timing ") == ["C"]
        assert titles("price") == []
        for bad in ("x" * 201, "a\x00b"):
            assert api.get(URL, {"lost_reason": bad}).status_code == 400

    @pytest.mark.parametrize("stage", list(Stage))
    def test_a_client_that_never_sends_the_field_works_as_before(self, api, stage):
        customer = CustomerFactory()
        response = api.post(URL, {"customer_id": customer.pk, "title": "x", "stage": stage}, format="json")
        assert response.status_code == 201
        assert response.json()["data"]["lost_reason"] == ""
        deal = Opportunity.objects.get()
        response = api.put(f"{URL}/{deal.pk}", {"stage": "lost"}, format="json")
        assert response.status_code == 200
        assert (response.json()["data"]["stage"], response.json()["data"]["lost_reason"]) == ("lost", "")

    @pytest.mark.parametrize("stage", [None, *Opportunity.OPEN_STAGES, Stage.CLOSED])
    def test_a_reason_for_a_deal_created_other_than_lost_is_refused(self, api, stage):
        body = {"customer_id": CustomerFactory().pk, "title": "x", "lost_reason": "Price"}
        if stage is not None:
            body["stage"] = stage
        response = api.post(URL, body, format="json")
        assert refused(response) == {"lost_reason": [REFUSAL]}
        assert response.json()["error"]["message"] == f"Invalid input: lost_reason: {REFUSAL}"
        assert not Opportunity.objects.exists()

    @pytest.mark.parametrize(
        "reason",
        ["x" * 201, "a\x00b", 123, ["Price"], {"reason": "Price"}],
        ids=["too long", "nul", "number", "list", "object"],
    )
    def test_a_reason_that_is_no_text_of_200_characters_is_refused(self, api, reason):
        deal = lost()
        assert "lost_reason" in refused(api.patch(f"{URL}/{deal.pk}", {"lost_reason": reason}, format="json"))
        assert Opportunity.objects.get(pk=deal.pk).lost_reason == ""

    def test_a_lost_deal_takes_a_reason_and_a_new_one(self, api):
        deal = lost()
        for reason in ("Price", "Timing"):
            response = api.patch(f"{URL}/{deal.pk}", {"lost_reason": reason}, format="json")
            assert response.status_code == 200
            assert response.json()["data"]["lost_reason"] == reason
        assert Opportunity.objects.get(pk=deal.pk).lost_reason == "Timing"

    def test_marking_lost_with_a_reason_in_one_update(self, api):
        deal = OpportunityFactory(stage=Stage.NEGOTIATION)
        response = api.put(f"{URL}/{deal.pk}", {"stage": "lost", "lost_reason": "No budget"}, format="json")
        assert response.status_code == 200
        data = response.json()["data"]
        assert (data["stage"], data["probability"], data["lost_reason"]) == ("lost", 0, "No budget")
        assert data["closed_at"] is not None

    @pytest.mark.parametrize("stage", [*Opportunity.OPEN_STAGES, Stage.CLOSED])
    def test_a_reason_for_a_deal_that_is_not_lost_is_refused(self, api, stage):
        deal = OpportunityFactory(stage=stage)
        assert refused(api.patch(f"{URL}/{deal.pk}", {"lost_reason": "Price"}, format="json")) == {
            "lost_reason": [REFUSAL]
        }
        # Nor with a move to another stage that is not lost.
        other = Stage.LEAD if stage != Stage.LEAD else Stage.PROPOSAL
        body = {"stage": other, "lost_reason": "Price"}
        assert "lost_reason" in refused(api.patch(f"{URL}/{deal.pk}", body, format="json"))
        stored = Opportunity.objects.get(pk=deal.pk)
        assert (stored.stage, stored.lost_reason) == (stage, "")

    def test_a_new_reason_with_a_move_away_from_lost_is_refused(self, api):
        deal = lost("Price")
        body = {"stage": "lead", "lost_reason": "Timing"}
        assert "lost_reason" in refused(api.patch(f"{URL}/{deal.pk}", body, format="json"))
        stored = Opportunity.objects.get(pk=deal.pk)
        assert (stored.stage, stored.lost_reason) == (Stage.LOST, "Price")

    @pytest.mark.parametrize("stage", [*Opportunity.OPEN_STAGES, Stage.CLOSED])
    def test_reopening_or_winning_clears_the_reason(self, api, stage):
        deal = lost("Price")
        response = api.patch(f"{URL}/{deal.pk}", {"stage": stage}, format="json")
        assert response.status_code == 200
        assert response.json()["data"]["lost_reason"] == ""
        assert Opportunity.objects.get(pk=deal.pk).lost_reason == ""

    def test_the_reason_sent_back_as_it_is_with_a_reopening_is_cleared_too(self, api):
        deal = lost("Price")
        shown = api.get(f"{URL}/{deal.pk}").json()["data"]
        body = {"stage": "proposal", "lost_reason": shown["lost_reason"], "title": shown["title"]}
        response = api.put(f"{URL}/{deal.pk}", body, format="json")
        assert response.status_code == 200, response.content
        assert response.json()["data"]["lost_reason"] == ""
        assert Opportunity.objects.get(pk=deal.pk).lost_reason == ""

    def test_an_empty_reason_is_no_reason_at_any_stage(self, api):
        deal = OpportunityFactory(stage=Stage.LEAD)
        response = api.patch(f"{URL}/{deal.pk}", {"lost_reason": "   "}, format="json")
        assert response.status_code == 200
        assert response.json()["data"]["lost_reason"] == ""

    def test_a_reason_is_one_line_its_breaks_and_runs_of_spaces_one_space(self, api):
        deal = OpportunityFactory(stage=Stage.NEGOTIATION)
        body = {"stage": "lost", "lost_reason": " Went with\r\na   rival,\n\tcheaper "}
        response = api.patch(f"{URL}/{deal.pk}", body, format="json")
        assert response.status_code == 200, response.content
        assert response.json()["data"]["lost_reason"] == "Went with a rival, cheaper"
        assert Opportunity.objects.get(pk=deal.pk).lost_reason == "Went with a rival, cheaper"
        # Sent back with its line break, with a reopening, it is the reason the deal has: no new one.
        response = api.patch(f"{URL}/{deal.pk}", {"stage": "lead", "lost_reason": body["lost_reason"]}, format="json")
        assert response.status_code == 200, response.content
        assert Opportunity.objects.get(pk=deal.pk).lost_reason == ""

    def test_history_keeps_each_reason_and_its_clearing(self, api):
        deal = OpportunityFactory(stage=Stage.PROPOSAL)
        api.patch(f"{URL}/{deal.pk}", {"stage": "lost", "lost_reason": "Price"}, format="json")
        api.patch(f"{URL}/{deal.pk}", {"stage": "negotiation"}, format="json")
        entries = api.get(f"{URL}/{deal.pk}/history").json()["data"]
        reopened, marked_lost = entries[0], entries[1]
        assert {"field": "lost_reason", "old": "Price", "new": ""} in reopened["changes"]
        assert {"field": "lost_reason", "old": "", "new": "Price"} in marked_lost["changes"]
        assert [entry.lost_reason for entry in deal.history.order_by("history_id")] == ["", "Price", ""]

    def test_events_carry_the_reason_and_its_change(self, api):
        deal = OpportunityFactory(stage=Stage.PROPOSAL)
        Event.objects.all().delete()
        api.patch(f"{URL}/{deal.pk}", {"stage": "lost", "lost_reason": "Price"}, format="json")
        updated = Event.objects.get(object_id=deal.pk, type="opportunity.updated")
        assert updated.data["lost_reason"] == "Price"
        assert updated.changes["lost_reason"] == {"old": "", "new": "Price"}
        stage_changed = Event.objects.get(object_id=deal.pk, type="opportunity.stage_changed")
        assert stage_changed.data["lost_reason"] == "Price"
        Event.objects.all().delete()
        api.patch(f"{URL}/{deal.pk}", {"stage": "lead"}, format="json")
        updated = Event.objects.get(object_id=deal.pk, type="opportunity.updated")
        assert updated.changes["lost_reason"] == {"old": "Price", "new": ""}
        assert updated.data["lost_reason"] == ""


class TestEveryOtherWriter:
    def test_a_plain_save_away_from_lost_clears_the_reason(self):
        deal = Opportunity.objects.get(pk=lost("Price").pk)
        deal.stage = Stage.CLOSED
        deal.save()
        assert Opportunity.objects.get(pk=deal.pk).lost_reason == ""

    def test_the_bulk_set_stage_clears_the_reasons(self):
        deals = [lost("Price"), lost("Timing")]
        move_to_stage(Opportunity.objects.filter(pk__in=[d.pk for d in deals]), Stage.LEAD)
        assert set(Opportunity.objects.values_list("stage", "lost_reason")) == {(Stage.LEAD, "")}

    def test_a_move_saved_with_update_fields_clears_it_too(self):
        deal = Opportunity.objects.get(pk=lost("Price").pk)
        deal.stage = Stage.PROPOSAL
        deal.save(update_fields=["stage", "probability", "updated_at"])
        assert Opportunity.objects.get(pk=deal.pk).lost_reason == ""


class TestTheAdmin:
    def post_change(self, client, deal, **changes):
        url = f"{ADMIN}{deal.pk}/change/"
        data = change_form_data(client.get(url))
        data.update(changes)
        return client.post(url, data)

    def test_the_change_form_gives_a_lost_deal_its_reason(self, admin_client):
        deal = lost()
        response = self.post_change(admin_client, deal, lost_reason="Went with a competitor")
        assert response.status_code == 302, response.content.decode()[:2000]
        assert Opportunity.objects.get(pk=deal.pk).lost_reason == "Went with a competitor"

    def test_the_change_form_refuses_a_reason_for_a_deal_that_is_not_lost(self, admin_client):
        deal = OpportunityFactory(stage=Stage.PROPOSAL)
        response = self.post_change(admin_client, deal, lost_reason="Price")
        assert response.status_code == 200
        assert response.context["adminform"].form.errors == {"lost_reason": [REFUSAL]}
        assert Opportunity.objects.get(pk=deal.pk).lost_reason == ""
        # Moved to lost on the same form, it is taken.
        response = self.post_change(admin_client, deal, stage="lost", lost_reason="Price")
        assert response.status_code == 302
        stored = Opportunity.objects.get(pk=deal.pk)
        assert (stored.stage, stored.lost_reason, stored.probability) == (Stage.LOST, "Price", 0)

    def test_reopening_on_the_change_form_clears_the_reason_shown(self, admin_client):
        deal = lost("Price")
        response = self.post_change(admin_client, deal, stage="negotiation")
        assert response.status_code == 302, response.content.decode()[:2000]
        assert Opportunity.objects.get(pk=deal.pk).lost_reason == ""

    def test_a_reason_given_with_a_line_break_is_sent_back_as_shown_and_the_deal_reopened(self, admin_client, api):
        deal = OpportunityFactory(stage=Stage.PROPOSAL)
        api.patch(f"{URL}/{deal.pk}", {"stage": "lost", "lost_reason": "Price,\nthen timing"}, format="json")
        url = f"{ADMIN}{deal.pk}/change/"
        data = change_form_data(admin_client.get(url))
        # A browser's text field drops the line breaks of its value: the reason goes back as it shows it.
        assert data["lost_reason"] == "Price, then timing"
        response = admin_client.post(url, {**data, "stage": "negotiation"})
        assert response.status_code == 302, response.context["adminform"].form.errors
        assert Opportunity.objects.values_list("stage", "lost_reason").get() == (Stage.NEGOTIATION, "")

    def test_reopening_from_the_list_clears_the_reason(self, admin_client):
        deal = lost("Price")
        formset = admin_client.get(ADMIN).context["cl"].formset
        data = {**form_data(formset.management_form), **form_data(formset.forms[0]), "_save": "Save"}
        data["form-0-stage"] = "lead"
        response = admin_client.post(ADMIN, data)
        assert response.status_code == 302, response.content.decode()[:2000]
        stored = Opportunity.objects.get(pk=deal.pk)
        assert (stored.stage, stored.lost_reason) == (Stage.LEAD, "")

    def test_an_import_follows_the_same_rules(self, admin_client):
        customer = CustomerFactory()
        reopened = lost("Price", customer=customer)
        header = ["id", "customer", "title", "stage", "lost_reason"]
        preview = upload(admin_client, ADMIN, [header, ["", customer.pk, "Open", "lead", "Price"]])
        [row] = preview.context["result"].invalid_rows
        assert row.field_specific_errors == {"lost_reason": [REFUSAL]}
        import_rows(
            admin_client,
            ADMIN,
            [
                header,
                ["", customer.pk, "Lost", "lost", "No budget"],
                [reopened.pk, customer.pk, reopened.title, "proposal", "Price"],
            ],
        )
        assert dict(Opportunity.objects.values_list("title", "lost_reason")) == {
            "Lost": "No budget",
            reopened.title: "",
        }

    def test_the_list_filters_lost_deals_with_and_without_a_reason(self, admin_client):
        lost("Price", title="With")
        lost(title="Without")
        OpportunityFactory(title="Open")

        def titles(params):
            return sorted(o.title for o in admin_client.get(ADMIN, params).context["cl"].result_list)

        assert titles({"lost_reason": "given"}) == ["With"]
        assert titles({"lost_reason": "missing"}) == ["Without"]
        assert titles({"lost_reason": "other"}) == ["Open", "With", "Without"]


class TestTheSetStageAction:
    """The admin's bulk "Set stage…": an optional reason, given to the deals it moves to "Lost"."""

    def set_stage(self, client, deals, stage, follow=False, **fields):
        post = {"action": "set_stage", "_selected_action": [d.pk for d in deals], "index": "0", "confirm": "yes"}
        return preview_then_confirm(client, ADMIN, {**post, "stage": stage, **fields}, follow=follow)

    def undo(self, client):
        answer = client.post(reverse("admin:core_changeset_undo", args=[Changeset.objects.get(kind="action").pk]))
        assert answer.status_code == 302

    def test_the_form_offers_an_optional_reason(self, admin_client):
        deal = OpportunityFactory()
        page = admin_client.post(ADMIN, {"action": "set_stage", "_selected_action": [deal.pk], "index": "0"})
        form = page.context["form"]
        assert not form.fields["lost_reason"].required
        assert 'name="lost_reason"' in page.content.decode()

    def test_deals_moved_to_lost_take_the_reason_and_those_already_lost_keep_theirs(self, admin_client):
        open_deals = [OpportunityFactory(stage=Stage.PROPOSAL), OpportunityFactory(stage=Stage.CLOSED)]
        already, without = lost("Timing"), lost("")
        page = self.set_stage(
            admin_client, [*open_deals, already, without], Stage.LOST, follow=True, lost_reason="  Went with a rival  "
        )
        stored = {o.pk: (o.stage, o.lost_reason) for o in Opportunity.objects.all()}
        assert stored == {
            open_deals[0].pk: (Stage.LOST, "Went with a rival"),
            open_deals[1].pk: (Stage.LOST, "Went with a rival"),
            already.pk: (Stage.LOST, "Timing"),
            without.pk: (Stage.LOST, "Went with a rival"),
        }
        assert "2 opportunities moved to “Lost”. 1 lost already without a reason was given this one." in [
            str(m) for m in page.context["messages"]
        ]

    def test_lost_deals_without_a_reason_are_given_one_and_undo_takes_it_away(self, admin_client):
        deals = [lost(""), lost("")]
        self.set_stage(admin_client, deals, Stage.LOST, lost_reason="Budget cut")
        assert set(Opportunity.objects.values_list("stage", "lost_reason")) == {(Stage.LOST, "Budget cut")}
        self.undo(admin_client)
        assert set(Opportunity.objects.values_list("stage", "lost_reason")) == {(Stage.LOST, "")}

    def test_lost_without_a_reason_works_as_before(self, admin_client):
        deal = OpportunityFactory(stage=Stage.LEAD)
        self.set_stage(admin_client, [deal], Stage.LOST, lost_reason="")
        assert Opportunity.objects.values_list("stage", "lost_reason").get() == (Stage.LOST, "")

    @pytest.mark.parametrize("stage", [Stage.LEAD, Stage.CLOSED])
    def test_a_reason_with_another_stage_is_refused_and_nothing_moves(self, admin_client, stage):
        deals = [OpportunityFactory(stage=Stage.PROPOSAL), lost("Price")]
        before = snapshot()
        page = self.set_stage(admin_client, deals, stage, lost_reason="Price")
        assert page.status_code == 200
        assert page.context["form"].errors == {"lost_reason": [REFUSAL]}
        assert snapshot() == before and not Changeset.objects.exists()

    def test_a_reason_too_long_is_refused(self, admin_client):
        deal = OpportunityFactory()
        page = self.set_stage(admin_client, [deal], Stage.LOST, lost_reason="x" * 201)
        assert list(page.context["form"].errors) == ["lost_reason"]
        assert Opportunity.objects.get(pk=deal.pk).stage == deal.stage

    def test_undo_of_a_move_to_lost_takes_the_reasons_away(self, admin_client):
        deals = [OpportunityFactory(stage=Stage.PROPOSAL), OpportunityFactory(stage=Stage.LEAD)]
        before = snapshot()
        self.set_stage(admin_client, deals, Stage.LOST, lost_reason="Price")
        assert set(Opportunity.objects.values_list("lost_reason", flat=True)) == {"Price"}
        self.undo(admin_client)
        assert snapshot() == before

    def test_undo_of_a_reopening_puts_the_old_reasons_back(self, admin_client):
        deals = [lost("Price"), lost("Timing"), lost()]
        before = snapshot()
        self.set_stage(admin_client, deals, Stage.NEGOTIATION)
        assert set(Opportunity.objects.values_list("stage", "lost_reason")) == {(Stage.NEGOTIATION, "")}
        self.undo(admin_client)
        assert snapshot() == before
        assert sorted(Opportunity.objects.values_list("lost_reason", flat=True)) == ["", "Price", "Timing"]
