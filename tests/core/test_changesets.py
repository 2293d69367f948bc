"""The changesets engine (core/changesets.py): recording, dry runs, undo, conflicts, redo."""

from decimal import Decimal

import pytest
from django.apps import apps
from django.db import connection
from django.test.utils import CaptureQueriesContext

from companies.models import Company
from core import changesets
from core.changesets import Changeset, ChangesetRow, UndoRefused, recording, undo
from core.history import batched_delete_history
from core.models import Event
from customers.models import Customer
from customers.services import delete_customer, reassign_customers
from interactions.models import Interaction
from opportunities.models import Opportunity
from tasks.models import Task
from tests.factories import (
    CompanyFactory,
    CustomerFactory,
    InteractionFactory,
    ManagerFactory,
    OpportunityFactory,
    TaskFactory,
)

pytestmark = pytest.mark.django_db

# The data of the CRM's records: every table of these apps and core's tags, history and
# the event log aside. ``updated_at`` is left out: an undo is a change made now, and
# clients that sync by it must see the record again (it is not in the history either).
APPS = ("customers", "companies", "interactions", "opportunities", "tasks")
SKIPPED_COLUMNS = {"updated_at"}


def _tables():
    """[(model, whether it is a link table)] whose rows make the snapshot."""
    models = [model for label in APPS for model in apps.get_app_config(label).get_models()]
    models.append(apps.get_model("core", "Tag"))
    tables = []
    for model in models:
        # The kept pipeline figures are sums that triggers append to (tests/opportunities/test_figures.py
        # compares them with a recount). The stage log is recorded with its deals: compared too.
        if model.__name__.startswith("Historical") or model.__name__ == "PipelineFigure":
            continue
        tables.append((model, False))
        tables += [(field.remote_field.through, True) for field in model._meta.many_to_many]
    return tables


def snapshot():
    """Every row of the tables, all columns; a tag link by what it links (its own id is nobody's)."""
    state = {}
    for model, link in _tables():
        skipped = SKIPPED_COLUMNS | ({"id"} if link else set())
        columns = [field.attname for field in model._meta.concrete_fields if field.attname not in skipped]
        rows = model._base_manager.order_by(*columns).values_list(*columns)
        state[model._meta.db_table] = [dict(zip(columns, row, strict=True)) for row in rows]
    return state


@pytest.fixture
def manager():
    return ManagerFactory()


@pytest.fixture
def rich_customer(manager):
    """A customer with a company, tags, custom values, interactions, deals (tagged), and tasks."""
    customer = CustomerFactory(
        owner=manager, company=CompanyFactory(name="Acme 公司"), tags=["vip", "北京"], custom_fields={"tier": "gold"}
    )
    InteractionFactory.create_batch(2, customer=customer)
    OpportunityFactory(customer=customer, tags=["big"], value=Decimal("1234.50"))
    OpportunityFactory(customer=customer)
    TaskFactory.create_batch(2, customer=customer, assignee=manager)
    return Customer.objects.get(pk=customer.pk)


def test_saves_inside_a_recording_become_rows_with_before_and_after(manager):
    customer = CustomerFactory(name="Old", owner=manager)
    with recording("action", user=manager, label="rename", source={"action": "rename"}) as cs:
        customer.name = "New"
        customer.save()
        created = CustomerFactory(name="Fresh")
    cs.refresh_from_db()
    assert cs.kind == "action" and cs.user == manager and cs.source == {"action": "rename"}
    assert cs.counts == {"customers.customer": {"created": 1, "updated": 1, "deleted": 0}}
    first, second = cs.rows.order_by("seq")
    assert (first.op, first.object_id, first.before, first.after) == (
        "updated",
        customer.pk,
        {"name": "Old"},
        {"name": "New"},
    )
    assert first.history_id == customer.history.latest().history_id
    assert first.name == "New"
    assert (second.op, second.object_id, second.before) == ("created", created.pk, None)
    assert second.after["name"] == "Fresh" and second.after["email"] == created.email


