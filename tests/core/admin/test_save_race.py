"""Two staff saving one record at the same moment, or one deleting it while the other saves: the second save
waits for the first, sees its change and is refused; a record (an inline row, a list row) deleted meanwhile is
never created again, and its user is told so, not shown a server error. The same for the screens that write
outside the shared admin base: the board's move, the customer page's quick actions, the merge page.

The races need two connections at once (a thread each, with its own connection): PostgreSQL. On SQLite a write
transaction holds the database's one write lock from its ``BEGIN`` (``core/sqlite``), so two saves never overlap.
"""

import pytest
from django.db import connection, transaction
from django.urls import reverse

from companies.models import Company
from core.admin.base import RecordGone, update_stored
from customers.models import Customer
from interactions.models import Interaction
from opportunities.models import Opportunity, StageChange
from tasks.models import Task
from tests.concurrency import Held, Thread, deadlocked, in_turn, no_waiting_on_locks, waits
from tests.core.admin.helpers import managers, opened, staff, upload
from tests.factories import (
    EMAILS_BEYOND_ASCII,
    CompanyFactory,
    CustomerFactory,
    InteractionFactory,
    OpportunityFactory,
    TaskFactory,
)

pytestmark = pytest.mark.django_db

CHANGED_MEANWHILE = "Changed by someone else since this page was shown"
ROW_GONE = "Deleted or moved elsewhere by someone else since this page was shown"
RECORD_GONE = "Deleted by someone else since this page was shown"
LIST_URL = reverse("admin:opportunities_opportunity_changelist")


def change_url(record):
    return reverse(f"admin:{record._meta.app_label}_{record._meta.model_name}_change", args=[record.pk])


def delete_url(record):
    return reverse(f"admin:{record._meta.app_label}_{record._meta.model_name}_delete", args=[record.pk])


def saved(data, **changes):
    """The page ``data`` (as ``opened`` reads it) with ``changes`` typed into it, posted with "Save"."""
    return {**data, **{name: [value] for name, value in changes.items()}, "_save": ["Save"]}


def written_by(client, record, gone, **changes):
    """Someone else's write of ``record`` from its own pages: its deletion (``gone``), or ``changes`` saved."""
    if gone:
        return lambda: client.post(delete_url(record), {"post": "yes"})
    page = opened(client, change_url(record))
    return lambda: client.post(change_url(record), saved(page, **changes))


def list_row(data, record):
    """The prefix of ``record``'s row in a posted list."""
    index = next(name for name, values in data.items() if name.endswith("-id") and values == [str(record.pk)])
    return index.removesuffix("-id")


def stored(record):
    return type(record)._base_manager.filter(pk=record.pk).first()


def posted_meanwhile(held, client, url, data, **headers):
    """``client`` posts ``data`` while ``held`` is open: the post waits on a lock until ``held`` commits.
    The post's response."""
    post = Thread(lambda: client.post(url, data, **headers))
    post.start()
    waits_on_a_lock(post)
    assert held.commit().status_code == 302
    return post.answer()


def waits_on_a_lock(thread):
    assert waits(thread), "the second post never waited for the first"


@pytest.mark.parametrize(
    ("make", "field"),
    [(lambda: CustomerFactory(name="Ann"), "name"), (lambda: OpportunityFactory(title="Deal"), "title")],
    ids=["customer", "opportunity"],
)
def test_a_record_deleted_between_the_page_and_its_save_is_not_created_again(make, field):
    record = make()
    first, second = managers("first", "second")
    page = opened(first, change_url(record))
    assert second.post(delete_url(record), {"post": "yes"}).status_code == 302

    response = first.post(change_url(record), saved(page, **{field: "Changed after its deletion"}))

    assert response.status_code == 404
    assert RECORD_GONE in response.content.decode()
    assert stored(record) is None
    assert record.history.first().history_type == "-"


def test_a_change_saved_for_a_record_deleted_meanwhile_is_refused_not_inserted():
    """The admin's saves of a stored record (its page, an inline or list row, a revert) are UPDATEs only."""
    deal = OpportunityFactory(title="Deal")
    Opportunity._base_manager.filter(pk=deal.pk).delete()
    deal.title = "Deal changed after its deletion"

    # The admin's transaction (here a savepoint) is rolled back with it: nothing of the save is kept.
    with pytest.raises(RecordGone), transaction.atomic():
        update_stored(deal)

    assert stored(deal) is None


