"""The pipeline board in the admin (opportunities/board.py): columns, cards, filters, moves, for a rep and a manager."""

import datetime
from decimal import Decimal

import pytest
from django.contrib.admin.models import LogEntry
from django.db import connection
from django.test import Client
from django.test.utils import CaptureQueriesContext
from django.utils import timezone

from core.models import Event
from opportunities.board import CARDS_PER_COLUMN
from opportunities.models import Opportunity, StageChange
from tests.conftest import browser
from tests.factories import CustomerFactory, OpportunityFactory, TaskFactory, member

BOARD = "/admin/opportunities/opportunity/board/"
MOVE = f"{BOARD}move/"
JSON = {"HTTP_ACCEPT": "application/json"}

pytestmark = pytest.mark.django_db


def columns(response):
    return {column["stage"]: column for column in response.context["columns"]}


def cards(response, stage):
    return [item["opportunity"].title for item in columns(response)[stage]["cards"]]


def move(client, opportunity, stage, version=None, **extra):
    data = {
        "opportunity": opportunity.pk,
        "stage": stage,
        "version": version
        if version is not None
        else Opportunity.objects.get(pk=opportunity.pk).updated_at.isoformat(),
        **extra,
    }
    headers = {key: data.pop(key) for key in list(data) if key.startswith("HTTP_")}
    return client.post(MOVE, data, **headers)


def aged(opportunity, days):
    then = timezone.now() - datetime.timedelta(days=days)
    Opportunity.objects.filter(pk=opportunity.pk).update(created_at=then)
    opportunity.stage_changes.update(changed_at=then)


class TestSeeing:
    def test_columns_figures_and_cards(self, rep, other_rep):
        customer = CustomerFactory(owner=rep, name="Acme")
        deal = OpportunityFactory(
            customer=customer,
            title="Big deal",
            value=Decimal("1234567.50"),
            stage=Opportunity.Stage.PROPOSAL,
            expected_close_date=datetime.date(2026, 3, 15),
        )
        OpportunityFactory(customer=customer, title="Small", value=Decimal("100"), stage=Opportunity.Stage.PROPOSAL)
        OpportunityFactory(customer=customer, title="Won", value=Decimal("500"), stage=Opportunity.Stage.CLOSED)
        TaskFactory(customer=customer, opportunity=deal, assignee=rep, title="Call back", due_at=timezone.now())
        OpportunityFactory(customer=CustomerFactory(owner=other_rep), title="Theirs", stage=Opportunity.Stage.PROPOSAL)

        response = browser(rep).get(BOARD)
        assert response.status_code == 200
        proposal = columns(response)["proposal"]
        assert proposal["count"] == 2
        assert proposal["total_value"] == Decimal("1234667.50")
        assert proposal["weighted_value"] == Decimal("493867.00")
        assert sorted(cards(response, "proposal")) == ["Big deal", "Small"]
        # Won and lost are folded: their figures are there, their cards are not read.
        won = columns(response)["closed"]
        assert won["folded"] and won["count"] == 1 and won["cards"] == []
        html = response.content.decode()
        assert "1,234,567.50" in html and "1,234,667.50" in html
        assert "Call back" in html and "Acme" in html and "Theirs" not in html
        assert 'name="csrfmiddlewaretoken"' in html and "opportunities/board.js" in html
        assert f'data-version="{deal.updated_at.isoformat()}"' in html

    def test_stale_mark_follows_the_follow_ups_rule(self, rep, settings):
        customer = CustomerFactory(owner=rep)
        quiet = OpportunityFactory(customer=customer, title="quiet")
        aged(quiet, 20)  # leads allow 14 days
        fresh = OpportunityFactory(customer=CustomerFactory(owner=rep), title="fresh")
        aged(fresh, 3)
        response = browser(rep).get(BOARD)
        marks = {item["opportunity"].title: item["opportunity"].is_stale for item in columns(response)["lead"]["cards"]}
        assert marks == {"quiet": True, "fresh": False}
        assert response.content.decode().count("stale-mark") == 1
        settings.CRM_STALE_DAYS = {"lead": 30, "proposal": 10, "negotiation": 7}
        response = browser(rep).get(BOARD)
        assert not any(item["opportunity"].is_stale for item in columns(response)["lead"]["cards"])

    def test_unfold_won_and_lost(self, manager):
        OpportunityFactory(title="Won", stage=Opportunity.Stage.CLOSED)
        OpportunityFactory(title="Gone", stage=Opportunity.Stage.LOST)
        client = browser(manager)
        response = client.get(BOARD, {"unfold": "closed"})
        assert cards(response, "closed") == ["Won"] and columns(response)["lost"]["folded"]
        assert columns(response)["closed"]["toggle_url"] == "?"
        response = client.get(BOARD, {"unfold": ["closed", "lost"]})
        assert cards(response, "lost") == ["Gone"]

    def test_more_link_for_a_long_column(self, manager):
        OpportunityFactory.create_batch(CARDS_PER_COLUMN + 3)
        client = browser(manager)
        response = client.get(BOARD)
        lead = columns(response)["lead"]
        assert len(lead["cards"]) == CARDS_PER_COLUMN and lead["count"] == CARDS_PER_COLUMN + 3
        assert lead["more_url"] == f"?show_lead={2 * CARDS_PER_COLUMN}"
        response = client.get(f"{BOARD}{lead['more_url']}")
        assert len(columns(response)["lead"]["cards"]) == CARDS_PER_COLUMN + 3
        assert columns(response)["lead"]["more_url"] is None

    def test_without_a_role_refused_and_read_only_sees_without_moving(self, db):
        assert browser(member("nobody", None, is_staff=True)).get(BOARD).status_code == 403
        OpportunityFactory(title="Visible")
        response = browser(member("reader", "Read-only", is_staff=True)).get(BOARD)
        assert response.status_code == 200 and cards(response, "lead") == ["Visible"]
        html = response.content.decode()
        assert 'draggable="true" aria' not in html and '<form class="move"' not in html

    def test_linked_from_the_changelist_and_the_dashboard(self, manager):
        client = browser(manager)
        assert BOARD in client.get("/admin/opportunities/opportunity/").content.decode()
        assert BOARD in client.get("/admin/").content.decode()

    def test_in_chinese(self, manager):
        OpportunityFactory(value=Decimal("12345"))
        html = browser(manager).get(BOARD, HTTP_ACCEPT_LANGUAGE="zh-hans").content.decode()
        for text in ["销售管道看板", "负责人", "预计成交月份", "下一个任务", "12,345.00"]:
            assert text in html, text