def test_nothing_is_recorded_outside_a_recording_and_an_empty_block_leaves_no_changeset(manager):
    CustomerFactory()
    with recording("action", user=manager) as cs:
        pass
    assert cs.pk is None
    assert not Changeset.objects.exists() and not ChangesetRow.objects.exists()


def test_a_failed_block_leaves_neither_its_writes_nor_a_changeset(manager):
    with pytest.raises(RuntimeError), recording("batch", user=manager):
        CustomerFactory(name="Doomed")
        raise RuntimeError("boom")
    assert not Customer.objects.filter(name="Doomed").exists()
    assert not Changeset.objects.exists()


def test_a_rolled_back_savepoint_takes_its_rows_with_it(manager):
    from django.db import transaction

    with recording("batch", user=manager) as cs:
        CustomerFactory(name="Kept")
        try:
            with transaction.atomic():
                CustomerFactory(name="Rolled back")
                raise RuntimeError
        except RuntimeError:
            pass
    assert [row.name for row in cs.rows.all()] == ["Kept"]
    assert cs.counts == {"customers.customer": {"created": 1, "updated": 0, "deleted": 0}}


def test_a_dry_run_writes_nothing_and_gives_the_would_be_changeset(manager, rich_customer):
    before = snapshot()
    events = Event.objects.count()
    with recording("action", user=manager, dry_run=True) as cs:
        delete_customer(rich_customer)
    assert snapshot() == before
    assert Event.objects.count() == events
    assert not Changeset.objects.exists() and not ChangesetRow.objects.exists()
    assert cs.pk is None
    assert cs.counts["customers.customer"] == {"created": 0, "updated": 0, "deleted": 1}
    assert cs.counts["interactions.interaction"]["deleted"] == 2
    assert cs.counts["opportunities.opportunity"]["deleted"] == 2
    assert cs.counts["tasks.task"]["deleted"] == 2
    # The deals' stage log (one entry each, their creation) goes with them.
    assert cs.counts["opportunities.stagechange"]["deleted"] == 2
    assert [row.seq for row in cs.preview] == list(range(1, 10))
    assert cs.preview[-1].before["name"] == rich_customer.name


def test_nested_recordings_make_one_changeset(manager):
    with recording("import", user=manager) as outer:
        with recording("action", user=manager) as inner:
            CustomerFactory()
        CustomerFactory()
    assert inner is outer
    assert Changeset.objects.count() == 1 and outer.rows.count() == 2


def test_unknown_kind_is_refused(manager):
    with pytest.raises(ValueError), recording("whatever", user=manager):
        pass


def _undo_restores(manager, change):
    """Run ``change`` recorded, undo it: the data is back; redo: the data is as after the change."""
    before = snapshot()
    with recording("action", user=manager) as cs:
        change()
    after = snapshot()
    assert after != before
    undone = undo(cs, manager)
    assert snapshot() == before
    cs.refresh_from_db()
    assert cs.status == "undone" and cs.undone_by == manager and cs.undone_at is not None
    assert undone.kind == "undo" and undone.undoes == cs
    redone = undo(undone, manager)
    assert snapshot() == after
    return cs, undone, redone


def test_undo_of_a_deleted_customer_recreates_it_with_its_children(manager, rich_customer):
    _, _, redone = _undo_restores(manager, lambda: delete_customer(Customer.objects.get(pk=rich_customer.pk)))
    assert not Customer.objects.filter(pk=rich_customer.pk).exists()
    undo(redone, manager)
    customer = Customer.objects.get(pk=rich_customer.pk)
    assert sorted(customer.tag_set.values_list("name", flat=True)) == ["vip", "北京"]
    assert customer.custom_fields == {"tier": "gold"}
    assert customer.history.first().history_type == "+"
    assert Interaction.objects.filter(customer_id=customer.pk).count() == 2


def test_undo_of_a_delete_through_the_orm_cascade(manager, rich_customer):
    def change():
        with batched_delete_history():
            Customer.objects.get(pk=rich_customer.pk).delete()

    _undo_restores(manager, change)