def test_a_board_move_quick_action_or_merge_of_a_record_deleted_since_its_page_writes_nothing():
    customer, other = CustomerFactory(name="Ann"), CustomerFactory(name="Ann B")
    deal = OpportunityFactory(customer=customer, title="Deal", stage=Opportunity.Stage.LEAD)
    first, second = managers("first", "second")
    move = {"opportunity": deal.pk, "stage": "proposal", "version": stored(deal).updated_at.isoformat()}
    merge_url = f"{reverse('admin:customers_customer_merge')}?ids={customer.pk},{other.pk}"
    merge = {"survivor": customer.pk, "confirm": "yes"}
    merge |= {f"version:{r.pk}": stored(r).updated_at.isoformat() for r in (customer, other)}
    assert second.get(merge_url).status_code == 200

    assert first.post(delete_url(deal), {"post": "yes"}).status_code == 302
    moved = second.post(reverse("admin:opportunities_opportunity_board_move"), move, HTTP_ACCEPT="application/json")
    assert moved.status_code == 404 and moved.json()["success"] is False
    assert stored(deal) is None

    assert first.post(delete_url(other), {"post": "yes"}).status_code == 302
    merged = second.post(merge_url, merge, follow=True)
    assert "Some of these records no longer exist" in merged.content.decode()
    assert stored(other) is None and stored(customer).name == "Ann"

    assert first.post(delete_url(customer), {"post": "yes"}).status_code == 302
    quick_url = reverse("admin:customers_customer_quick_action", args=[customer.pk, "interaction"])
    added = second.post(quick_url, {"interaction-interaction_type": "call", "interaction-notes": "Called"})
    assert added.status_code == 404
    assert RECORD_GONE in added.content.decode()
    assert stored(customer) is None and not Interaction.objects.exists()


def for_postgresql(test):
    """Two connections at once: PostgreSQL, with the test's writes committed for the other connections."""
    test = pytest.mark.django_db(transaction=True)(test)
    return pytest.mark.skipif(connection.vendor != "postgresql", reason="two connections at once: PostgreSQL")(test)


@for_postgresql
def test_a_save_at_the_same_moment_as_another_waits_for_it_and_is_refused():
    customer = CustomerFactory(name="Ann")
    url = change_url(customer)
    first, second = managers("first", "second")
    first_page, second_page = opened(first, url), opened(second, url)

    with Held(lambda: first.post(url, saved(first_page, name="Ann by the first"))) as held:
        response = posted_meanwhile(held, second, url, saved(second_page, name="Ann by the second"))

    assert response.status_code == 200
    assert CHANGED_MEANWHILE in str(response.context["adminform"].form.errors["name"])
    assert stored(customer).name == "Ann by the first"
    assert [entry.name for entry in customer.history.all()] == ["Ann by the first", "Ann"]


@for_postgresql
@pytest.mark.parametrize("how", ["change", "revert"])
def test_a_record_deleted_while_its_save_waits_is_not_created_again(how):
    customer = CustomerFactory(name="Ann")
    customer.name = "Ann B"
    customer.save()
    first, second = managers("first", "second")
    if how == "change":
        url = change_url(customer)
        data = saved(opened(second, url), name="Ann C")
    else:
        url = reverse("admin:customers_customer_simple_history", args=[customer.pk, customer.history.last().history_id])
        data = opened(second, url)

    with Held(written_by(first, customer, gone=True)) as held:
        response = posted_meanwhile(held, second, url, data)

    assert response.status_code == 404
    assert RECORD_GONE in response.content.decode()
    assert stored(customer) is None
    assert customer.history.first().history_type == "-"


@for_postgresql
@pytest.mark.parametrize("gone", [False, True], ids=["changed", "deleted"])
def test_an_inline_row_saved_while_someone_else_writes_it_waits_and_is_refused(gone):
    customer = CustomerFactory(name="Ann")
    deal = OpportunityFactory(customer=customer, title="Deal")
    url = change_url(customer)
    first, second = managers("first", "second")
    page = opened(second, url)
    # Beside a deal added since the page was shown, which the post does not name and so does not lock.
    OpportunityFactory(customer=customer, title="Added")

    with Held(written_by(first, deal, gone, title="Deal by the first")) as held:
        response = posted_meanwhile(held, second, url, saved(page, **{"opportunities-0-title": "Deal by the second"}))

    assert response.status_code == 200
    inline = next(i for i in response.context["inline_admin_formsets"] if i.formset.prefix == "opportunities")
    assert (ROW_GONE if gone else CHANGED_MEANWHILE) in str(inline.formset.errors[0])
    if gone:
        assert stored(deal) is None
    else:
        assert stored(deal).title == "Deal by the first"


