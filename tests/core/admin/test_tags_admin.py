"""Tags in the admin: chips, the tag filter, add/remove actions (with their history), editing, the Tag admin."""

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext
from django.urls import reverse

from companies.models import Company
from core import tags
from core.admin.tags import TagAdminForm
from core.models import Event, Tag
from core.rowlocks import lock_keys
from customers.models import Customer
from opportunities.models import Opportunity
from tests.concurrency import Held, Thread, a_session_waits, deadlocked, in_turn, no_waiting_on_locks
from tests.core.admin.helpers import (
    change_form_data,
    confirm,
    export_data,
    import_rows,
    preview_then_confirm,
    read_csv,
    staff,
    upload,
)
from tests.factories import CompanyFactory, CustomerFactory, OpportunityFactory

pytestmark = pytest.mark.django_db

MODELS = {"customer": Customer, "company": Company, "opportunity": Opportunity}


def list_url(model):
    return reverse(f"admin:{model._meta.app_label}_{model._meta.model_name}_changelist")


def record_of(kind, owner, **kwargs):
    if kind == "customer":
        return CustomerFactory(owner=owner, **kwargs)
    if kind == "company":
        return CompanyFactory(owner=owner, **kwargs)
    return OpportunityFactory(customer=CustomerFactory(owner=owner), **kwargs)


def set_tags(record, names):
    record.tags = names
    record.save()
    return record


@pytest.mark.parametrize("kind", MODELS)
def test_changelist_shows_chips_and_filters_by_tag(kind):
    manager, client = staff("boss", "Sales manager")
    Tag.objects.create(name="VIP", colour="#ff0000")
    tagged = set_tags(record_of(kind, manager), ["vip", "hot"])
    plain = record_of(kind, manager)
    model = MODELS[kind]
    page = client.get(list_url(model)).content.decode()
    assert 'class="tag-chip"' in page and "#ff0000" in page and ">hot<" in page
    filtered = client.get(list_url(model), {"tag": "vip"})
    assert [row.pk for row in filtered.context["cl"].result_list] == [tagged.pk]
    assert plain.pk not in [row.pk for row in client.get(list_url(model), {"tag": "VIP"}).context["cl"].result_list]
    assert list(client.get(list_url(model), {"tag": "nosuch"}).context["cl"].result_list) == []


@pytest.mark.parametrize("kind", MODELS)
def test_changelist_queries_do_not_grow_with_tagged_rows(kind):
    manager, client = staff("boss", "Sales manager")

    def count():
        with CaptureQueriesContext(connection) as captured:
            assert client.get(list_url(MODELS[kind])).status_code == 200
        return len(captured)

    set_tags(record_of(kind, manager), ["a", "b"])
    small = count()
    for index in range(4):
        set_tags(record_of(kind, manager), ["a", f"t{index}"])
    assert count() == small


@pytest.mark.parametrize("kind", MODELS)
def test_manager_adds_and_removes_a_tag_in_bulk_with_history(kind):
    manager, client = staff("boss", "Sales manager")
    tag = Tag.objects.create(name="VIP")
    first, second = set_tags(record_of(kind, manager), ["other"]), record_of(kind, manager)
    model = MODELS[kind]
    selected = {"_selected_action": [first.pk, second.pk], "index": "0"}
    # The intermediate page asks for the tag.
    page = client.post(list_url(model), {**selected, "action": "add_tag"})
    assert page.status_code == 200 and 'name="tag"' in page.content.decode()
    assert (
        preview_then_confirm(
            client, list_url(model), {**selected, "action": "add_tag", "confirm": "yes", "tag": tag.pk}
        ).status_code
        == 302
    )
    for record in (first, second):
        record.refresh_from_db()
        assert "VIP" in record.tags and record.tag_set.filter(pk=tag.pk).exists()
        assert record.history.order_by("-history_id").first().history_user == manager
    assert Event.objects.filter(object_id=first.pk, type__endswith=".updated").latest("id").data["tags"] == [
        "other",
        "VIP",
    ]
    preview_then_confirm(client, list_url(model), {**selected, "action": "remove_tag", "confirm": "yes", "tag": tag.pk})
    first.refresh_from_db()
    second.refresh_from_db()
    assert (first.tags, second.tags) == (["other"], [])
    assert not tag.customers.exists() and not tag.companies.exists() and not tag.opportunities.exists()


