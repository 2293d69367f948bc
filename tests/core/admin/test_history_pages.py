"""History written from the admin: a form saved without a change writes nothing; a revert is written,
only by those who may change the record, and only with what they may set. A rep's history page, and the
page of a past version, name no related record of another book."""

import pytest
from django.contrib import admin
from django.contrib.auth.models import Group
from django.test import Client
from django.urls import reverse
from django.utils.text import capfirst

from core.models import Tag
from customers.models import Customer
from interactions.models import Interaction
from opportunities.models import Opportunity
from tests.conftest import browser
from tests.core.admin.helpers import change_form_data, staff
from tests.factories import (
    CompanyFactory,
    CustomerFactory,
    InteractionFactory,
    OpportunityFactory,
    TaskFactory,
    UserFactory,
)

pytestmark = pytest.mark.django_db

RECORDS = {
    "customer": (lambda: InteractionFactory(customer=OpportunityFactory().customer).customer, "name", "Renamed"),
    "interaction": (InteractionFactory, "notes", "Rewritten"),
    "opportunity": (OpportunityFactory, "title", "Retitled"),
}


def change_url(record):
    return reverse(f"admin:{record._meta.app_label}_{record._meta.model_name}_change", args=[record.pk])


def stored(record):
    return type(record)._base_manager.get(pk=record.pk)


@pytest.mark.parametrize("kind", list(RECORDS))
def test_saving_an_unchanged_form_writes_no_history_and_keeps_updated_at(admin_client, kind):
    make, _, _ = RECORDS[kind]
    record = make()
    before = stored(record)
    data = change_form_data(admin_client.get(change_url(record)))

    response = admin_client.post(change_url(record), data)

    assert response.status_code == 302, response.context["errors"] if response.context else response
    assert record.history.count() == 1
    after = stored(record)
    assert getattr(after, "updated_at", None) == getattr(before, "updated_at", None)
    # Nothing was rounded either: occurred_at keeps the microseconds the form does not show.
    assert [getattr(after, f.attname) for f in after._meta.concrete_fields] == [
        getattr(before, f.attname) for f in before._meta.concrete_fields
    ]
    if kind == "customer":
        # Nor did the unchanged inlines write anything.
        assert [Interaction.history.count(), Opportunity.history.count()] == [1, 1]


@pytest.mark.parametrize("kind", list(RECORDS))
def test_saving_a_changed_form_records_only_that_change(admin_client, admin_user, kind):
    make, field, value = RECORDS[kind]
    record = make()
    data = change_form_data(admin_client.get(change_url(record)))
    data[field] = value

    assert admin_client.post(change_url(record), data).status_code == 302

    changed, created = record.history.all()
    assert (changed.history_type, created.history_type) == ("~", "+")
    assert changed.history_user == admin_user
    assert [change.field for change in changed.diff_against(created).changes] == [field]


def test_reverting_to_an_earlier_version_is_written(admin_client):
    customer = CustomerFactory(name="Original")
    customer.name = "Renamed"
    customer.save()
    original = customer.history.earliest()
    url = reverse("admin:customers_customer_simple_history", args=[customer.pk, original.history_id])
    data = change_form_data(admin_client.get(url))

    response = admin_client.post(url, data)

    assert response.status_code == 302
    assert Customer.objects.get(pk=customer.pk).name == "Original"
    assert [record.name for record in customer.history.all()] == ["Original", "Renamed", "Original"]


@pytest.mark.parametrize("version_id", ["abc", "1.5", "1e5", "%00", "²"])
@pytest.mark.parametrize("make", [CustomerFactory, lambda: Tag.objects.create(name="vip")], ids=["customer", "tag"])
def test_a_version_page_of_a_version_that_is_no_number_is_not_found(admin_client, make, version_id):
    record = make()
    url = reverse(f"admin:{record._meta.app_label}_{record._meta.model_name}_history", args=[record.pk])

    for method in (admin_client.get, admin_client.post):
        assert method(f"{url}{version_id}/").status_code == 404
    assert record.history.count() == 1


def _staff_in(group_name, username):
    user = UserFactory(username=username, is_staff=True)
    user.groups.add(Group.objects.get(name=group_name))
    return user


def test_read_only_user_is_refused_a_revert_and_shown_no_revert_button(admin_client):
    customer = CustomerFactory(name="Original")
    customer.name = "Renamed"
    customer.save()
    url = reverse("admin:customers_customer_simple_history", args=[customer.pk, customer.history.earliest().history_id])
    data = change_form_data(admin_client.get(url))
    client = Client()
    client.force_login(_staff_in("Read-only", "auditor"))

    assert 'name="_save"' not in client.get(url).content.decode()
    assert client.post(url, data).status_code == 403
    assert Customer.objects.get(pk=customer.pk).name == "Renamed"
    assert customer.history.count() == 2