@for_postgresql
@pytest.mark.parametrize("gone", [False, True], ids=["changed", "deleted"])
def test_a_list_row_saved_while_someone_else_writes_it_waits_and_is_refused(gone):
    deal = OpportunityFactory(title="Deal", stage=Opportunity.Stage.LEAD, probability=10)
    first, second = managers("first", "second")
    page = opened(second, LIST_URL, r"changelist-form")

    with Held(written_by(first, deal, gone, probability="20")) as held:
        response = posted_meanwhile(
            held, second, LIST_URL, saved(page, **{f"{list_row(page, deal)}-probability": "30"})
        )

    assert response.status_code == 200
    assert (ROW_GONE if gone else CHANGED_MEANWHILE) in response.content.decode()
    if gone:
        assert stored(deal) is None
    else:
        assert stored(deal).probability == 20


@for_postgresql
def test_an_action_on_a_record_deleted_while_it_waits_does_not_create_it_again():
    deal = OpportunityFactory(title="Deal", stage=Opportunity.Stage.LEAD)
    first, second = managers("first", "second")
    post = {"action": "set_stage", "confirm": "yes", "stage": "closed", "_selected_action": [deal.pk], "index": "0"}
    preview = second.post(LIST_URL, post)
    assert preview.context["changeset_preview"] is not None
    confirm = {}
    for name, value in preview.context["confirm_data"]:
        confirm.setdefault(name, []).append(value)
    # Without the preview's digest (a script's confirm), which would otherwise refuse rows that changed since.
    confirm[preview.context["confirm_field"]] = "yes"

    with Held(written_by(first, deal, gone=True)) as held:
        response = posted_meanwhile(held, second, LIST_URL, confirm)

    assert response.status_code in (200, 302)
    assert stored(deal) is None
    assert deal.history.first().history_type == "-"


IMPORTED_BY_KEY = {
    "customer by id": (lambda: CustomerFactory(name="Ann"), "id"),
    "customer by email": (lambda: CustomerFactory(name="Ann", email="ann@example.com"), "email"),
    "customer by external id": (lambda: CustomerFactory(name="Ann", external_id="crm-7"), "external_id"),
    "company by id": (lambda: CompanyFactory(name="Acme"), "id"),
    "company by domain": (lambda: CompanyFactory(name="Acme", domain="acme.example"), "domain"),
    "company by external id": (lambda: CompanyFactory(name="Acme", external_id="crm-8"), "external_id"),
}


def imported_meanwhile(case, gone, **changes):
    """A file of one row naming a record (``IMPORTED_BY_KEY[case]``) confirmed while someone else's delete of it
    (``gone``) or change (``changes``) is under way: ``(record, key, the confirm's response)``."""
    make, key = IMPORTED_BY_KEY[case]
    record = make()
    model = type(record)
    first, second = managers("first", "second")
    url = reverse(f"admin:{model._meta.app_label}_{model._meta.model_name}_changelist")
    preview = upload(second, url, [[key, "name"], [getattr(record, key), "Named by the import"]])
    assert preview.context.get("confirm_form") is not None

    with Held(written_by(first, record, gone=gone, **changes)) as held:
        response = posted_meanwhile(held, second, f"{url}process_import/", {**preview.context["confirm_form"].initial})
    return record, key, response


@for_postgresql
@pytest.mark.parametrize("case", IMPORTED_BY_KEY)
def test_an_import_of_a_record_deleted_while_it_waits_does_not_create_it_again(case):
    record, key, response = imported_meanwhile(case, gone=True)
    model = type(record)

    assert stored(record) is None
    assert record.history.first().history_type == "-"
    if key == "id":
        assert f"No record with id {record.pk}" in response.content.decode()
    else:
        # As had the import come after the delete: a new record, under a new id.
        assert response.status_code == 302
        assert model.objects.get().name == "Named by the import"


@for_postgresql
@pytest.mark.parametrize("case", IMPORTED_BY_KEY)
def test_an_import_of_a_record_changed_while_it_waits_keeps_that_change(case):
    # The import's rows look their records up together, before the first row: one changed meanwhile is waited for
    # and read as changed, and the row writes over what it names only (no lost update).
    record, _key, response = imported_meanwhile(case, gone=False, phone="13900139000")

    assert response.status_code == 302
    assert (stored(record).name, stored(record).phone) == ("Named by the import", "13900139000")


