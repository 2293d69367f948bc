"""A manager defines a custom field in the admin and sets it on a customer, in a real browser (Playwright +
Debian's Chromium, as tests/live/test_browser.py)."""

import pytest

from core.models import CustomField
from customers.models import Customer
from tests.factories import PASSWORD, CustomerFactory, ManagerFactory
from tests.live.conftest import ARTIFACTS

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]


def test_manager_defines_a_custom_field_and_sets_it_on_a_customer(page, live_server):
    manager = ManagerFactory(username="boss", is_staff=True)
    customer = CustomerFactory(name="Field Buyer", owner=manager)
    base = live_server.url

    page.goto(f"{base}/admin/")
    page.fill("#id_username", manager.username)
    page.fill("#id_password", PASSWORD)
    page.click("input[type=submit]")
    page.wait_for_selector("#content")

    # Define the field: a text shown as a list column, and a choice used as a list filter.
    page.goto(f"{base}/admin/core/customfield/add/")
    page.select_option("#id_model", "customers")
    page.fill("#id_key", "contract_no")
    page.fill("#id_label", "Contract number")
    page.fill("#id_label_zh", "合同编号")
    page.select_option("#id_field_type", "text")
    page.check("#id_show_in_list")
    page.click("input[name=_save]")
    page.wait_for_selector(".messagelist .success")
    page.goto(f"{base}/admin/core/customfield/add/")
    page.select_option("#id_model", "customers")
    page.fill("#id_key", "tier")
    page.fill("#id_label", "Tier")
    page.select_option("#id_field_type", "choice")
    page.fill("#id_choices", "gold\nsilver")
    page.check("#id_filterable")
    page.click("input[name=_save]")
    page.wait_for_selector(".messagelist .success")
    assert CustomField.objects.get(key="tier").choices == ["gold", "silver"]
    page.screenshot(path=str(ARTIFACTS / "cf-01-definitions.png"), full_page=True)

    # Set it on the customer, from the customer's page.
    page.goto(f"{base}/admin/customers/customer/{customer.pk}/change/")
    page.fill("#id_cf_contract_no", "C-2026-7")
    page.select_option("#id_cf_tier", "gold")
    page.screenshot(path=str(ARTIFACTS / "cf-02-customer-form.png"), full_page=True)
    page.click("input[name=_save]")
    page.wait_for_selector(".messagelist .success")
    assert Customer.objects.get(pk=customer.pk).custom_fields == {"contract_no": "C-2026-7", "tier": "gold"}

    # The list shows it as a column, and filters by the choice.
    page.goto(f"{base}/admin/customers/customer/?cf_tier=gold")
    assert "CONTRACT NUMBER" in page.inner_text("#result_list thead").upper()
    assert "C-2026-7" in page.inner_text("#result_list tbody")
    page.screenshot(path=str(ARTIFACTS / "cf-03-customer-list.png"), full_page=True)