@pytest.mark.parametrize("kind", MODELS)
def test_a_rep_tags_only_their_own_records_and_read_only_users_not_at_all(kind):
    rep_a, client_a = staff("rep_a", "Sales rep")
    rep_b, _ = staff("rep_b", "Sales rep")
    _, reader = staff("reader", "Read-only")
    tag = Tag.objects.create(name="VIP")
    mine, theirs = record_of(kind, rep_a), record_of(kind, rep_b)
    model = MODELS[kind]
    data = {"_selected_action": [mine.pk, theirs.pk], "index": "0", "action": "add_tag", "confirm": "yes"}
    preview_then_confirm(client_a, list_url(model), {**data, "tag": tag.pk})
    mine.refresh_from_db()
    theirs.refresh_from_db()
    assert (mine.tags, theirs.tags) == (["VIP"], [])
    reader.post(list_url(model), {**data, "_selected_action": [theirs.pk], "tag": tag.pk, "preview_confirmed": "yes"})
    theirs.refresh_from_db()
    assert theirs.tags == []
    assert "add_tag" not in reader.get(list_url(model)).content.decode()


def test_change_form_edits_tags_with_an_autocomplete():
    manager, client = staff("boss", "Sales manager")
    vip, hot = Tag.objects.create(name="VIP"), Tag.objects.create(name="hot")
    customer = set_tags(CustomerFactory(owner=manager), ["vip"])
    url = reverse("admin:customers_customer_change", args=[customer.pk])
    page = client.get(url)
    assert "admin-autocomplete" in page.content.decode()
    data = change_form_data(page)
    assert data["tags"] == [str(vip.pk)]
    data["tags"] = [str(vip.pk), str(hot.pk)]
    assert client.post(url, data).status_code == 302
    customer.refresh_from_db()
    assert customer.tags == ["hot", "VIP"]
    assert customer.history.order_by("-history_id").first().tags == ["hot", "VIP"]
    # The autocomplete offers the tags to a rep too.
    _, rep_client = staff("rep", "Sales rep")
    found = rep_client.get(
        reverse("admin:autocomplete"),
        {"app_label": "customers", "model_name": "customer", "field_name": "tag_set", "term": "vi"},
    )
    assert [row["text"] for row in found.json()["results"]] == ["VIP"]


def test_tag_admin_is_for_managers_to_write():
    manager, client = staff("boss", "Sales manager")
    rep_user, rep_client = staff("rep", "Sales rep")
    add = reverse("admin:core_tag_add")
    assert rep_client.get(reverse("admin:core_tag_changelist")).status_code == 200
    assert rep_client.post(add, {"name": "Nope"}).status_code == 403
    assert client.post(add, {"name": " Key  account ", "colour": "#AABBCC"}).status_code == 302
    tag = Tag.objects.get()
    assert (tag.name, tag.colour, tag.created_by) == ("Key account", "#aabbcc", manager)
    duplicate = client.post(add, {"name": "KEY ACCOUNT"})
    assert duplicate.status_code == 200 and Tag.objects.count() == 1
    bad = client.post(add, {"name": "x", "colour": "red"})
    assert bad.status_code == 200 and Tag.objects.count() == 1
    customer = set_tags(CustomerFactory(owner=rep_user), ["key account"])
    change = reverse("admin:core_tag_change", args=[tag.pk])
    assert client.post(change, {"name": "Strategic", "colour": ""}).status_code == 302
    customer.refresh_from_db()
    assert customer.tags == ["Strategic"]
    assert client.post(reverse("admin:core_tag_delete", args=[tag.pk]), {"post": "yes"}).status_code == 302
    customer.refresh_from_db()
    assert customer.tags == [] and not Tag.objects.exists()