@for_postgresql
def test_an_import_naming_a_new_company_another_writer_is_making_links_its_customer_to_that_one():
    # The names of the file's new companies are locked before its first row, as one writer's save locks its own:
    # the import waits for the other writer, then finds its company rather than making a second one.
    first, second = managers("first", "second")
    url = reverse("admin:customers_customer_changelist")
    preview = upload(second, url, [["name", "company"], ["Bob", " race  HOLDINGS"], ["Cy", "Race holdings"]])

    with Held(lambda: Customer.objects.create(name="Ann", company_name="Race Holdings").company_id) as held:
        post = Thread(lambda: second.post(f"{url}process_import/", {**preview.context["confirm_form"].initial}))
        post.start()
        waits_on_a_lock(post)
        made = held.commit()

    assert post.answer().status_code == 302
    assert set(Customer.objects.values_list("company_id", flat=True)) == {made}
    assert Company.objects.filter(name_key="race holdings").count() == 1


@for_postgresql
def test_a_writer_naming_a_new_company_an_import_is_making_waits_for_it_and_links_to_that_one():
    first, second = managers("first", "second")
    url = reverse("admin:customers_customer_changelist")
    preview = upload(second, url, [["name", "company"], ["Bob", "Race Holdings"], ["Cy", " race  HOLDINGS"]])

    with Held(lambda: second.post(f"{url}process_import/", {**preview.context["confirm_form"].initial})) as held:
        writer = Thread(lambda: Customer.objects.create(name="Ann", company_name="RACE holdings").company_id)
        writer.start()
        waits_on_a_lock(writer)
        assert held.commit().status_code == 302

    assert writer.answer() == Customer.objects.get(name="Bob").company_id == Customer.objects.get(name="Cy").company_id
    assert Company.objects.filter(name_key="race holdings").count() == 1


@for_postgresql
def test_a_quick_action_for_a_customer_deleted_while_it_waits_adds_nothing():
    customer = CustomerFactory(name="Ann")
    first, second = managers("first", "second")
    url = reverse("admin:customers_customer_quick_action", args=[customer.pk, "interaction"])
    data = {"interaction-interaction_type": "call", "interaction-notes": "Called"}

    with Held(written_by(first, customer, gone=True)) as held:
        response = posted_meanwhile(held, second, url, data)

    assert response.status_code == 200
    assert response.context["form"].non_field_errors() == ["This customer is no longer among the records you may see."]
    assert stored(customer) is None
    assert not Interaction.objects.exists()


@for_postgresql
def test_a_quick_task_for_an_opportunity_deleted_while_it_saves_is_a_form_error():
    customer = CustomerFactory(name="Ann")
    deal = OpportunityFactory(customer=customer, title="Deal", stage=Opportunity.Stage.LEAD)
    first, second = managers("first", "second")
    url = reverse("admin:customers_customer_quick_action", args=[customer.pk, "task"])
    data = {"task-title": "Call about the deal", "task-kind": "call", "task-opportunity": str(deal.pk)}

    with Held(written_by(first, deal, gone=True)) as held:
        response = posted_meanwhile(held, second, url, data)

    assert response.status_code == 200
    # The tasks API's own answer for an opportunity that is not there, on the form's field.
    assert response.context["form"].errors["opportunity"] == [f'Invalid pk "{deal.pk}" - object does not exist.']
    assert stored(deal) is None
    assert not customer.tasks.exists()


@for_postgresql
@pytest.mark.parametrize("gone", [False, True], ids=["changed", "deleted"])
@pytest.mark.parametrize("to", [{"stage": "proposal"}, {"stage": "lost", "lost_reason": "Price"}], ids=["open", "lost"])
def test_a_board_move_while_someone_else_writes_the_card_waits_and_is_refused(gone, to):
    deal = OpportunityFactory(title="Deal", stage=Opportunity.Stage.LEAD)
    first, second = managers("first", "second")
    shown = {"opportunity": deal.pk, **to, "version": stored(deal).updated_at.isoformat()}

    with Held(written_by(first, deal, gone, title="Deal by the first")) as held:
        url = reverse("admin:opportunities_opportunity_board_move")
        response = posted_meanwhile(held, second, url, shown, HTTP_ACCEPT="application/json")

    assert response.status_code == (404 if gone else 409)
    assert response.json()["success"] is False
    if gone:
        assert stored(deal) is None
        assert deal.history.first().history_type == "-"
    else:
        assert (stored(deal).title, stored(deal).stage, stored(deal).lost_reason) == (
            "Deal by the first",
            Opportunity.Stage.LEAD,
            "",
        )