def test_a_rep_is_offered_no_revert_and_refused_one(admin_client):
    """A revert is a manager's call: a rep who owns the record changes it instead."""
    rep_a, rep_b = _staff_in("Sales rep", "rep_a"), _staff_in("Sales rep", "rep_b")
    customer = CustomerFactory(name="Original", owner=rep_b)
    customer.name, customer.owner = "Renamed", rep_a
    customer.save()
    url = reverse("admin:customers_customer_simple_history", args=[customer.pk, customer.history.earliest().history_id])
    client = Client()
    client.force_login(rep_a)

    page = client.get(url)
    assert page.status_code == 200 and 'name="_save"' not in page.content.decode()
    history = client.get(reverse("admin:customers_customer_history", args=[customer.pk])).content.decode()
    assert "Choose a date from the list below to revert" not in history
    assert client.post(url, change_form_data(admin_client.get(url))).status_code == 403
    assert (Customer.objects.get(pk=customer.pk).name, customer.history.count()) == ("Renamed", 2)


def test_a_manager_is_offered_the_revert(admin_client):
    manager = _staff_in("Sales manager", "boss")
    customer = CustomerFactory(name="Original")
    customer.name = "Renamed"
    customer.save()
    url = reverse("admin:customers_customer_simple_history", args=[customer.pk, customer.history.earliest().history_id])
    client = Client()
    client.force_login(manager)
    assert 'name="_save"' in client.get(url).content.decode()
    assert client.post(url, change_form_data(client.get(url))).status_code == 302
    assert Customer.objects.get(pk=customer.pk).name == "Original"


@pytest.mark.parametrize("role", ["Sales rep", "Sales manager"])
def test_the_history_page_shows_no_none_and_the_first_values(role):
    user = _staff_in(role, "viewer")
    customer = CustomerFactory(name="First name", email=None, phone="", owner=user, status=Customer.Status.LEAD)
    customer.name, customer.email = "Second name", "second@example.com"
    customer.save()
    # Written without a user or a reason (a command): nothing reads "None".
    client = Client()
    client.force_login(user)
    response = client.get(reverse("admin:customers_customer_history", args=[customer.pk]))
    assert response.status_code == 200
    table = response.content.decode().split('id="change-history"')[1].split("</table>")[0]
    assert "None" not in table
    newest, first = response.context["page_obj"].object_list
    assert sorted((c["field"], c["old"], c["new"]) for c in newest.history_delta_changes) == [
        ("Email", "—", "second@example.com"),
        ("Name", "First name", "Second name"),
    ]
    initial = {value["field"]: value["new"] for value in first.history_initial_values}
    assert initial["Name"] == "First name" and initial["Status"] == "Lead" and initial["Owner"] == "viewer"
    assert "Email" not in initial and "Tags" not in initial
    assert "<strong>Status:</strong> Lead" in table


def test_the_history_page_shows_tags_by_name(manager):
    customer = CustomerFactory(tags=["vip", "renewal"])
    customer.tags = ["vip"]
    customer.save()
    customer.tags = []
    customer.save()
    _html, entries = _history(manager, customer)
    emptied, removed, first = entries
    assert ("Tags", "vip", "—") in emptied
    assert ("Tags", "renewal, vip", "vip") in removed
    assert ("Tags", None, "renewal, vip") in first


def _history(user, record, page=None):
    """The history page of ``record`` as ``user`` sees it: (its HTML, each entry's changes as (field, old, new))."""
    opts = record._meta
    url = reverse(f"admin:{opts.app_label}_{opts.model_name}_history", args=[record.pk])
    response = browser(user).get(url, {"p": page} if page else {})
    assert response.status_code == 200
    entries = [
        [(c["field"], c["old"], c["new"]) for c in getattr(entry, "history_delta_changes", [])]
        or [(v["field"], None, v["new"]) for v in getattr(entry, "history_initial_values", [])]
        for entry in response.context["page_obj"].object_list
    ]
    return response.content.decode(), entries


def test_a_reps_history_names_no_related_record_of_another_book(rep, other_rep, manager):
    """A deal a manager moved from another rep's customer to the rep's: its history names that customer by id."""
    theirs = CustomerFactory(name="Theirs Secret", owner=other_rep)
    mine = CustomerFactory(name="Mine Own", owner=rep)
    deal = OpportunityFactory(customer=theirs, title="Moved deal")
    deal.customer = mine
    deal.save()

    html, (moved, created) = _history(rep, deal)
    assert "Theirs Secret" not in html
    assert ("Customer", f"#{theirs.pk}", "Mine Own") in moved
    assert ("Customer", None, f"#{theirs.pk}") in created
    _html, (moved, created) = _history(manager, deal)
    assert ("Customer", "Theirs Secret", "Mine Own") in moved
    assert ("Customer", None, "Theirs Secret") in created


def test_the_oldest_entry_of_a_page_names_the_reps_own_related_records(rep, monkeypatch):
    """Compared with the entry before it, on the page before: a customer of the rep's there is named."""
    monkeypatch.setattr(type(admin.site._registry[Opportunity]), "history_list_per_page", 1)
    first, second = CustomerFactory(name="First own", owner=rep), CustomerFactory(name="Second own", owner=rep)
    deal = OpportunityFactory(customer=first)
    deal.customer = second
    deal.save()

    _html, [moved] = _history(rep, deal)
    assert ("Customer", "First own", "Second own") in moved


