"""Bulk admin actions that change data: a preview (a dry run of the same action) before a Confirm runs them.

Each action's first step that would write shows the would-be changeset (counts and per-row diff,
as the changeset's page shows them) and writes nothing; "Confirm" posts the same request again and
makes exactly that change, as one changeset. The roles: a rep previews and changes only their own
records, a read-only user is offered no action and a forged Confirm writes nothing.
"""

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext
from django.urls import reverse

from companies.models import Company
from core.admin import previews
from core.changesets import Changeset, undo
from core.models import Event, Tag
from customers.models import Customer
from customers.timeline import timeline_entries, timeline_queryset
from opportunities.models import Opportunity, StageChange
from tests.core.admin.helpers import preview_then_confirm, staff
from tests.core.test_changesets import snapshot
from tests.factories import CompanyFactory, CustomerFactory, InteractionFactory, OpportunityFactory

pytestmark = pytest.mark.django_db


def list_url(model):
    return reverse(f"admin:{model._meta.app_label}_{model._meta.model_name}_changelist")


@pytest.fixture
def book():
    manager, manager_client = staff("boss", "Sales manager")
    rep, rep_client = staff("rep", "Sales rep")
    other, _ = staff("other", "Sales rep")
    _, reader_client = staff("reader", "Read-only")
    tag = Tag.objects.create(name="VIP")
    mine = [CustomerFactory(owner=rep, name=f"Mine {n}", status=Customer.Status.LEAD) for n in range(2)]
    theirs = CustomerFactory(owner=other, name="Theirs", status=Customer.Status.LEAD)
    return {
        "manager": manager,
        "manager_client": manager_client,
        "rep": rep,
        "rep_client": rep_client,
        "other": other,
        "reader_client": reader_client,
        "tag": tag,
        "mine": mine,
        "theirs": theirs,
    }


def status_action(b):
    return Customer, b["mine"], {"action": "set_status_inactive"}, {"customers.customer": (0, 2, 0)}


def add_tag_action(b):
    return (
        Customer,
        b["mine"],
        {"action": "add_tag", "confirm": "yes", "tag": b["tag"].pk},
        {"customers.customer": (0, 2, 0)},
    )


def company_tag_action(b):
    companies = [CompanyFactory(owner=b["rep"]) for _ in range(2)]
    return (
        Company,
        companies,
        {"action": "add_tag", "confirm": "yes", "tag": b["tag"].pk},
        {"companies.company": (0, 2, 0)},
    )


def opportunity_tag_action(b):
    deals = [OpportunityFactory(customer=customer) for customer in b["mine"]]
    data = {"action": "add_tag", "confirm": "yes", "tag": b["tag"].pk}
    return Opportunity, deals, data, {"opportunities.opportunity": (0, 2, 0)}


def reassign_action(b):
    data = {"action": "reassign_customers", "confirm": "yes", "owner": b["other"].pk}
    return Customer, b["mine"], data, {"customers.customer": (0, 2, 0)}


def delete_action(b):
    return Customer, b["mine"], {"action": "delete_selected", "post": "yes"}, {"customers.customer": (0, 0, 2)}


def stage_action(b):
    deals = [OpportunityFactory(customer=customer) for customer in b["mine"]]
    data = {"action": "set_stage", "confirm": "yes", "stage": "closed"}
    return Opportunity, deals, data, {"opportunities.opportunity": (0, 2, 0), "opportunities.stagechange": (2, 0, 0)}


ACTIONS = [
    status_action,
    add_tag_action,
    company_tag_action,
    opportunity_tag_action,
    reassign_action,
    delete_action,
    stage_action,
]


def expected_counts(counts):
    return {
        label: {"created": created, "updated": updated, "deleted": deleted}
        for label, (created, updated, deleted) in counts.items()
    }


@pytest.mark.parametrize("make", ACTIONS, ids=[make.__name__ for make in ACTIONS])
def test_the_preview_writes_nothing_and_the_confirm_makes_that_change(book, make):
    model, records, data, counts = make(book)
    client = book["manager_client"]
    post = {**data, "_selected_action": [record.pk for record in records], "index": "0"}
    before = snapshot()
    history_before = model.history.count()

    preview = client.post(list_url(model), post)

    assert preview.status_code == 200
    assert preview.templates[0].name == "admin/core/changeset/preview.html"
    assert snapshot() == before and model.history.count() == history_before
    assert not Changeset.objects.exists()
    page = preview.content.decode()
    assert 'id="changeset-preview-form"' in page and 'class="changeset-diff"' in page
    for record in records:
        assert f"#{record.pk}" in page
    assert preview.context["total"] == sum(map(sum, counts.values()))
    assert preview.context["changeset_preview"].counts == expected_counts(counts)
    # The dry run's "2 … changed" did not happen: it is not said.
    assert not list(preview.context["messages"])

    done = preview_then_confirm(client, list_url(model), post, follow=True)

    assert done.status_code == 200
    assert snapshot() != before
    changeset = Changeset.objects.get()
    assert changeset.counts == expected_counts(counts)
    assert changeset.user == book["manager"] and changeset.source["action"] == data["action"]
    assert reverse("admin:core_changeset_change", args=[changeset.pk]) in done.content.decode()
    undo(changeset, book["manager"])
    assert snapshot() == before