@for_postgresql
def test_a_lost_card_moved_away_while_someone_else_reopens_it_is_refused_as_changed_not_for_its_reason():
    # The card's form sends back the reason it shows; the other's reopening cleared it. The move is refused for the
    # version it showed (409), as any move of a card changed meanwhile, not for a "new" reason (400).
    deal = OpportunityFactory(title="Deal", stage=Opportunity.Stage.LOST, lost_reason="Price")
    first, second = managers("first", "second")
    shown = {"opportunity": deal.pk, "stage": "proposal", "lost_reason": "Price"}
    shown["version"] = stored(deal).updated_at.isoformat()

    with Held(written_by(first, deal, False, stage="negotiation", lost_reason="")) as held:
        url = reverse("admin:opportunities_opportunity_board_move")
        response = posted_meanwhile(held, second, url, shown, HTTP_ACCEPT="application/json")

    assert response.status_code == 409
    assert "changed by someone else meanwhile" in response.json()["message"]
    assert (stored(deal).stage, stored(deal).lost_reason) == (Opportunity.Stage.NEGOTIATION, "")


@for_postgresql
@pytest.mark.parametrize("gone", [False, True], ids=["changed", "deleted"])
def test_a_merge_while_someone_else_writes_one_of_its_records_waits_and_is_refused(gone):
    survivor, other = CustomerFactory(name="Ann"), CustomerFactory(name="Ann B")
    first, second = managers("first", "second")
    url = f"{reverse('admin:customers_customer_merge')}?ids={survivor.pk},{other.pk}"
    seen = {f"version:{r.pk}": stored(r).updated_at.isoformat() for r in (survivor, other)}

    with Held(written_by(first, other, gone, name="Ann by the first")) as held:
        response = posted_meanwhile(held, second, url, {"survivor": survivor.pk, "confirm": "yes", **seen})

    assert response.status_code in (200, 302)
    shown = [str(message) for message in response.wsgi_request._messages]
    assert (f"No customer with id {other.pk}." if gone else "Ann by the first was changed meanwhile") in shown[0]
    assert stored(survivor).name == "Ann"
    if gone:
        assert stored(other) is None
        assert other.history.first().history_type == "-"
    else:
        assert stored(other).name == "Ann by the first"


@for_postgresql
@pytest.mark.parametrize("where", ["admin", "api"])
def test_a_customer_deleted_while_one_of_its_deals_is_moved_waits_and_takes_the_move_with_it(where, api):
    customer = CustomerFactory(name="Ann")
    deal = OpportunityFactory(customer=customer, title="Deal", stage=Opportunity.Stage.LEAD)
    first, second = managers("first", "second")
    shown = {"opportunity": deal.pk, "stage": "proposal", "version": stored(deal).updated_at.isoformat()}
    moved = Held(
        lambda: first.post(reverse("admin:opportunities_opportunity_board_move"), shown, HTTP_ACCEPT="application/json")
    )
    if where == "admin":
        deleted = Thread(lambda: second.post(delete_url(customer), {"post": "yes"}))
    else:
        deleted = Thread(lambda: api.delete(f"/api/customers/{customer.pk}"))

    with moved:
        deleted.start()
        waits_on_a_lock(deleted)
        assert moved.commit().status_code == 200
        response = deleted.answer()

    # Its step to "proposal", logged by the move, went with the deal, rather than failing the delete's COMMIT.
    assert response.status_code == (302 if where == "admin" else 200)
    assert stored(customer) is None and stored(deal) is None
    assert not StageChange.objects.filter(opportunity_id=deal.pk).exists()


@for_postgresql
def test_a_company_deleted_while_a_deal_is_added_to_one_of_its_people_waits_and_unlinks_it():
    company = CompanyFactory(name="Acme")
    customer = CustomerFactory(name="Ann", company=company)
    first, second = managers("first", "second")
    url = reverse("admin:customers_customer_quick_action", args=[customer.pk, "opportunity"])

    with Held(lambda: first.post(url, {"opportunity-title": "Deal", "opportunity-stage": "lead"})) as held:
        response = posted_meanwhile(held, second, delete_url(company), {"post": "yes"})

    # Rather than a deadlock: the deal added first, then unlinked from the company with its people.
    assert response.status_code == 302
    assert stored(company) is None
    deal = Opportunity.objects.get(customer=customer)
    assert (deal.title, deal.company_id, stored(customer).company_id) == ("Deal", None, None)


@for_postgresql
def test_a_post_for_a_record_out_of_the_users_book_locks_nothing():
    # A rep's post to the page of a record they cannot see is not found; it must not wait for (or hold up)
    # the writers of that record.
    customer = CustomerFactory(owner=staff("other", "Sales rep")[0], name="Ann")
    _, rep = staff("rep", "Sales rep")
    held = Held(lambda: list(type(customer)._base_manager.select_for_update().filter(pk=customer.pk)))
    with held:
        with connection.cursor() as cursor:
            cursor.execute("SET lock_timeout = '2s'")
        try:
            answer = rep.post(change_url(customer), {"name": "Mine now", "_save": "Save"})
        finally:
            with connection.cursor() as cursor:
                cursor.execute("SET lock_timeout = 0")
    assert answer.status_code in (302, 404)
    assert stored(customer).name == "Ann"