def test_a_task_given_to_a_rep_names_its_customer_in_its_history_as_on_its_page(rep, other_rep):
    theirs = CustomerFactory(name="Their customer", owner=other_rep)
    task = TaskFactory(customer=theirs, assignee=rep)

    _html, [created] = _history(rep, task)
    assert ("Customer", None, "Their customer") in created


def _version(client, record, version):
    """The page of ``record``'s past ``version`` as ``client`` sees it: (its HTML, {label: text} of its read-only
    lines)."""
    opts = record._meta
    url = reverse(f"admin:{opts.app_label}_{opts.model_name}_simple_history", args=[record.pk, version.history_id])
    response = client.get(url)
    assert response.status_code == 200
    lines = {
        capfirst(field.field["label"]): str(field.contents())
        for fieldset in response.context["adminform"]
        for line in fieldset
        for field in line
        if field.is_readonly
    }
    return response.content.decode(), lines


def test_a_past_version_of_a_task_names_no_customer_of_another_book_but_its_own():
    """A task given to a rep on another rep's customer, then moved to another of theirs, with its deal: the earlier
    version's page reads the earlier customer and deal by their ids, as the history list does; the current customer
    is named, as on the task's page."""
    rep, client = staff("rep", "Sales rep")
    other, _client = staff("other", "Sales rep")
    _manager, managers = staff("boss", "Sales manager")
    first = CustomerFactory(name="First of theirs", owner=other)
    second = CustomerFactory(name="Second of theirs", owner=other)
    deal = OpportunityFactory(customer=first, title="Deal of theirs")
    task = TaskFactory(customer=first, opportunity=deal, assignee=rep, title="Call them")
    task.customer, task.opportunity = second, None
    task.save()
    earlier, now = task.history.order_by("history_id")

    html, lines = _version(client, task, earlier)
    assert "First of theirs" not in html and "Deal of theirs" not in html
    assert (lines["Customer"], lines["Opportunity"]) == (f"#{first.pk}", f"#{deal.pk}")
    _html, lines = _version(client, task, now)
    assert "Second of theirs" in lines["Customer"]
    html, _lines = _version(managers, task, earlier)
    assert "First of theirs" in html and "Deal of theirs" in html


def _moved_to_mine(make):
    """A record of ``make`` on the other rep's customer, moved to one of the rep's."""

    def move(rep, theirs):
        record = make(customer=theirs)
        record.customer = CustomerFactory(name="Mine Own", owner=rep)
        record.save()
        return record, "Customer", theirs

    return move


def _customer_moved_from_their_company(rep, theirs):
    company = CompanyFactory(name="Company of theirs", owner=theirs.owner)
    customer = CustomerFactory(name="Mine Own", owner=rep, company=company)
    customer.company = CompanyFactory(name="Company of mine", owner=rep)
    customer.save()
    return customer, "Company", company


@pytest.mark.parametrize(
    "move",
    [_moved_to_mine(OpportunityFactory), _moved_to_mine(InteractionFactory), _customer_moved_from_their_company],
    ids=["deal", "interaction", "customer"],
)
def test_a_past_version_reads_a_related_record_of_another_book_by_its_id(move):
    """A record of the rep's that a manager moved from a record of another book: its earlier version's page shows
    that record's id in the field's place, as the history list does, not an empty choice."""
    rep, client = staff("rep", "Sales rep")
    other, _client = staff("other", "Sales rep")
    record, label, theirs = move(rep, CustomerFactory(name="Theirs Secret", owner=other))
    earlier = record.history.earliest()

    html, lines = _version(client, record, earlier)
    assert lines[label] == f"#{theirs.pk}"
    # (A customer's title carries its own company text, as its history list does: not a choice of the form.)
    assert theirs.name not in html.split('id="content-main"')[1]


@pytest.mark.parametrize("viewer", ["rep", "manager"])
def test_a_related_record_deleted_since_reads_as_deleted_on_the_first_entry_as_in_the_changes(
    viewer, rep, other_rep, manager
):
    """A deal moved from a customer since deleted: its first entry names that customer as its change does, by
    its id, rather than leaving the customer out."""
    theirs = CustomerFactory(name="Theirs Secret", owner=other_rep)
    deal = OpportunityFactory(customer=theirs, title="Moved deal")
    deal.customer = CustomerFactory(name="Mine Own", owner=rep)
    deal.save()
    gone = theirs.pk
    Customer.objects.filter(pk=gone).delete()

    html, (moved, created) = _history(rep if viewer == "rep" else manager, deal)

    assert "Theirs Secret" not in html
    assert ("Customer", f"Deleted customer (pk={gone})", "Mine Own") in moved
    assert ("Customer", None, f"Deleted customer (pk={gone})") in created