def test_undo_of_updates_and_creations_in_a_mixed_batch(manager, rich_customer):
    other = ManagerFactory()
    company = CompanyFactory(name="Beta")

    def change():
        customer = Customer.objects.get(pk=rich_customer.pk)
        customer.name, customer.tags, customer.custom_fields = "王小明", ["vip"], {"tier": "silver"}
        customer.save()
        deal = Opportunity.objects.filter(customer=customer).first()
        deal.stage, deal.value = Opportunity.Stage.PROPOSAL, Decimal("99.99")
        deal.save()
        new = CustomerFactory(name="New one", company=company, tags=["fresh"])
        InteractionFactory(customer=new)
        OpportunityFactory(customer=new)
        reassign_customers(Customer.objects.filter(pk=rich_customer.pk), other)
        Company.objects.get(pk=company.pk).delete()

    _undo_restores(manager, change)


def test_undo_of_a_reassign_in_bulk(manager):
    other = ManagerFactory()
    customers = CustomerFactory.create_batch(3, owner=manager)
    cs, _, _ = _undo_restores(
        manager, lambda: reassign_customers(Customer.objects.filter(pk__in=[c.pk for c in customers]), other)
    )
    assert cs.counts == {"customers.customer": {"created": 0, "updated": 3, "deleted": 0}}


def test_undo_of_a_company_rename_puts_its_peoples_company_text_back(manager):
    company = CompanyFactory(name="Old name")
    CustomerFactory.create_batch(2, company=company, owner=manager)

    def rename():
        renamed = Company.objects.get(pk=company.pk)
        renamed.name = "New name"
        renamed.save()

    cs, _, _ = _undo_restores(manager, rename)
    assert cs.counts == {
        "companies.company": {"created": 0, "updated": 1, "deleted": 0},
        "customers.customer": {"created": 0, "updated": 2, "deleted": 0},
    }


def test_undoing_a_company_rename_costs_the_same_queries_for_more_people(manager):
    """Its people's rows are put back by the company's: renamed back, they follow in bulk, not a save each."""

    def queries_for(n):
        company = CompanyFactory(name="Old name")
        people = CustomerFactory.create_batch(n, company=company, owner=manager)
        with recording("action", user=manager) as cs:
            renamed = Company.objects.get(pk=company.pk)
            renamed.name = "New name"
            renamed.save()
        with CaptureQueriesContext(connection) as captured:
            undo(cs, manager)
        assert {person.company_name for person in Customer.objects.filter(pk__in=[p.pk for p in people])} == {
            "Old name"
        }
        return len(captured)

    queries_for(1)  # (the first reads the manager's role too)
    assert queries_for(3) == queries_for(30)


def test_an_undo_writes_history_and_events_and_an_event_of_its_own(manager):
    customer = CustomerFactory(name="Old", owner=manager)
    with recording("action", user=manager) as cs:
        customer.name = "New"
        customer.save()
    entries = customer.history.count()
    undo(cs, manager)
    customer.refresh_from_db()
    assert customer.name == "Old"
    assert customer.history.count() == entries + 1
    assert customer.history.first().history_user == manager
    assert Event.objects.filter(type="customer.updated", object_id=customer.pk).latest("id").changes["name"] == {
        "old": "New",
        "new": "Old",
    }
    event = Event.objects.get(type="changeset.undone")
    assert event.object_id == cs.pk and event.actor == manager and event.owner == manager


def test_undo_twice_is_refused(manager):
    with recording("action", user=manager) as cs:
        CustomerFactory()
    undo(cs, manager)
    with pytest.raises(UndoRefused) as refused:
        undo(cs, manager)
    assert refused.value.code == "already_undone"