@for_postgresql
def test_a_company_page_post_holds_up_no_one_writing_the_rows_of_its_read_only_lists():
    # The company page lists its people and deals read-only: its post cannot change them, so it neither waits
    # for their writers nor holds them up.
    company = CompanyFactory(name="Acme")
    person = CustomerFactory(name="Ann", company=company)
    deal = OpportunityFactory(customer=person, title="Deal")
    first, second = managers("first", "second")
    url = change_url(company)
    page = opened(second, url)
    assert page["customers-0-id"] == [str(person.pk)] and page["opportunities-0-id"] == [str(deal.pk)]

    person_saved = written_by(first, person, gone=False, name="Ann by the first")
    deal_saved = written_by(first, deal, gone=False, title="Deal by the first")
    with Held(lambda: (person_saved(), deal_saved())) as held, no_waiting_on_locks():
        response = second.post(url, saved(page, industry="Software"))
        assert [answer.status_code for answer in held.commit()] == [302, 302]

    assert response.status_code == 302
    assert stored(company).industry == "Software"
    assert (stored(person).name, stored(deal).title) == ("Ann by the first", "Deal by the first")


@for_postgresql
def test_a_page_post_holds_up_no_one_writing_an_inline_row_it_does_not_name():
    # A deal added to the customer since the page was shown is not among its rows: the post cannot change it.
    customer = CustomerFactory(name="Ann")
    shown = OpportunityFactory(customer=customer, title="Shown")
    first, second = managers("first", "second")
    url = change_url(customer)
    page = opened(second, url)
    added = OpportunityFactory(customer=customer, title="Added")

    with Held(written_by(first, added, gone=False, title="Added by the first")) as held, no_waiting_on_locks():
        response = second.post(url, saved(page, **{"opportunities-0-title": "Shown by the second"}))
        assert held.commit().status_code == 302

    assert response.status_code == 302
    assert (stored(shown).title, stored(added).title) == ("Shown by the second", "Added by the first")


def _moved(kind):
    """A record, the field of its page that names a parent, and the parent its page moves it to."""
    if kind == "customer to a company":
        return CustomerFactory(name="Ann", company=CompanyFactory(name="Kept")), "company", CompanyFactory(name="Gone")
    if kind == "deal to a customer":
        return OpportunityFactory(title="Deal"), "customer", CustomerFactory(name="Gone")
    if kind == "deal to a company":
        return OpportunityFactory(title="Deal"), "company", CompanyFactory(name="Gone")
    if kind == "interaction to a customer":
        return InteractionFactory(notes="Called"), "customer", CustomerFactory(name="Gone")
    task = TaskFactory(title="Call")
    return task, "opportunity", OpportunityFactory(customer=task.customer, title="Gone")


@for_postgresql
@pytest.mark.parametrize(
    "kind",
    ["customer to a company", "deal to a customer", "deal to a company", "interaction to a customer", "task to a deal"],
)
def test_a_record_moved_to_a_parent_deleted_meanwhile_is_refused_on_the_form(kind):
    # The page names the parent; its delete commits while the page's save waits: the page must not save the
    # record pointing at it (a server error at its COMMIT, where the foreign key is checked).
    record, field, gone = _moved(kind)
    before = getattr(stored(record), f"{field}_id")
    first, second = managers("first", "second")
    page = opened(second, change_url(record))

    with Held(lambda: first.post(delete_url(gone), {"post": "yes"})) as held:
        response = posted_meanwhile(held, second, change_url(record), saved(page, **{field: str(gone.pk)}))

    assert response.status_code == 200
    assert "Select a valid choice" in str(response.context["adminform"].form.errors[field])
    assert stored(gone) is None
    assert getattr(stored(record), f"{field}_id") == before


@for_postgresql
def test_a_customer_added_to_a_company_deleted_meanwhile_is_refused_on_the_form():
    company = CompanyFactory(name="Gone")
    first, second = managers("first", "second")
    url = reverse("admin:customers_customer_add")
    page = opened(second, url)

    with Held(lambda: first.post(delete_url(company), {"post": "yes"})) as held:
        response = posted_meanwhile(held, second, url, saved(page, name="Ann", company=str(company.pk)))

    assert response.status_code == 200
    assert "Select a valid choice" in str(response.context["adminform"].form.errors["company"])
    assert stored(company) is None
    assert not Customer.objects.exists()