class TestFilters:
    def test_reps_see_their_own_managers_everyone_or_one_rep(self, rep, other_rep, manager):
        OpportunityFactory(customer=CustomerFactory(owner=rep), title="Rep's")
        OpportunityFactory(customer=CustomerFactory(owner=other_rep), title="Other's")
        OpportunityFactory(customer=CustomerFactory(owner=None), title="Nobody's")
        assert cards(browser(rep).get(BOARD), "lead") == ["Rep's"]
        boss = browser(manager)
        assert sorted(cards(boss.get(BOARD), "lead")) == ["Nobody's", "Other's", "Rep's"]
        assert cards(boss.get(BOARD, {"owner": rep.pk}), "lead") == ["Rep's"]
        assert cards(boss.get(BOARD, {"owner": "none"}), "lead") == ["Nobody's"]
        assert cards(boss.get(BOARD, {"owner": "mine"}), "lead") == []
        response = boss.get(BOARD, {"owner": other_rep.pk})
        assert cards(response, "lead") == ["Other's"] and columns(response)["lead"]["count"] == 1
        # A rep cannot ask for someone else's book.
        response = browser(rep).get(BOARD, {"owner": other_rep.pk})
        assert response.status_code == 400 and "Other&#x27;s" not in response.content.decode()
        assert cards(response, "lead") == ["Rep's"]

    def test_close_month_and_customer(self, manager):
        acme = CustomerFactory(name="Acme")
        OpportunityFactory(customer=acme, title="March", expected_close_date=datetime.date(2026, 3, 31))
        OpportunityFactory(customer=acme, title="April", expected_close_date=datetime.date(2026, 4, 1))
        OpportunityFactory(title="Elsewhere", expected_close_date=datetime.date(2026, 3, 1))
        client = browser(manager)
        response = client.get(BOARD, {"month": "2026-03"})
        assert sorted(cards(response, "lead")) == ["Elsewhere", "March"]
        assert columns(response)["lead"]["total_value"] == Decimal("2000.00")
        assert sorted(cards(client.get(BOARD, {"customer": acme.pk}), "lead")) == ["April", "March"]
        assert cards(client.get(BOARD, {"customer": acme.pk, "month": "2026-04"}), "lead") == ["April"]

    def test_customer_by_typed_name_without_javascript(self, rep, other_rep):
        # A plain GET form field: the typed text finds the customers as the customer search does,
        # only among those the user sees.
        OpportunityFactory(customer=CustomerFactory(owner=rep, name="Acme Robotics"), title="Mine")
        OpportunityFactory(customer=CustomerFactory(owner=rep, name="Globex"), title="Other")
        OpportunityFactory(customer=CustomerFactory(owner=other_rep, name="Acme North"), title="Theirs")
        client = browser(rep)
        html = client.get(BOARD).content.decode()
        assert 'name="customer_text"' in html
        assert cards(client.get(BOARD, {"customer_text": "acme"}), "lead") == ["Mine"]
        assert cards(client.get(BOARD, {"customer_text": "nobody at all"}), "lead") == []
        assert sorted(cards(client.get(BOARD, {"customer_text": "  "}), "lead")) == ["Mine", "Other"]

    @pytest.mark.parametrize(
        "params",
        [
            {"customer_text": "x" * 201},
            {"month": "2026-13"},
            {"month": "March"},
            {"month": "0001-01"},
            {"customer": "abc"},
            {"customer": "999999"},
            {"owner": "robert'); drop table"},
            {"owner": "999999"},
            {"unfold": "lead"},
            {"show_lead": "0"},
            {"show_lead": "many"},
            {"show_lead": "100000000000000000000"},
        ],
    )
    def test_bad_filters_are_400_with_the_board(self, manager, params):
        OpportunityFactory(title="Still here")
        response = browser(manager).get(BOARD, params)
        assert response.status_code == 400
        assert cards(response, "lead") == ["Still here"]
        assert "errorlist" in response.content.decode()

    def test_a_customer_of_another_book_is_not_a_choice_for_a_rep(self, rep, other_rep):
        theirs = CustomerFactory(owner=other_rep)
        OpportunityFactory(customer=theirs)
        assert browser(rep).get(BOARD, {"customer": theirs.pk}).status_code == 400


