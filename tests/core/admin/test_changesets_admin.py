"""The changeset admin: scoped list, the per-row diff, the Undo button with its conflicts."""

import pytest
from django.db import connection
from django.urls import reverse

from core.changesets import Changeset, recording
from customers.models import Customer
from tests.concurrency import deadlocked
from tests.core.admin.helpers import staff
from tests.factories import CustomerFactory, UserFactory

pytestmark = pytest.mark.django_db


def renamed(user, *customers, name="Renamed"):
    with recording("action", user=user, label="rename") as cs:
        for customer in customers:
            customer.name = name
            customer.save()
    return cs


def test_a_rep_lists_their_own_changesets():
    rep, rep_client = staff("rep", "Sales rep")
    manager, manager_client = staff("boss", "Sales manager")
    mine = renamed(rep, CustomerFactory(owner=rep))
    theirs = renamed(manager, CustomerFactory())
    listing = rep_client.get(reverse("admin:core_changeset_changelist"))
    assert list(listing.context["cl"].result_list) == [mine]
    assert b"customer: +0 ~1 -0" in listing.content
    assert rep_client.get(reverse("admin:core_changeset_change", args=[theirs.pk])).status_code == 302
    assert set(manager_client.get(reverse("admin:core_changeset_changelist")).context["cl"].result_list) == {
        mine,
        theirs,
    }


def test_the_page_shows_the_diff_and_the_undo_button():
    manager, client = staff("boss", "Sales manager")
    cs = renamed(manager, CustomerFactory(name="Before 之前"), name="After 之后")
    page = client.get(reverse("admin:core_changeset_change", args=[cs.pk])).content.decode()
    assert "Before 之前" in page and "After 之后" in page
    assert reverse("admin:core_changeset_undo", args=[cs.pk]) in page


def test_undo_asks_then_undoes():
    manager, client = staff("boss", "Sales manager")
    customer = CustomerFactory(name="Old")
    cs = renamed(manager, customer)
    undo_url = reverse("admin:core_changeset_undo", args=[cs.pk])
    ask = client.get(undo_url)
    assert ask.status_code == 200 and b'id="changeset-conflicts"' not in ask.content
    assert Customer.objects.get(pk=customer.pk).name == "Renamed"
    done = client.post(undo_url)
    assert done.status_code == 302
    assert Customer.objects.get(pk=customer.pk).name == "Old"
    assert Changeset.objects.get(pk=cs.pk).status == "undone"
    undo = Changeset.objects.get(undoes=cs)
    assert done.url == reverse("admin:core_changeset_change", args=[undo.pk])
    # Already undone: no button, and a second POST changes nothing.
    page = client.get(reverse("admin:core_changeset_change", args=[cs.pk])).content.decode()
    assert undo_url not in page
    client.post(undo_url)
    assert Changeset.objects.filter(undoes=cs).count() == 1


def test_conflicts_are_named_and_skipped_only_when_chosen():
    manager, client = staff("boss", "Sales manager")
    kept, changed = CustomerFactory(name="Kept"), CustomerFactory(name="Changed")
    cs = renamed(manager, kept, changed, name="Bulk")
    changed.refresh_from_db()
    changed.email = "later@example.com"
    changed.save()
    undo_url = reverse("admin:core_changeset_undo", args=[cs.pk])
    ask = client.get(undo_url).content.decode()
    assert 'id="changeset-conflicts"' in ask and "Bulk (changed since)" in ask
    refused = client.post(undo_url)
    assert refused.status_code == 302 and refused.url == undo_url
    assert Customer.objects.get(pk=kept.pk).name == "Bulk"
    client.post(undo_url, {"skip_conflicts": "yes"})
    assert Customer.objects.get(pk=kept.pk).name == "Kept"
    assert Customer.objects.get(pk=changed.pk).name == "Bulk"


def test_read_only_users_read_but_may_not_undo():
    manager, _ = staff("boss", "Sales manager")
    _, reader = staff("reader", "Read-only")
    cs = renamed(manager, CustomerFactory(name="Old"))
    assert reader.get(reverse("admin:core_changeset_change", args=[cs.pk])).status_code == 200
    assert reader.post(reverse("admin:core_changeset_undo", args=[cs.pk])).status_code == 403
    assert Changeset.objects.get(pk=cs.pk).status == "applied"


def test_the_list_costs_the_same_queries_for_more_changesets():
    from django.db import connection
    from django.test.utils import CaptureQueriesContext

    manager, client = staff("boss", "Sales manager")
    renamed(manager, CustomerFactory())
    url = reverse("admin:core_changeset_changelist")
    client.get(url)
    with CaptureQueriesContext(connection) as few:
        client.get(url)
    for _ in range(5):
        renamed(UserFactory(), CustomerFactory())
    with CaptureQueriesContext(connection) as many:
        client.get(url)
    assert len(many) == len(few)


@pytest.mark.django_db(transaction=True)
@pytest.mark.skipif(connection.vendor != "postgresql", reason="two connections at once: PostgreSQL")
def test_an_undo_aborted_in_a_deadlock_says_so_with_nothing_undone():
    # The undo puts the newest row back first (the second customer), then the first; another transaction
    # holds the first and then asks for the second: PostgreSQL aborts the undo. Its page again with the reason,
    # not a 500, and neither customer put back (the second's restore rolled back with the rest).
    manager, client = staff("boss", "Sales manager")
    first, second = CustomerFactory(name="First"), CustomerFactory(name="Second")
    cs = renamed(manager, first, second, name="Bulk")
    undo_url = reverse("admin:core_changeset_undo", args=[cs.pk])

    answer, errors = deadlocked(second, first, lambda: client.post(undo_url))

    assert not errors
    assert not isinstance(answer, Exception), answer
    assert (answer.status_code, answer.url) == (302, undo_url)
    shown = [str(message) for message in answer.wsgi_request._messages]
    assert shown == ["Someone else was changing the same records at the same moment, so nothing was undone. Try again."]
    assert [Customer.objects.get(pk=c.pk).name for c in (first, second)] == ["Bulk", "Bulk"]
    assert Changeset.objects.get(pk=cs.pk).status == Changeset.Status.APPLIED
    assert not Changeset.objects.filter(undoes=cs).exists()
    # Undone once the other change is over.
    assert client.post(undo_url).status_code == 302
    assert [Customer.objects.get(pk=c.pk).name for c in (first, second)] == ["First", "Second"]