@for_postgresql
@pytest.mark.parametrize("change", ["company", "deal added"])
def test_a_customer_page_and_a_delete_of_its_company_do_not_deadlock(change):
    # A company's delete locks the company, then its people. A customer's page posted locks the customer,
    # and the company its save points at (the customer's new one, or the one of a deal added on the page) is
    # locked by that save's foreign key check at COMMIT: the page must take its companies (the customer's and
    # the one it names) before the customer, or the two deadlock.
    company = CompanyFactory(name="Acme")
    customer = CustomerFactory(name="Ann", company=None if change == "company" else company)
    _, client = staff("boss", "Sales manager")
    url = change_url(customer)
    page = opened(client, url)
    if change == "company":
        data = saved(page, company=str(company.pk))
    else:
        data = saved(page, **{"opportunities-TOTAL_FORMS": "1", "opportunities-0-title": "Deal"})
        data |= {
            "opportunities-0-stage": ["lead"],
            "opportunities-0-probability": ["10"],
            "opportunities-0-value": ["0"],
        }

    answer, errors = deadlocked(customer, company, lambda: client.post(url, data))

    assert not errors
    assert not isinstance(answer, Exception), answer
    assert answer.status_code == 302
    assert stored(customer).company_id == company.pk
    if change == "deal added":
        assert Opportunity.objects.get(customer=customer).company_id == company.pk


def _deleting(client, company, how):
    """A post of ``client`` that deletes ``company``: on its page, or with "Delete selected" on the list (its
    preview's Confirm)."""
    if how == "page":
        return lambda: client.post(delete_url(company), {"post": "yes"})
    url = reverse("admin:companies_company_changelist")
    preview = client.post(url, {"action": "delete_selected", "post": "yes", "_selected_action": [company.pk]})
    confirm = {}
    for name, value in preview.context["confirm_data"]:
        confirm.setdefault(name, []).append(value)
    confirm[preview.context["confirm_field"]] = "yes"
    return lambda: client.post(url, confirm)


@for_postgresql
@pytest.mark.parametrize("how", ["page", "action"])
@pytest.mark.parametrize("page_of", ["person", "deal"])
def test_a_page_posted_while_its_companys_delete_waits_for_one_of_its_people_does_not_deadlock(page_of, how):
    # A company's delete locks the company, then its people, then deletes the company. Here it waits for the
    # person (held by a third transaction) when the page of that person, or of their deal, is posted: the
    # page holds the company as its foreign key's check would, then waits for the person too. Were the delete
    # to take the company as its DELETE does only then, the page's hold would stop the DELETE while the page
    # waits for the person: a deadlock. It takes it so at once, and the page waits for the delete.
    company = CompanyFactory(name="Acme")
    person = CustomerFactory(name="Ann", company=company)
    deal = OpportunityFactory(customer=person, title="Deal")
    record, field = (person, "name") if page_of == "person" else (deal, "title")
    first, second = managers("first", "second")
    data = saved(opened(second, change_url(record)), **{field: "Changed by the second"})
    deleting = _deleting(first, company, how)
    answers = {}

    errors = in_turn(
        lambda: list(Customer.objects.select_for_update().filter(pk=person.pk)),
        lambda: answers.setdefault("delete", deleting()),
        lambda: answers.setdefault("page", second.post(change_url(record), data)),
        atomic=False,
    )

    assert not errors
    assert answers["delete"].status_code == 302
    assert stored(company) is None and stored(person).company_id is None and stored(deal).company_id is None
    # The page, posted with the company it showed, finds it gone: refused on the field, nothing saved.
    assert answers["page"].status_code == 200
    assert "company" in answers["page"].context["adminform"].form.errors
    assert getattr(stored(record), field) == ("Ann" if page_of == "person" else "Deal")


# An import's rows, each naming a customer (by id or email), for the import screen of each kind of record below one.
IMPORTED_BELOW_A_CUSTOMER = {
    "interactions": (Interaction, ["interaction_type", "notes"], ["call", "Called"]),
    "opportunities": (Opportunity, ["title"], ["Deal"]),
    "tasks": (Task, ["title"], ["Call back"]),
}