@pytest.mark.django_db(transaction=True)
@pytest.mark.skipif(connection.vendor != "postgresql", reason="two connections at once: PostgreSQL")
def test_a_tag_renamed_in_the_admin_while_it_is_deleted_answers_a_form_error():
    # Not a 500, and not the tag written again (without its records) by the rename's save.
    _, client = staff("boss", "Sales manager")
    tag = Tag.objects.create(name="vip")
    change = reverse("admin:core_tag_change", args=[tag.pk])
    answers = []

    errors = in_turn(
        lambda: tags.delete_tag(Tag.objects.get(pk=tag.pk)),
        lambda: answers.append(client.post(change, {"name": "Strategic", "colour": ""})),
    )

    assert not errors
    assert answers[0].status_code == 200
    assert "This tag was deleted meanwhile." in answers[0].context["adminform"].form.non_field_errors()
    assert not Tag.objects.exists()


def _freed_and_taken_again_at_the_retry(monkeypatch):
    """When the page checks the name the second time (its retry, after losing it once), the first writer's tag
    is renamed first (committed: the name is free for that check), then a third writer inserts the name and
    holds it until the page's save waits for it, then commits: the retry's save loses the name again. Each step
    starts only once the one before it is done, whatever the machine's load."""
    clean_name, checks, committers = TagAdminForm.clean_name, [], []

    def commit_once_the_page_waits(third):
        third.page_waited = a_session_waits()
        third.release.set()

    def checked_twice(form):
        checks.append(form)
        if len(checks) == 2:
            renamer = Thread(lambda: tags.save_tag(Tag.objects.get(key="strategic"), name="Gone"))
            renamer.start()
            renamer.answer()
            third = Held(lambda: Tag.objects.create(name="STRATEGIC")).__enter__()
            committers.append((Thread(lambda: commit_once_the_page_waits(third)), third))
            committers[-1][0].start()
        return clean_name(form)

    monkeypatch.setattr(TagAdminForm, "clean_name", checked_twice)
    return committers


@pytest.mark.django_db(transaction=True)
@pytest.mark.skipif(connection.vendor != "postgresql", reason="two connections at once: PostgreSQL")
@pytest.mark.parametrize("lost", ["once", "again on the retry"])
@pytest.mark.parametrize("page", ["add", "change"])
def test_a_tag_name_taken_between_the_form_check_and_the_save_is_a_form_error(page, lost, monkeypatch):
    # The other transaction creates "Strategic" after the form found the name free; the save waits for
    # it on the unique key, then is refused: an error on the name, not a 500, and nothing written. The page
    # is answered again, its form checking the name anew. Should that check find the name free again (the
    # first writer's tag renamed meanwhile) and the save lose it once more (a third writer took it), the
    # name is refused all the same.
    _, client = staff("boss", "Sales manager")
    tag = Tag.objects.create(name="vip")
    url = reverse("admin:core_tag_add") if page == "add" else reverse("admin:core_tag_change", args=[tag.pk])
    answers = []
    committers = _freed_and_taken_again_at_the_retry(monkeypatch) if lost != "once" else []

    errors = in_turn(
        lambda: Tag.objects.create(name="Strategic"),
        lambda: answers.append(client.post(url, {"name": "strategic", "colour": ""})),
        atomic=False,
    )
    for committer, third in committers:
        committer.answer()
        third.answer()
        assert getattr(third, "page_waited", False), "the retry's save never waited for the third writer"

    assert not errors
    assert answers[0].status_code == 200
    assert answers[0].context["adminform"].form.errors == {"name": ["A tag with this name already exists."]}
    names = ["Gone", "STRATEGIC", "vip"] if committers else ["Strategic", "vip"]
    assert sorted(Tag.objects.values_list("name", flat=True)) == names


def _record_page_posted_while(change_tag):
    """A customer tagged "vip", its admin page read, then posted (its name changed to "After") while
    ``change_tag(tag)`` holds the tag in another transaction. Returns (the answer, the customer, errors)."""
    manager, client = staff("boss", "Sales manager")
    customer = set_tags(CustomerFactory(owner=manager, name="Before"), ["vip"])
    tag = Tag.objects.get(key="vip")
    change = reverse("admin:customers_customer_change", args=[customer.pk])
    data = {**change_form_data(client.get(change)), "name": "After"}
    answers = []

    errors = in_turn(lambda: change_tag(Tag.objects.get(pk=tag.pk)), lambda: answers.append(client.post(change, data)))

    customer.refresh_from_db()
    return answers[0] if answers else None, customer, errors