class TestMoving:
    def test_a_move_goes_through_the_stage_rules(self, rep):
        deal = OpportunityFactory(customer=CustomerFactory(owner=rep), title="Deal", stage=Opportunity.Stage.LEAD)
        client = browser(rep)
        response = move(client, deal, "negotiation", filters="owner=mine")
        assert response.status_code == 303
        assert response["Location"] == f"{BOARD}?owner=mine"
        deal.refresh_from_db()
        assert (deal.stage, deal.probability, deal.closed_at) == ("negotiation", 70, None)
        assert list(deal.stage_changes.values_list("from_stage", "to_stage")) == [
            ("lead", "negotiation"),
            (None, "lead"),
        ]
        latest = deal.history.first()
        assert latest.history_user == rep and latest.stage == "negotiation"
        assert set(Event.objects.filter(object_id=deal.pk).values_list("type", flat=True)) >= {
            "opportunity.stage_changed",
            "opportunity.updated",
        }
        assert LogEntry.objects.filter(object_id=str(deal.pk), user=rep).exists()
        page = client.get(response["Location"])
        assert "“Deal” moved to “Negotiation”." in page.content.decode()

        # To won, as JSON: closed_at is set, the probability is 100.
        response = move(client, deal, "closed", **JSON)
        assert response.status_code == 200 and response.json()["success"] is True
        deal.refresh_from_db()
        assert deal.stage == "closed" and deal.probability == 100 and deal.closed_at is not None

    def test_a_card_moved_meanwhile_is_refused(self, rep, manager):
        deal = OpportunityFactory(customer=CustomerFactory(owner=rep), title="Contested")
        shown = deal.updated_at.isoformat()
        assert move(browser(manager), deal, "proposal", version=shown).status_code == 303
        client = browser(rep)
        response = move(client, deal, "lost", version=shown, **JSON)
        assert response.status_code == 409
        assert response.json() == {
            "success": False,
            "message": "“Contested” was changed by someone else meanwhile (it is now at “Proposal”): it was not "
            "moved. The board shows it as it is now.",
        }
        deal.refresh_from_db()
        assert deal.stage == "proposal" and deal.stage_changes.count() == 2
        # Without JavaScript: the board as it is now, with the message.
        response = move(client, deal, "lost", version=shown, filters="month=2026-01")
        assert response.status_code == 409
        assert "was changed by someone else meanwhile" in response.content.decode()
        assert response.context["filters"].cleaned_data["month"] == datetime.date(2026, 1, 1)
        # Filters that are not valid are left out; the refusal keeps its status.
        assert move(client, deal, "lost", version=shown, filters="month=2026-13").status_code == 409

    def test_someone_elses_card_is_not_found_for_a_rep_and_read_only_may_not_move(self, rep, other_rep):
        theirs = OpportunityFactory(customer=CustomerFactory(owner=other_rep), title="Theirs")
        response = move(browser(rep), theirs, "proposal", **JSON)
        assert response.status_code == 404
        assert response.json()["message"] == "That opportunity no longer exists, or is not in your book."
        assert move(browser(rep), theirs, "proposal").status_code == 404
        reader = member("reader", "Read-only", is_staff=True)
        assert move(browser(reader), theirs, "proposal", **JSON).status_code == 403
        theirs.refresh_from_db()
        assert theirs.stage == "lead" and theirs.history.count() == 1

    @pytest.mark.parametrize(
        "data",
        [
            {},
            {"opportunity": "x", "stage": "lead", "version": "v"},
            {"opportunity": "1", "stage": "won", "version": "v"},
            {"opportunity": "1", "stage": "lead"},
            {"opportunity": "-1", "stage": "lead", "version": "v"},
            {"opportunity": "1" * 40, "stage": "lead", "version": "v"},
            # A digit to str.isdigit(), not to int().
            {"opportunity": "²", "stage": "lead", "version": "v"},
            {"opportunity": "1", "stage": "lead", "version": "v", "filters": "month=nope&owner=%00"},
        ],
    )
    def test_bad_input_is_4xx(self, manager, data):
        OpportunityFactory()
        client = browser(manager)
        for headers in ({}, JSON):
            response = client.post(MOVE, data, **headers)
            assert 400 <= response.status_code < 500, (data, headers, response.status_code)

    def test_staying_put_writes_nothing_and_get_is_refused(self, manager):
        deal = OpportunityFactory()
        client = browser(manager)
        response = move(client, deal, "lead", **JSON)
        assert response.status_code == 200 and "already" in response.json()["message"]
        assert deal.history.count() == 1
        assert client.get(MOVE).status_code == 405
        assert client.post(BOARD).status_code == 405

    def test_csrf_is_required(self, manager):
        deal = OpportunityFactory()
        client = Client(enforce_csrf_checks=True)
        client.force_login(manager)
        assert move(client, deal, "proposal").status_code == 403
        deal.refresh_from_db()
        assert deal.stage == "lead"


