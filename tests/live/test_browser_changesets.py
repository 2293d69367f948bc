"""Bulk changes in a real browser (Playwright + Debian's Chromium): a bulk action's preview then its
Confirm, the Undo button of the changeset it made, and a merge through the side-by-side page.

Screenshots land in ``test-artifacts/`` (``changesets-*.png``).
"""

import pytest

from core.changesets import Changeset
from core.models import MergedRecord
from customers.models import Customer
from tests.factories import PASSWORD, CustomerFactory, InteractionFactory, ManagerFactory
from tests.live.conftest import ARTIFACTS

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]


def shot(page, name):
    page.screenshot(path=str(ARTIFACTS / f"changesets-{name}.png"), full_page=True)


def statuses():
    return dict(Customer.objects.values_list("name", "status"))


def test_preview_confirm_undo_and_merge(page, live_server):
    manager = ManagerFactory(username="boss", is_staff=True)
    chosen = [CustomerFactory(owner=manager, name=f"Preview {n}", status="lead") for n in ("A", "B")]
    CustomerFactory(owner=manager, name="Preview C", status="lead")
    base = live_server.url

    page.goto(f"{base}/admin/")
    page.fill("#id_username", manager.username)
    page.fill("#id_password", PASSWORD)
    page.click("input[type=submit]")
    page.wait_for_selector("#user-tools")

    # A bulk action: select two customers, choose "set status", Go: the preview, nothing written yet.
    page.goto(f"{base}/admin/customers/customer/?q=Preview")
    for customer in chosen:
        page.check(f"input[name=_selected_action][value='{customer.pk}']")
    page.select_option("select[name=action]", "set_status_inactive")
    page.click("button[name=index]")
    page.wait_for_selector("#changeset-preview")
    diff = page.inner_text(".changeset-diff")
    assert "Preview A" in diff and "Preview B" in diff and "Preview C" not in diff
    assert "inactive" in diff
    assert statuses() == {"Preview A": "lead", "Preview B": "lead", "Preview C": "lead"}
    assert not Changeset.objects.exists()
    shot(page, "01-preview")

    # Confirm: made, and recorded as one changeset named in the message.
    page.click("#changeset-preview-form input[type=submit]")
    page.wait_for_selector(".messagelist .success")
    assert statuses() == {"Preview A": "inactive", "Preview B": "inactive", "Preview C": "lead"}
    changeset = Changeset.objects.get()
    shot(page, "02-confirmed")

    # Its page, then Undo: the records are back as they were.
    page.click(f".messagelist a[href$='/admin/core/changeset/{changeset.pk}/change/']")
    page.wait_for_selector(".changeset-diff")
    shot(page, "03-changeset")
    page.click(".object-tools a[href$='/undo/']")
    page.wait_for_selector("#changeset-undo-form")
    page.click("#changeset-undo-form input[type=submit]")
    page.wait_for_selector(".messagelist .success")
    assert statuses() == {"Preview A": "lead", "Preview B": "lead", "Preview C": "lead"}
    changeset.refresh_from_db()
    assert changeset.status == "undone"
    shot(page, "04-undone")

    # A merge through the side-by-side page: keep the second with its name, take the first's email.
    first = CustomerFactory(owner=manager, name="Twin Old", email="twin@example.com", phone="")
    second = CustomerFactory(owner=manager, name="Twin New", email="", phone="+86 138 0013 8000")
    InteractionFactory(customer=first, notes="Met the old twin")
    page.goto(f"{base}/admin/customers/customer/merge/?ids={first.pk},{second.pk}")
    page.wait_for_selector("#merge-table")
    # Preselected for the first (its name; the second's phone, as the first has none).
    assert page.is_checked(f"input[name='field:name'][value='{first.pk}']")
    assert page.is_checked(f"input[name='field:phone'][value='{second.pk}']")
    # The second chosen to stay: the fields follow it (its name), but its empty email gives way to the first's.
    page.check(f"input[name=survivor][value='{second.pk}']")
    assert page.is_checked(f"input[name='field:name'][value='{second.pk}']")
    assert page.is_checked(f"input[name='field:email'][value='{first.pk}']")
    # A name picked by hand stays when the survivor changes back and forth.
    page.check(f"input[name='field:name'][value='{first.pk}']")
    page.check(f"input[name=survivor][value='{first.pk}']")
    page.check(f"input[name=survivor][value='{second.pk}']")
    assert page.is_checked(f"input[name='field:name'][value='{first.pk}']")
    page.check(f"input[name='field:name'][value='{second.pk}']")
    page.click("input[name=preview]")
    page.wait_for_selector("#merge-preview")
    assert "twin@example.com" in page.inner_text("#merge-preview")
    assert Customer.objects.filter(pk=first.pk).exists()
    shot(page, "05-merge-preview")
    page.click("input[name=confirm]")
    page.wait_for_selector(".messagelist .success")
    assert not Customer.objects.filter(pk=first.pk).exists()
    survivor = Customer.objects.get(pk=second.pk)
    assert (survivor.name, survivor.email) == ("Twin New", "twin@example.com")
    assert survivor.interactions.get().notes == "Met the old twin"
    assert MergedRecord.objects.filter(old_id=first.pk, survivor_id=second.pk).exists()
    assert page.url.endswith(f"/admin/customers/customer/{second.pk}/change/")
    shot(page, "06-merged")