@pytest.mark.django_db(transaction=True)
@pytest.mark.skipif(connection.vendor != "postgresql", reason="two connections at once: PostgreSQL")
def test_a_record_saved_in_the_admin_while_its_tag_is_renamed_keeps_the_new_name():
    # The page was read before the rename; the rename rewrites the record's names first, and the page's
    # save (tags untouched) must not write the old ones back over them.
    answer, customer, errors = _record_page_posted_while(lambda tag: tags.save_tag(tag, name="Key account"))

    assert not errors
    assert answer.status_code == 302
    assert (customer.name, customer.tags) == ("After", ["Key account"])
    assert list(customer.tag_set.values_list("name", flat=True)) == ["Key account"]


@pytest.mark.django_db(transaction=True)
@pytest.mark.skipif(connection.vendor != "postgresql", reason="two connections at once: PostgreSQL")
def test_a_record_saved_in_the_admin_while_its_tag_is_deleted_is_refused_on_the_form():
    # The tag is no longer a choice: not its name written back without the tag, nor the tag made again.
    answer, customer, errors = _record_page_posted_while(tags.delete_tag)

    assert not errors
    assert answer.status_code == 200 and "tags" in answer.context["adminform"].form.errors
    assert (customer.name, customer.tags, list(customer.tag_set.all())) == ("Before", [], [])
    assert not Tag.objects.exists()


@pytest.mark.django_db(transaction=True)
@pytest.mark.skipif(connection.vendor != "postgresql", reason="two connections at once: PostgreSQL")
def test_an_import_and_a_rename_of_a_tag_one_of_its_records_carries_do_not_deadlock():
    # The import (one transaction) locks the first row's record (carrying "vip"), then waits for the
    # second's (held by another transaction first); the rename holds "vip" and waits for the first
    # record; the import then links "vip" to the second record: it must hold the tags its rows may
    # link before it locks any record, or the two deadlock (a failed import, or a failed rename).
    manager, client = staff("boss", "Sales manager")
    carrier = set_tags(CustomerFactory(owner=manager, name="Carrier"), ["vip"])
    other = CustomerFactory(owner=manager, name="Other")
    tag = Tag.objects.get(key="vip")
    preview = upload(
        client,
        list_url(Customer),
        [["id", "name", "tags"], [carrier.pk, "Carrier 2", "vip"], [other.pk, "Other", "vip"]],
    )
    answers = []

    errors = in_turn(
        lambda: Customer.objects.select_for_update().get(pk=other.pk),
        lambda: answers.append(confirm(client, list_url(Customer), preview)),
        lambda: tags.save_tag(Tag.objects.get(pk=tag.pk), name="Key account"),
    )

    assert not errors
    assert answers[0].status_code == 302
    assert Customer.objects.get(pk=carrier.pk).tags == ["Key account"]
    other = Customer.objects.get(pk=other.pk)
    assert other.tags == ["Key account"]
    assert list(other.tag_set.values_list("name", flat=True)) == ["Key account"]


@pytest.mark.django_db(transaction=True)
@pytest.mark.skipif(connection.vendor != "postgresql", reason="two connections at once: PostgreSQL")
def test_an_import_aborted_in_a_deadlock_says_so_with_nothing_written():
    # Should an import still meet a deadlock (here with a transaction locking its two records the other
    # way round), the row says why, and nothing of the file is imported.
    manager, client = staff("boss", "Sales manager")
    first = CustomerFactory(owner=manager, name="First")
    second = CustomerFactory(owner=manager, name="Second")
    preview = upload(client, list_url(Customer), [["id", "name"], [first.pk, "First 2"], [second.pk, "Second 2"]])

    answer, errors = deadlocked(first, second, lambda: confirm(client, list_url(Customer), preview))

    assert not errors
    assert answer.status_code == 200, answer
    assert "Another change of the same records was under way at the same moment" in answer.content.decode()
    assert sorted(Customer.objects.values_list("name", flat=True)) == ["First", "Second"]