def test_a_page_of_the_actions_own_comes_first_and_the_preview_is_its_confirm_step(book):
    client = book["manager_client"]
    selected = {"_selected_action": [c.pk for c in book["mine"]], "index": "0"}
    tag_form = client.post(list_url(Customer), {**selected, "action": "add_tag"})
    assert 'id="tag-action-form"' in tag_form.content.decode()
    deletion = client.post(list_url(Customer), {**selected, "action": "delete_selected"})
    assert deletion.templates[0].name == "admin/customers/customer/delete_selected_confirmation.html" or (
        "delete_selected_confirmation" in deletion.templates[0].name
    )
    # A form sent back with an error is shown again, not previewed.
    invalid = client.post(list_url(Customer), {**selected, "action": "add_tag", "confirm": "yes", "tag": "0"})
    assert 'id="tag-action-form"' in invalid.content.decode() and "changeset_preview" not in invalid.context
    assert Customer.objects.filter(status=Customer.Status.LEAD).count() == 3 and Customer.objects.count() == 3


def test_an_action_that_would_change_nothing_says_so_without_a_confirm(book):
    for customer in book["mine"]:
        customer.status = Customer.Status.INACTIVE
        customer.save()
    post = {"action": "set_status_inactive", "_selected_action": [c.pk for c in book["mine"]], "index": "0"}
    page = book["manager_client"].post(list_url(Customer), post)
    assert page.status_code == 200
    assert page.context["total"] == 0
    assert 'id="changeset-preview-form"' not in page.content.decode()


def test_a_rep_previews_and_changes_only_their_own_records(book):
    client = book["rep_client"]
    post = {
        "action": "set_status_inactive",
        "_selected_action": [*(c.pk for c in book["mine"]), book["theirs"].pk],
        "index": "0",
    }
    preview = client.post(list_url(Customer), post)
    page = preview.content.decode()
    assert "Mine 0" in page and "Theirs" not in page and preview.context["total"] == 2
    # Another rep's record slipped into the Confirm is outside the rep's list: left alone.
    preview_then_confirm(client, list_url(Customer), post)
    statuses = dict(Customer.objects.values_list("name", "status"))
    assert statuses == {"Mine 0": "inactive", "Mine 1": "inactive", "Theirs": "lead"}


def test_a_rep_may_not_preview_a_managers_action(book):
    post = {"action": "reassign_customers", "_selected_action": [c.pk for c in book["mine"]], "index": "0"}
    for data in (post, {**post, "confirm": "yes", "owner": book["rep"].pk, "preview_confirmed": "yes"}):
        answer = book["rep_client"].post(list_url(Customer), data)
        assert answer.status_code == 302
    assert set(Customer.objects.values_list("owner", flat=True)) == {book["rep"].pk, book["other"].pk}


@pytest.mark.parametrize("action", ["set_status_inactive", "delete_selected", "add_tag", "set_stage"])
def test_a_read_only_user_is_offered_no_preview_and_a_forged_confirm_writes_nothing(book, action):
    deals = [OpportunityFactory(customer=c) for c in book["mine"]]
    model = Opportunity if action == "set_stage" else Customer
    records = deals if model is Opportunity else book["mine"]
    before = snapshot()
    post = {"action": action, "_selected_action": [r.pk for r in records], "index": "0", "confirm": "yes"}
    extra = {"post": "yes", "tag": book["tag"].pk, "stage": "lost"}
    client = book["reader_client"]
    for data in ({**post, **extra}, {**post, **extra, "preview_confirmed": "yes"}):
        answer = client.post(list_url(model), data)
        assert answer.status_code == 302
    assert snapshot() == before and not Changeset.objects.exists()


