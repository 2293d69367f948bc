"""A change PostgreSQL aborts in a deadlock, in the admin: a page that says so (409) in the admin's look, nothing
of the change saved nor announced, and a line logged at info level as the API logs one (core/admin/deadlocks.py).

The deadlock needs two connections at once (a thread each): PostgreSQL.
"""

import logging

import pytest
from django.contrib.admin.models import LogEntry
from django.db import connection
from django.urls import reverse

from core.models import Tag
from tests.concurrency import deadlocked
from tests.core.admin.helpers import opened, staff
from tests.factories import CustomerFactory

pytestmark = [
    pytest.mark.django_db(transaction=True),
    pytest.mark.skipif(connection.vendor != "postgresql", reason="two connections at once: PostgreSQL"),
]

NOTHING_SAVED = "Someone else was changing the same records at the same moment, so nothing of this change was saved."


def _saved_at_the_moment_its_new_owner_is_held(**headers):
    """A customer's page posted (its name and owner changed) while another transaction holds the new owner,
    then asks for the customer. The page locks the customer and saves it; the new owner is locked by the
    save's foreign key check at its COMMIT, which PostgreSQL aborts in the deadlock, once the page has added
    its "changed successfully". Returns (the answer, the other's errors, the customer, its owner, the client)."""
    manager, client = staff("boss", "Sales manager")
    new_owner = staff("rep", "Sales rep")[0]
    customer = CustomerFactory(owner=manager, name="Ann")
    url = reverse("admin:customers_customer_change", args=[customer.pk])
    data = {**opened(client, url), "name": ["Ann B"], "owner": [str(new_owner.pk)], "_save": ["Save"]}

    answer, errors = deadlocked(customer, new_owner, lambda: client.post(url, data, **headers))

    assert not errors
    assert not isinstance(answer, Exception), answer
    return answer, customer, manager, client


def test_a_page_aborted_in_a_deadlock_says_so_with_nothing_saved(caplog):
    caplog.set_level(logging.INFO, logger="core.admin.deadlocks")

    answer, customer, owner, client = _saved_at_the_moment_its_new_owner_is_held()

    assert answer.status_code == 409
    page = answer.content.decode()
    assert NOTHING_SAVED in page and "Go back and try again." in page
    assert "CRM administration" in page  # the admin's frame (admin/base_site.html)
    assert f'href="{answer.wsgi_request.get_full_path()}"' in page
    assert "changed successfully" not in page
    customer.refresh_from_db()
    assert (customer.name, customer.owner_id) == ("Ann", owner.pk)
    # Nor announced on the next page.
    assert "changed successfully" not in client.get(reverse("admin:index")).content.decode()
    logged = [r for r in caplog.records if r.name == "core.admin.deadlocks"]
    assert [(r.levelno, r.getMessage()) for r in logged] == [
        (logging.INFO, f"POST /admin/customers/customer/{customer.pk}/change/ deadlocked")
    ]


def test_a_script_is_answered_in_json():
    # The pipeline board's script asks for JSON, and shows the message it reads.
    answer, customer, owner, _client = _saved_at_the_moment_its_new_owner_is_held(HTTP_ACCEPT="application/json")

    assert answer.status_code == 409
    assert answer.json() == {"success": False, "message": f"{NOTHING_SAVED} Go back and try again."}
    customer.refresh_from_db()
    assert (customer.name, customer.owner_id) == ("Ann", owner.pk)


def test_an_action_aborted_in_a_deadlock_leaves_nothing_of_itself():
    # "Delete selected" on the Tags list (Django's own action) logs each deletion, then deletes the tags in
    # the list's order: the first, then the second, which another transaction holds before asking for the
    # first. Aborted, the action must leave neither a tag deleted nor the log entry of a deletion.
    _, client = staff("boss", "Sales manager")
    first, second = Tag.objects.create(name="Alpha"), Tag.objects.create(name="Beta")
    url = reverse("admin:core_tag_changelist")
    data = {"action": "delete_selected", "post": "yes", "_selected_action": [first.pk, second.pk], "index": "0"}

    answer, errors = deadlocked(first, second, lambda: client.post(url, data))

    assert not errors
    assert not isinstance(answer, Exception), answer
    assert answer.status_code == 409
    assert NOTHING_SAVED in answer.content.decode()
    assert sorted(Tag.objects.values_list("name", flat=True)) == ["Alpha", "Beta"]
    assert not LogEntry.objects.exists()