def test_admin_export_and_import_carry_tags():
    manager, client = staff("boss", "Sales manager")
    set_tags(CustomerFactory(owner=manager, name="Tagged", email="t@example.com"), ["b", "a"])
    export_url = reverse("admin:customers_customer_export")
    exported = client.post(export_url, export_data(client.get(export_url).context["form"]))
    rows = read_csv(exported)
    assert [row["tags"] for row in rows if row.get("tags")] == ["a, b"]
    response = import_rows(
        client,
        list_url(Customer),
        [["name", "email", "标签"], ["Imported", "imported@example.com", "vip, Hot ,"]],
    )
    assert response.status_code == 302
    imported = Customer.objects.get(name="Imported")
    assert imported.tags == ["Hot", "vip"] and imported.tag_set.count() == 2
    # A bad name in the cell is that row's error, and nothing is written.
    preview = import_rows_preview(client, [["name", "tags"], ["Bad", "ok, " + "x" * 60]])
    assert preview.status_code == 200 and "at most 50 characters" in preview.content.decode()
    assert not Customer.objects.filter(name="Bad").exists()


def import_rows_preview(client, rows):
    return upload(client, list_url(Customer), rows)


def test_tag_actions_and_chips_in_chinese():
    manager, client = staff("boss", "Sales manager")
    set_tags(CustomerFactory(owner=manager), ["重点客户"])
    html = client.get(list_url(Customer), HTTP_ACCEPT_LANGUAGE="zh-hans").content.decode()
    assert "添加标签…" in html and "移除标签…" in html and "重点客户" in html


@pytest.mark.parametrize("object_id", ["abc", "1.5", "1e5", "_2", "%00", "²"])
def test_a_tag_history_page_of_an_id_that_is_no_number_is_not_found(object_id):
    Tag.objects.create(name="vip")
    _, client = staff("viewer", "Sales rep")

    for method in (client.get, client.post):
        assert method(f"/admin/core/tag/{object_id}/history/").status_code == 404


def test_a_tag_history_page_shows_empty_values_as_a_dash_not_none():
    manager, client = staff("boss", "Sales manager")
    tag = Tag.objects.create(name="vip")
    tag.history.update(history_user=manager)

    html = client.get(f"/admin/core/tag/{tag.pk}/history/").content.decode()

    row = html[html.index("<tbody>") : html.index("</tbody>")]
    assert "boss" in row
    assert "None" not in row
    assert "—" in row  # no change reason


@pytest.mark.django_db(transaction=True)
@pytest.mark.skipif(connection.vendor != "postgresql", reason="two connections at once: PostgreSQL")
def test_a_record_page_and_a_rename_of_a_tag_it_carries_do_not_deadlock():
    # The page locks its record, and its form then holds the tags chosen on it; a rename holds its tag,
    # then the records carrying it. Here the form waits for a tag newly chosen (held by another
    # transaction) while the tag the record carries is renamed: the page must hold the tags its record
    # carries before the record, or the two deadlock.
    manager, client = staff("boss", "Sales manager")
    chosen = Tag.objects.create(name="Strategic")  # locked first by the form: the lower id
    customer = set_tags(CustomerFactory(owner=manager, name="Before"), ["vip"])
    carried = Tag.objects.get(key="vip")
    change = reverse("admin:customers_customer_change", args=[customer.pk])
    data = {**change_form_data(client.get(change)), "name": "After", "tags": [str(carried.pk), str(chosen.pk)]}
    answers = []

    errors = in_turn(
        lambda: Tag.objects.select_for_update().get(pk=chosen.pk),
        lambda: answers.append(client.post(change, data)),
        lambda: tags.save_tag(Tag.objects.get(pk=carried.pk), name="Key account"),
    )

    assert not errors
    assert answers[0].status_code == 302
    customer.refresh_from_db()
    assert (customer.name, customer.tags) == ("After", ["Key account", "Strategic"])