class TestLostReason:
    """A move to "Lost" may say why (``lost_reason``), under the rule of every writer."""

    def test_a_move_to_lost_takes_the_reason_given(self, rep):
        deal = OpportunityFactory(customer=CustomerFactory(owner=rep), title="Deal", stage=Opportunity.Stage.PROPOSAL)
        client = browser(rep)
        response = move(client, deal, "lost", lost_reason="  Went with a rival  ", **JSON)
        assert response.status_code == 200
        assert response.json() == {"success": True, "message": "“Deal” moved to “Lost”: “Went with a rival”."}
        deal.refresh_from_db()
        assert (deal.stage, deal.probability, deal.lost_reason) == ("lost", 0, "Went with a rival")
        assert deal.history.first().lost_reason == "Went with a rival"
        assert deal.stage_changes.filter(to_stage="lost").count() == 1
        entry = LogEntry.objects.filter(object_id=str(deal.pk)).latest("pk")
        assert "lost reason" in entry.get_change_message()

    def test_without_javascript_the_reason_is_posted_with_the_card_form(self, manager):
        deal = OpportunityFactory(title="Deal")
        client = browser(manager)
        page = client.get(BOARD).content.decode()
        assert f'id="lost-reason-{deal.pk}"' in page and 'name="lost_reason"' in page
        assert f'<label for="lost-reason-{deal.pk}">' in page
        response = move(client, deal, "lost", lost_reason="No budget", filters="owner=all")
        assert response.status_code == 303
        assert Opportunity.objects.get(pk=deal.pk).lost_reason == "No budget"
        shown = client.get(response["Location"], {"unfold": "lost"}).content.decode()
        assert "“Deal” moved to “Lost”: “No budget”." in shown
        assert '<dd class="lost-reason-shown" title="No budget">No budget</dd>' in shown

    def test_lost_without_a_reason_works_as_before(self, manager):
        deal = OpportunityFactory()
        assert move(browser(manager), deal, "lost", lost_reason="", **JSON).status_code == 200
        assert Opportunity.objects.values_list("stage", "lost_reason").get() == ("lost", "")

    @pytest.mark.parametrize(
        ("stage", "reason", "error"),
        [
            ("proposal", "Price", "Only a lost deal has a lost reason"),
            ("closed", "Price", "Only a lost deal has a lost reason"),
            ("lost", "x" * 201, "at most 200 characters"),
            ("lost", "Pri\x00ce", "Null characters are not allowed"),
        ],
    )
    def test_a_reason_refused_moves_nothing(self, manager, stage, reason, error):
        deal = OpportunityFactory(stage=Opportunity.Stage.NEGOTIATION)
        client = browser(manager)
        response = move(client, deal, stage, lost_reason=reason, **JSON)
        assert response.status_code == 400
        assert response.json()["success"] is False and error in response.json()["message"]
        response = move(client, deal, stage, lost_reason=reason)
        assert response.status_code == 400 and error in response.content.decode()
        deal.refresh_from_db()
        assert (deal.stage, deal.lost_reason, deal.history.count()) == ("negotiation", "", 1)

    def test_a_card_already_lost_takes_a_new_reason_and_the_same_one_writes_nothing(self, manager):
        deal = OpportunityFactory(title="Deal", stage=Opportunity.Stage.LOST, lost_reason="Price")
        client = browser(manager)
        response = move(client, deal, "lost", lost_reason="Price", **JSON)
        assert "already" in response.json()["message"] and deal.history.count() == 1
        response = move(client, deal, "lost", lost_reason="Timing", **JSON)
        assert response.json()["message"] == "The lost reason of “Deal” is now “Timing”."
        deal.refresh_from_db()
        assert (deal.stage, deal.lost_reason, deal.stage_changes.count()) == ("lost", "Timing", 1)
        # Its card shows the reason it has in its form, so a move back to lost keeps it.
        page = browser(manager).get(BOARD, {"unfold": "lost"}).content.decode()
        assert 'maxlength="200" value="Timing"' in page

    def test_reopening_from_the_board_clears_the_reason(self, manager):
        deal = OpportunityFactory(stage=Opportunity.Stage.LOST, lost_reason="Price")
        # The card's form sends the reason it shows: with a move away from lost it is no new reason.
        response = move(browser(manager), deal, "proposal", lost_reason="Price", **JSON)
        assert response.json() == {"success": True, "message": f"“{deal.title}” moved to “Proposal”."}
        entry = LogEntry.objects.filter(object_id=str(deal.pk)).latest("pk")
        assert "lost reason" in entry.get_change_message()
        deal.refresh_from_db()
        assert (deal.stage, deal.lost_reason) == ("proposal", "")

    def test_a_lost_card_whose_reason_was_given_with_a_line_break_is_reopened(self, manager, api):
        deal = OpportunityFactory(stage=Opportunity.Stage.NEGOTIATION)
        api.patch(
            f"/api/opportunities/{deal.pk}", {"stage": "lost", "lost_reason": "Price,\r\nthen timing"}, format="json"
        )
        client = browser(manager)
        page = client.get(BOARD, {"unfold": "lost"}).content.decode()
        # The card's text field shows the reason on one line, and sends it back so with a move.
        assert 'maxlength="200" value="Price, then timing"' in page
        response = move(client, deal, "proposal", lost_reason="Price, then timing", **JSON)
        assert response.status_code == 200, response.content
        deal.refresh_from_db()
        assert (deal.stage, deal.lost_reason) == ("proposal", "")

    def test_a_card_moved_meanwhile_is_refused_with_its_reason(self, rep, manager):
        deal = OpportunityFactory(customer=CustomerFactory(owner=rep), title="Contested")
        shown = deal.updated_at.isoformat()
        assert move(browser(manager), deal, "proposal", version=shown).status_code == 303
        response = move(browser(rep), deal, "lost", version=shown, lost_reason="Price", **JSON)
        assert response.status_code == 409
        deal.refresh_from_db()
        assert (deal.stage, deal.lost_reason) == ("proposal", "")

    def test_the_dialog_is_offered_to_those_who_move_only(self, manager):
        assert 'id="lost-reason-dialog"' in browser(manager).get(BOARD).content.decode()
        reader = member("reader", "Read-only", is_staff=True)
        OpportunityFactory()
        page = browser(reader).get(BOARD).content.decode()
        assert 'id="lost-reason-dialog"' not in page and 'name="lost_reason"' not in page