def test_set_stage_goes_through_the_stage_rules_and_undo_restores(book):
    deals = [
        OpportunityFactory(customer=book["mine"][0], stage="lead"),
        OpportunityFactory(customer=book["mine"][1], stage="proposal", probability=55),
        OpportunityFactory(customer=book["mine"][1], stage="closed"),
    ]
    before = snapshot()
    events_before = Event.objects.count()
    logs_before = StageChange.objects.count()
    post = {"action": "set_stage", "_selected_action": [d.pk for d in deals], "index": "0", "confirm": "yes"}

    preview = book["rep_client"].post(list_url(Opportunity), {**post, "stage": "closed"})
    # The deal already closed is not changed; each deal moved logs its move.
    assert preview.context["changeset_preview"].counts == {
        "opportunities.opportunity": {"created": 0, "updated": 2, "deleted": 0},
        "opportunities.stagechange": {"created": 2, "updated": 0, "deleted": 0},
    }
    assert StageChange.objects.count() == logs_before and Event.objects.count() == events_before

    preview_then_confirm(book["rep_client"], list_url(Opportunity), {**post, "stage": "closed"})

    for deal in deals:
        deal.refresh_from_db()
        assert (deal.stage, deal.probability) == ("closed", 100)
        assert deal.closed_at is not None
    for deal in deals[:2]:
        assert deal.history.order_by("-history_id").first().history_user == book["rep"]
    assert deals[2].history.count() == 1
    assert StageChange.objects.count() == logs_before + 2
    assert Event.objects.filter(type="opportunity.stage_changed").count() >= 2
    changeset = Changeset.objects.get()
    assert changeset.kind == "action" and changeset.label == "Set stage…"
    undo(changeset, book["rep"])
    assert snapshot() == before


def stage_log(deals):
    """Each deal's stage log as the timeline and the board read it: (id, from, to, when), oldest first."""
    return {
        deal.pk: list(deal.stage_changes.order_by("id").values_list("id", "from_stage", "to_stage", "changed_at"))
        for deal in deals
    }


def timeline_types(customer):
    return [entry["type"] for entry in timeline_entries(list(timeline_queryset(customer.pk)))]


def test_undoing_a_set_stage_takes_its_moves_out_of_the_stage_log_and_the_timeline(book):
    customer = book["mine"][0]
    deals = [OpportunityFactory(customer=customer, stage=Opportunity.Stage.LEAD) for _ in range(3)]
    log_before, timeline_before = stage_log(deals), timeline_types(customer)
    post = {"action": "set_stage", "_selected_action": [d.pk for d in deals], "index": "0", "confirm": "yes"}

    preview_then_confirm(book["rep_client"], list_url(Opportunity), {**post, "stage": Opportunity.Stage.PROPOSAL})
    moved = stage_log(deals)
    assert all(log[-1][1:3] == ("lead", "proposal") for log in moved.values())
    assert timeline_types(customer).count("opportunity_stage_changed") == 3

    # Undone from the changeset's page, as a user does: the moves are gone, no move back is logged.
    changeset = Changeset.objects.get()
    answer = book["rep_client"].post(reverse("admin:core_changeset_undo", args=[changeset.pk]))
    assert answer.status_code == 302
    assert [Opportunity.objects.get(pk=d.pk).stage for d in deals] == ["lead"] * 3
    assert stage_log(deals) == log_before
    assert timeline_types(customer) == timeline_before

    # Undoing the undo makes the moves again: the same entries, with their ids and times.
    redo = Changeset.objects.get(undoes=changeset)
    assert redo.counts["opportunities.stagechange"] == {"created": 0, "updated": 0, "deleted": 3}
    book["rep_client"].post(reverse("admin:core_changeset_undo", args=[redo.pk]))
    assert stage_log(deals) == moved


def test_a_deal_skipped_by_an_undo_keeps_its_logged_move(book):
    deals = [OpportunityFactory(customer=book["mine"][0], stage=Opportunity.Stage.LEAD) for _ in range(2)]
    post = {"action": "set_stage", "_selected_action": [d.pk for d in deals], "index": "0", "confirm": "yes"}
    preview_then_confirm(book["rep_client"], list_url(Opportunity), {**post, "stage": Opportunity.Stage.PROPOSAL})
    changed = Opportunity.objects.get(pk=deals[0].pk)
    changed.value += 1
    changed.save()
    moved = stage_log(deals)

    book["rep_client"].post(
        reverse("admin:core_changeset_undo", args=[Changeset.objects.get().pk]), {"skip_conflicts": "yes"}
    )

    # The deal changed since stays in proposal with its move logged; the other is back, its move gone.
    assert [Opportunity.objects.get(pk=d.pk).stage for d in deals] == ["proposal", "lead"]
    assert stage_log(deals) == {deals[0].pk: moved[deals[0].pk], deals[1].pk: moved[deals[1].pk][:-1]}


def test_the_preview_shows_the_first_rows_and_counts_the_rest(book, monkeypatch):
    monkeypatch.setattr(previews, "ROWS_SHOWN", 3)
    customers = [CustomerFactory(owner=book["rep"], status=Customer.Status.LEAD) for _ in range(4)]
    post = {"action": "set_status_active", "_selected_action": [c.pk for c in customers], "index": "0"}
    page = book["manager_client"].post(list_url(Customer), post)
    assert page.context["total"] == 4
    assert "… and 1 more rows." in page.content.decode()