@pytest.mark.django_db(transaction=True)
@pytest.mark.skipif(connection.vendor != "postgresql", reason="two connections at once: PostgreSQL")
def test_removing_a_tag_in_bulk_and_renaming_it_do_not_deadlock():
    # The action locks its records, then takes the tag; a rename takes the tag, then its records. Here the
    # action waits for its second record (held by another transaction) while the tag is renamed: it must
    # hold the tags its records carry before them, or the two deadlock.
    manager, client = staff("boss", "Sales manager")
    first, second = (set_tags(CustomerFactory(owner=manager), ["vip"]) for _ in range(2))
    tag = Tag.objects.get(key="vip")
    selected = {"_selected_action": [first.pk, second.pk], "index": "0", "action": "remove_tag", "confirm": "yes"}
    preview = client.post(list_url(Customer), {**selected, "tag": tag.pk})
    confirm = {}
    for name, value in preview.context["confirm_data"]:
        confirm.setdefault(name, []).append(value)
    confirm[preview.context["confirm_field"]] = "yes"
    confirm[preview.context["digest_field"]] = preview.context["digest"]
    answers = []

    errors = in_turn(
        lambda: Customer.objects.select_for_update().get(pk=max(first.pk, second.pk)),
        lambda: answers.append(client.post(list_url(Customer), confirm)),
        lambda: tags.save_tag(Tag.objects.get(pk=tag.pk), name="Key account"),
    )

    assert not errors
    assert answers[0].status_code == 302
    assert [Customer.objects.get(pk=record.pk).tags for record in (first, second)] == [[], []]
    assert Tag.objects.get(pk=tag.pk).name == "Key account"


@pytest.mark.django_db(transaction=True)
@pytest.mark.skipif(connection.vendor != "postgresql", reason="two connections at once: PostgreSQL")
@pytest.mark.parametrize("action", ["add_tag", "remove_tag"])
def test_tagging_in_bulk_does_not_wait_for_records_being_pointed_at_its_records(action):
    # Another transaction holds the customer as a write pointing a new record at it does (an interaction being
    # logged): the action changes the customer, locking it as its UPDATE does, which that write does not hold up.
    manager, client = staff("boss", "Sales manager")
    customer = set_tags(CustomerFactory(owner=manager), ["vip"] if action == "remove_tag" else [])
    tag = Tag.objects.get(key="vip") if action == "remove_tag" else Tag.objects.create(name="vip")
    data = {"_selected_action": [customer.pk], "index": "0", "action": action, "confirm": "yes", "tag": tag.pk}

    with Held(lambda: lock_keys(Customer.objects.filter(pk=customer.pk))) as other, no_waiting_on_locks():
        response = preview_then_confirm(client, list_url(Customer), data)
        other.commit()

    assert response.status_code == 302
    assert Customer.objects.get(pk=customer.pk).tags == (["vip"] if action == "add_tag" else [])


def test_a_tags_delete_page_says_its_records_stay_and_lists_no_links():
    manager, client = staff("boss", "Sales manager")
    for _ in range(2):
        set_tags(record_of("customer", manager), ["vip"])
    set_tags(record_of("company", manager), ["vip"])
    tag = Tag.objects.get(key="vip")

    page = client.get(reverse("admin:core_tag_delete", args=[tag.pk])).content.decode()

    assert "relationship" not in page.lower() and "object (" not in page
    assert "The records that carry it stay, without it: 1 company, 2 customers." in page
    # Deleting it takes it off them, and deletes nothing else.
    client.post(reverse("admin:core_tag_delete", args=[tag.pk]), {"post": "yes"})
    assert not Tag.objects.exists()
    assert (Customer.objects.count(), Company.objects.count()) == (2, 1)
    assert {tuple(customer.tags) for customer in Customer.objects.all()} == {()}


def test_a_tags_delete_page_says_so_in_chinese():
    manager, client = staff("boss", "Sales manager")
    set_tags(record_of("customer", manager), ["vip"])
    tag = Tag.objects.get(key="vip")

    page = client.get(reverse("admin:core_tag_delete", args=[tag.pk]), HTTP_ACCEPT_LANGUAGE="zh-hans").content.decode()

    assert "带有此标签的记录会保留，只是去掉此标签：1 客户。" in page