def test_a_record_changed_since_is_a_conflict_named_and_refused(manager):
    kept, changed = CustomerFactory(name="Kept", owner=manager), CustomerFactory(name="Changed", owner=manager)
    with recording("action", user=manager) as cs:
        for customer in (kept, changed):
            customer.status = Customer.Status.INACTIVE
            customer.save()
    changed.name = "Changed again"
    changed.save()
    state = snapshot()
    with pytest.raises(UndoRefused) as refused:
        undo(cs, manager)
    assert refused.value.code == "undo_conflict"
    assert refused.value.conflicts == [
        {"model": "customers.customer", "object_id": changed.pk, "name": "Changed", "reason": "changed"}
    ]
    assert "Changed (changed since)" in refused.value.message
    assert snapshot() == state
    cs.refresh_from_db()
    assert cs.status == "applied"

    done = undo(cs, manager, skip_conflicts=True)
    assert Customer.objects.get(pk=kept.pk).status == Customer.Status.ACTIVE
    assert Customer.objects.get(pk=changed.pk).status == Customer.Status.INACTIVE
    assert done.source["skipped"] == 1


def test_deleted_since_and_recreated_since_are_conflicts(manager):
    updated = CustomerFactory(owner=manager)
    with recording("action", user=manager) as cs:
        updated.name = "Renamed"
        updated.save()
        gone = CustomerFactory(name="Gone")
        with batched_delete_history():
            gone_id = gone.pk
            gone.delete()
    with batched_delete_history():
        Customer.objects.get(pk=updated.pk).delete()
    CustomerFactory(id=gone_id, name="Taken")
    reasons = {(c["object_id"], c["reason"]) for c in changesets.conflicts(cs)}
    assert reasons == {(updated.pk, "deleted"), (gone_id, "recreated")}


def test_a_deleted_record_whose_email_is_taken_since_is_a_conflict_and_skipped_with_its_children(manager):
    customer = CustomerFactory(name="Gone", email="gone@example.com", owner=manager)
    InteractionFactory.create_batch(2, customer=customer)
    kept = CustomerFactory(name="Kept", owner=manager)
    with recording("action", user=manager) as cs:
        delete_customer(Customer.objects.get(pk=customer.pk))
        kept.name = "Renamed"
        kept.save()
    CustomerFactory(name="Newcomer", email="GONE@example.com")
    state = snapshot()

    with pytest.raises(UndoRefused) as refused:
        undo(cs, manager)
    assert refused.value.code == "undo_conflict"
    assert refused.value.conflicts == [
        {"model": "customers.customer", "object_id": customer.pk, "name": "Gone", "reason": "taken"}
    ]
    assert snapshot() == state
    cs.refresh_from_db()
    assert cs.status == "applied"

    # Skipped, it stays deleted, and so do the interactions that would point at it.
    done = undo(cs, manager, skip_conflicts=True)
    assert not Customer.objects.filter(pk=customer.pk).exists()
    assert not Interaction.objects.filter(customer_id=customer.pk).exists()
    assert Customer.objects.get(pk=kept.pk).name == "Kept"
    assert done.source["skipped"] == 3
    cs.refresh_from_db()
    assert cs.status == "undone"


def test_a_record_whose_old_domain_is_taken_since_is_a_conflict(manager):
    company = CompanyFactory(name="Acme", domain="acme.example")
    with recording("action", user=manager) as cs:
        company.domain = "acme-group.example"
        company.save()
    CompanyFactory(name="Acme again", domain="acme.example")

    with pytest.raises(UndoRefused) as refused:
        undo(cs, manager)
    assert [conflict["reason"] for conflict in refused.value.conflicts] == ["taken"]
    assert "Acme (a value it would take back, such as its email, is another record's now)" in refused.value.message
    assert Company.objects.get(pk=company.pk).domain == "acme-group.example"