class TestQueryCounts:
    def fill(self, owner, per_stage):
        for stage in Opportunity.Stage:
            for _ in range(per_stage):
                deal = OpportunityFactory(customer=CustomerFactory(owner=owner), stage=stage)
                TaskFactory(customer=deal.customer, opportunity=deal, assignee=owner, due_at=timezone.now())

    @pytest.mark.parametrize("role", ["rep", "manager"])
    @pytest.mark.parametrize("params", [{}, {"unfold": ["closed", "lost"], "month": "2026-01", "owner": "mine"}])
    def test_constant_as_data_grows(self, rep, manager, role, params):
        user = rep if role == "rep" else manager
        client = browser(user)
        self.fill(rep, 1)
        client.get(BOARD, params)  # warm the session and caches
        with CaptureQueriesContext(connection) as few:
            assert client.get(BOARD, params).status_code == 200
        self.fill(rep, 8)
        with CaptureQueriesContext(connection) as many:
            response = client.get(BOARD, params)
        assert response.status_code == 200
        assert len(many) == len(few), [query["sql"] for query in many.captured_queries]

    def test_one_aggregate_for_the_columns_and_one_query_per_open_column(self, manager):
        self.fill(manager, 3)
        client = browser(manager)
        client.get(BOARD)
        with CaptureQueriesContext(connection) as default:
            client.get(BOARD)
        with CaptureQueriesContext(connection) as unfolded:
            client.get(BOARD, {"unfold": ["closed", "lost"]})
        # Each unfolded column reads its cards with one more query, whatever their number.
        assert len(unfolded) == len(default) + 2
        aggregates = [q["sql"] for q in default.captured_queries if "COUNT(" in q["sql"] and "weighted" in q["sql"]]
        # On PostgreSQL the columns' figures are a read of the figures the database keeps (opportunities/figures.py).
        kept = [q["sql"] for q in default.captured_queries if "opportunities_pipelinefigure" in q["sql"]]
        assert (len(aggregates), len(kept)) == ((0, 1) if connection.vendor == "postgresql" else (1, 0))

    def test_a_move_reads_and_writes_a_fixed_number_of_queries(self, manager):
        deal = OpportunityFactory()
        other = OpportunityFactory()
        for _ in range(10):
            TaskFactory(customer=other.customer, opportunity=other)
        client = browser(manager)
        # A first move fills the caches a process keeps (the admin log's content type), whichever tests ran before.
        move(client, OpportunityFactory(), "proposal", **JSON)
        with CaptureQueriesContext(connection) as first:
            move(client, deal, "proposal", **JSON)
        with CaptureQueriesContext(connection) as second:
            move(client, other, "proposal", **JSON)
        assert len(first) == len(second)
        assert StageChange.objects.filter(to_stage="proposal").count() == 3