@for_postgresql
@pytest.mark.parametrize("named_by", ["id", "email", "email beyond ASCII"])
@pytest.mark.parametrize("records", IMPORTED_BELOW_A_CUSTOMER)
def test_an_import_naming_a_customer_deleted_meanwhile_refuses_its_row_and_imports_nothing(records, named_by):
    # The customer's delete commits while the import waits: its row must not be written pointing at it (a server
    # error at the import's COMMIT, where the foreign key is checked), nor any other row of the file. The customer
    # named by email is held as the row finds it, by the database's LOWER() of both sides.
    model, columns, cells = IMPORTED_BELOW_A_CUSTOMER[records]
    email, named = EMAILS_BEYOND_ASCII["final sigma"] if named_by == "email beyond ASCII" else ("gone@example.com",) * 2
    gone = CustomerFactory(name="Gone", email=email)
    kept = CustomerFactory(name="Kept")
    if named_by != "email beyond ASCII":
        named = str(gone.pk) if named_by == "id" else "GONE@example.com"
    first, second = managers("first", "second")
    url = reverse(f"admin:{model._meta.app_label}_{model._meta.model_name}_changelist")
    preview = upload(second, url, [["customer", *columns], [kept.pk, *cells], [named, *cells]])
    assert preview.context.get("confirm_form") is not None

    with Held(written_by(first, gone, gone=True)) as held:
        response = posted_meanwhile(held, second, f"{url}process_import/", {**preview.context["confirm_form"].initial})

    assert response.status_code == 200
    page = response.content.decode()
    assert "Nothing was imported" in page and f"No customer with id or email “{named}”" in page
    assert stored(gone) is None
    assert not model.objects.exists()


@for_postgresql
def test_an_import_naming_a_company_deleted_meanwhile_links_its_customer_as_after_the_delete():
    # The company's delete commits while the import waits: the row's customer is linked by the company's name as
    # it would be after the delete (to a company of that name, made anew), not to the one deleted.
    company = CompanyFactory(name="Acme")
    first, second = managers("first", "second")
    url = reverse("admin:customers_customer_changelist")
    preview = upload(second, url, [["name", "company"], ["Ann", "ACME"]])
    assert preview.context.get("confirm_form") is not None

    with Held(written_by(first, company, gone=True)) as held:
        response = posted_meanwhile(held, second, f"{url}process_import/", {**preview.context["confirm_form"].initial})

    assert response.status_code == 302
    assert stored(company) is None
    ann = Customer.objects.get(name="Ann")
    assert ann.company_id != company.pk and ann.company.name == "ACME"


@for_postgresql
def test_an_import_of_deals_and_a_delete_of_their_company_do_not_deadlock():
    # A company's delete locks the company, then its people and deals. The import locks the deals its rows
    # update, and a deal it adds takes its customer's company, whose key is checked at COMMIT: the import must
    # hold that company before any deal, or the delete, holding the company and waiting for a deal of the import,
    # deadlocks it.
    company = CompanyFactory(name="Acme")
    customer = CustomerFactory(name="Ann", company=company)
    deal = OpportunityFactory(customer=customer, title="Deal")
    waited = OpportunityFactory(title="Waited for")
    first, second = managers("first", "second")
    preview = upload(
        second,
        LIST_URL,
        [
            ["id", "customer", "title"],
            [deal.pk, customer.pk, "Deal 2"],
            [waited.pk, waited.customer_id, "Waited for 2"],
            ["", customer.pk, "Added"],
        ],
    )
    data = {**preview.context["confirm_form"].initial}
    deleting = _deleting(first, company, "page")
    answers = {}

    errors = in_turn(
        lambda: list(Opportunity.objects.select_for_update().filter(pk=waited.pk)),
        lambda: answers.setdefault("import", second.post(f"{LIST_URL}process_import/", data)),
        lambda: answers.setdefault("delete", deleting()),
        atomic=False,
    )

    assert not errors
    assert answers["import"].status_code == 302, answers["import"].content.decode()[-3000:]
    assert answers["delete"].status_code == 302
    # The delete waited for the import, then left its deals without a company, the one added too.
    assert stored(company) is None
    assert sorted(Opportunity.objects.filter(customer=customer).values_list("title", "company")) == [
        ("Added", None),
        ("Deal 2", None),
    ]


@for_postgresql
def test_a_revert_of_a_record_deleted_while_it_waits_does_not_create_it_again():
    customer = CustomerFactory(name="Original")
    customer.name = "Renamed"
    customer.save()
    first, second = managers("first", "second")
    url = reverse("admin:customers_customer_simple_history", args=[customer.pk, customer.history.earliest().history_id])
    page = opened(second, url)

    with Held(written_by(first, customer, gone=True)) as held:
        response = posted_meanwhile(held, second, url, saved(page))

    assert stored(customer) is None
    assert response.status_code == 404