def test_the_preview_and_the_stage_action_in_chinese(book):
    client = book["manager_client"]
    post = {"action": "set_status_inactive", "_selected_action": [c.pk for c in book["mine"]], "index": "0"}
    page = client.post(list_url(Customer), post, HTTP_ACCEPT_LANGUAGE="zh-hans").content.decode()
    for text in ["预览：", "确认后将对 2 条记录做如下变更", "确认", "可在其页面上撤销"]:
        assert text in page
    listing = client.get(list_url(Opportunity), HTTP_ACCEPT_LANGUAGE="zh-hans").content.decode()
    assert "设置阶段…" in listing


def test_a_confirm_that_finds_other_rows_than_its_preview_writes_nothing_and_shows_the_new_preview(book):
    client = book["manager_client"]
    post = {"action": "set_status_inactive", "_selected_action": [c.pk for c in book["mine"]], "index": "0"}
    preview = client.post(list_url(Customer), post)
    confirm = {name: value for name, value in preview.context["confirm_data"] if name != "_selected_action"}
    confirm |= {"_selected_action": [c.pk for c in book["mine"]], "preview_confirmed": "yes"}
    confirm["preview_digest"] = preview.context["digest"]
    # Someone else sets one of them to "active" in between: the change would not be the one shown.
    changed = Customer.objects.get(pk=book["mine"][0].pk)
    changed.status = Customer.Status.ACTIVE
    changed.save()
    before = snapshot()

    again = client.post(list_url(Customer), confirm)

    assert snapshot() == before and not Changeset.objects.exists()
    assert again.context["changeset_preview"] is not None
    assert "changed since the preview" in again.content.decode()
    assert "active" in again.context["diff"] and again.context["digest"] != preview.context["digest"]
    # Confirmed as shown now: made.
    done = client.post(list_url(Customer), {**confirm, "preview_digest": again.context["digest"]})
    assert done.status_code == 302
    assert set(Customer.objects.filter(owner=book["rep"]).values_list("status", flat=True)) == {"inactive"}
    assert Changeset.objects.count() == 1


def _preview_queries(client, customers):
    post = {"action": "set_status_inactive", "_selected_action": [c.pk for c in customers], "index": "0"}
    with CaptureQueriesContext(connection) as queries:
        page = client.post(list_url(Customer), post)
    assert page.context["total"] == len(customers)
    return len(queries)


def test_the_preview_of_a_status_action_runs_as_many_queries_for_3_or_30_customers(book):
    client = book["manager_client"]
    few = [CustomerFactory(owner=book["rep"], status=Customer.Status.LEAD) for _ in range(3)]
    many = [CustomerFactory(owner=book["rep"], status=Customer.Status.ACTIVE) for _ in range(30)]
    _preview_queries(client, few)  # warms the caches (content types, the session)
    assert _preview_queries(client, many) == _preview_queries(client, few)


def test_the_preview_of_a_deletion_counts_the_children_it_takes_and_undo_brings_them_back(book):
    customer = book["mine"][0]
    InteractionFactory.create_batch(2, customer=customer)
    OpportunityFactory(customer=customer, tags=["big"])
    before = snapshot()
    post = {"action": "delete_selected", "_selected_action": [customer.pk], "index": "0", "post": "yes"}

    preview = book["manager_client"].post(list_url(Customer), post)

    counts = preview.context["changeset_preview"].counts
    assert counts["customers.customer"]["deleted"] == 1
    assert counts["interactions.interaction"]["deleted"] == 2
    assert counts["opportunities.opportunity"]["deleted"] == 1
    assert counts["opportunities.stagechange"]["deleted"] == 1
    assert snapshot() == before
    preview_then_confirm(book["manager_client"], list_url(Customer), post)
    assert not Customer.objects.filter(pk=customer.pk).exists()
    undo(Changeset.objects.get(), book["manager"])
    assert snapshot() == before


def test_select_across_a_filtered_list_previews_and_changes_that_list(book):
    url = f"{list_url(Customer)}?q=Mine"
    post = {"action": "set_status_inactive", "_selected_action": [book["mine"][0].pk], "select_across": "1"}
    preview = book["manager_client"].post(url, {**post, "index": "0"})
    assert preview.context["total"] == 2
    preview_then_confirm(book["manager_client"], url, {**post, "index": "0"})
    statuses = dict(Customer.objects.values_list("name", "status"))
    assert statuses == {"Mine 0": "inactive", "Mine 1": "inactive", "Theirs": "lead"}