def test_a_record_the_undo_would_link_to_a_record_deleted_since_is_a_conflict(manager):
    customer = CustomerFactory(name="Ann", owner=manager)
    gone = InteractionFactory(customer=customer, notes="Gone")
    moved = InteractionFactory(customer=customer, notes="Moved")
    other = CustomerFactory(name="Bob", owner=manager)
    kept = CustomerFactory(name="Kept", owner=manager)
    with recording("action", user=manager) as cs:
        Interaction.objects.get(pk=gone.pk).delete()
        moved = Interaction.objects.get(pk=moved.pk)
        moved.customer = other
        moved.save()
        kept.name = "Renamed"
        kept.save()
    # Ann is deleted since: neither interaction can be given back to her.
    Customer.objects.get(pk=customer.pk).delete()

    with pytest.raises(UndoRefused) as refused:
        undo(cs, manager)
    assert sorted((c["object_id"], c["reason"]) for c in refused.value.conflicts) == [
        (gone.pk, "points_at_deleted"),
        (moved.pk, "points_at_deleted"),
    ]
    assert "(a record it belongs to was deleted since)" in refused.value.message

    undo(cs, manager, skip_conflicts=True)
    # Checked as the commit would check them: no row points at a record that is not there.
    connection.check_constraints()
    assert not Interaction.objects.filter(pk=gone.pk).exists()
    assert Interaction.objects.get(pk=moved.pk).customer_id == other.pk
    assert Customer.objects.get(pk=kept.pk).name == "Kept"


def test_a_record_linked_to_one_the_same_undo_makes_again_is_no_conflict(manager):
    customer = CustomerFactory(name="Ann", owner=manager)
    InteractionFactory(customer=customer)
    with recording("action", user=manager) as cs:
        delete_customer(Customer.objects.get(pk=customer.pk))

    undo(cs, manager)
    connection.check_constraints()
    assert Interaction.objects.get().customer_id == customer.pk


def test_the_undo_of_an_undo_conflicts_when_changed_after_the_undo(manager):
    customer = CustomerFactory(name="A", owner=manager)
    with recording("action", user=manager) as cs:
        customer.name = "B"
        customer.save()
    undone = undo(cs, manager)
    customer.refresh_from_db()
    customer.name = "C"
    customer.save()
    with pytest.raises(UndoRefused):
        undo(undone, manager)


def test_delete_with_history_rows_carry_their_history_ids(manager, rich_customer):
    with recording("action", user=manager) as cs:
        delete_customer(Customer.objects.get(pk=rich_customer.pk))
    rows = list(cs.rows.filter(model="interactions.interaction"))
    assert len(rows) == 2
    for row in rows:
        assert Interaction.history.get(history_id=row.history_id).history_type == "-"
        assert row.before["customer_id"] == rich_customer.pk


def test_recording_costs_constant_queries_per_bulk_delete(manager):
    """A customer's interactions deleted in bulk are recorded in a fixed number of queries."""

    def queries_for(n):
        customer = CustomerFactory(owner=manager)
        InteractionFactory.create_batch(n, customer=customer)
        customer = Customer.objects.get(pk=customer.pk)
        with CaptureQueriesContext(connection) as captured, recording("action", user=manager):
            delete_customer(customer)
        return len(captured)

    assert queries_for(2) == queries_for(20)


def test_a_user_without_a_login_is_recorded_as_nobody(db):
    from django.contrib.auth.models import AnonymousUser

    with recording("import", user=AnonymousUser()) as cs:
        CustomerFactory()
    assert cs.user is None and Changeset.objects.get().user is None


def test_task_and_interaction_updates_undo(manager):
    task = TaskFactory(assignee=manager, customer=CustomerFactory(owner=manager))
    note = InteractionFactory(customer=task.customer)

    def change():
        t = Task.objects.get(pk=task.pk)
        t.title = "Changed"
        t.save()
        i = Interaction.objects.get(pk=note.pk)
        i.notes = "Changed too"
        i.save()

    _undo_restores(manager, change)


def test_undo_puts_back_a_deals_stage_with_its_closing_date(manager):
    won = OpportunityFactory(stage="closed", closed_at=None)
    won = Opportunity.objects.get(pk=won.pk)
    assert won.closed_at is not None

    def change():
        deal = Opportunity.objects.get(pk=won.pk)
        deal.stage = "negotiation"
        deal.save()

    # The snapshots compare closed_at: back to the won date, not the time of the undo.
    _undo_restores(manager, change)
