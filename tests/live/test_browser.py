"""A sales rep's round trip through the admin in a real browser (Playwright + Debian's Chromium).

No browser is downloaded: the test drives the ``chromium`` found on PATH, and is
skipped when there is none (``.ci/run`` installs it). Screenshots land in
``test-artifacts/``.
"""

import pytest

from core.models import Tag
from customers.models import Customer
from interactions.models import Interaction
from opportunities.models import Opportunity
from tests.factories import PASSWORD, CompanyFactory, StaffFactory
from tests.live.conftest import ARTIFACTS

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]


def shot(page, name):
    page.screenshot(path=str(ARTIFACTS / f"{name}.png"), full_page=True)


def test_sales_rep_round_trip(page, live_server, tmp_path):
    staff = StaffFactory(username="rep")
    CompanyFactory(name="Chromium Ltd", owner=staff)
    Tag.objects.create(name="Trade fair", colour="#3366cc")
    base = live_server.url

    # Log in.
    page.goto(f"{base}/admin/")
    page.fill("#id_username", staff.username)
    page.fill("#id_password", PASSWORD)
    page.click("input[type=submit]")
    page.wait_for_selector("#pipeline-chart")

    # A customer with an interaction and an opportunity, from the one page.
    page.goto(f"{base}/admin/customers/customer/add/")
    page.fill("#id_name", "Browser Buyer")
    # The company is picked by autocomplete (select2): type, then choose the match.
    page.click("#id_company + .select2 .select2-selection")
    # The open dropdown's search box (the tags box on the same page has a search field of its own).
    page.fill(".select2-container--open .select2-search__field", "chromium")
    page.click(".select2-results__option:has-text('Chromium Ltd')")
    # Tags too: type in the tags box, choose the match.
    page.click("#id_tags + .select2 .select2-selection")
    page.fill("#id_tags + .select2 .select2-search__field", "trade")
    page.click(".select2-results__option:has-text('Trade fair')")
    page.fill("#id_email", "buyer@chromium.example")
    page.click("#interactions-group .add-row a")
    page.select_option("#id_interactions-0-interaction_type", "meeting")
    page.fill("#id_interactions-0-notes", "Met at the trade fair")
    page.click("#opportunities-group .add-row a")
    page.fill("#id_opportunities-0-title", "Fleet of browsers")
    page.fill("#id_opportunities-0-value", "4200")
    page.select_option("#id_opportunities-0-stage", "proposal")
    shot(page, "01-add-customer")
    page.click("input[name=_save]")
    page.wait_for_selector(".messagelist .success")
    customer = Customer.objects.get(email="buyer@chromium.example")
    assert customer.company_name == "Chromium Ltd"
    assert customer.tags == ["Trade fair"]
    assert Interaction.objects.get(customer=customer).notes == "Met at the trade fair"
    opportunity = Opportunity.objects.get(customer=customer)
    assert (opportunity.title, opportunity.stage) == ("Fleet of browsers", "proposal")

    # Find it again.
    page.fill("#searchbar", "Chromium")
    page.press("#searchbar", "Enter")
    page.wait_for_selector("#result_list")
    rows = page.locator("#result_list tbody tr")
    assert rows.count() == 1
    assert "Browser Buyer" in rows.first.inner_text()
    shot(page, "02-customer-search")

    # Move the deal on from the opportunities list.
    page.goto(f"{base}/admin/opportunities/opportunity/")
    page.select_option("#id_form-0-stage", "negotiation")
    page.click("input[name=_save]")
    page.wait_for_selector(".messagelist .success")
    opportunity.refresh_from_db()
    assert opportunity.stage == "negotiation"
    assert opportunity.probability == 70
    assert "4,200.00" in page.inner_text("#pipeline-totals")
    shot(page, "03-opportunity-list")

    # The dashboard shows it.
    page.goto(f"{base}/admin/")
    negotiation = page.locator('#pipeline-chart tr[data-stage="negotiation"]')
    assert negotiation.locator("td").nth(1).inner_text() == "1"
    shot(page, "04-dashboard")

    # The same dashboard, same session, for a browser set to Chinese.
    chinese = page.context.browser.new_context(
        locale="zh-CN", viewport={"width": 1400, "height": 1000}, storage_state=page.context.storage_state()
    )
    try:
        zh_page = chinese.new_page()
        zh_page.goto(f"{base}/admin/")
        assert "销售仪表盘" in zh_page.inner_text("#content")
        assert "谈判" in zh_page.inner_text("#pipeline-chart")
        shot(zh_page, "04-dashboard-zh-hans")
    finally:
        chinese.close()

    # Import a small CSV: preview first, then confirm.
    csv_file = tmp_path / "customers.csv"
    csv_file.write_text("name,company,email,status\nImported One,CSV Co,one@csv.example,lead\n")
    page.goto(f"{base}/admin/customers/customer/import/")
    page.set_input_files("#id_import_file", str(csv_file))
    page.select_option("#id_format", label="csv")
    page.click("input[type=submit]")
    page.wait_for_selector("input[name=confirm]")
    assert "Imported One" in page.inner_text("#content")
    assert not Customer.objects.filter(email="one@csv.example").exists()
    shot(page, "05-import-preview")
    page.click("input[name=confirm]")
    page.wait_for_selector(".messagelist .success")
    imported = Customer.objects.get(email="one@csv.example")
    assert imported.history.get().history_user == staff
