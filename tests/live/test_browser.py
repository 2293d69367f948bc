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

    # A file with a rejected row: import the valid rows, skip the other and download it with its reason.
    mixed = tmp_path / "mixed.csv"
    mixed.write_text("姓名,邮箱\nValid Two,two@csv.example\n,nameless@csv.example\nValid Three,three@csv.example\n")
    page.goto(f"{base}/admin/customers/customer/import/")
    page.set_input_files("#id_import_file", str(mixed))
    page.click("input[type=submit]")
    page.wait_for_selector(".import-rejected-download")
    shot(page, "06-import-with-rejected-rows")
    with page.expect_download() as download_info:
        page.click(".import-rejected-download")
    rejected = download_info.value.path().read_bytes().decode("utf-8-sig").splitlines()
    assert rejected[0] == "line,reasons,name,email" and rejected[1].startswith("3,")
    assert "nameless@csv.example" in rejected[1] and len(rejected) == 2
    page.click(".import-skip-invalid input[name=confirm]")
    page.wait_for_selector(".messagelist .success")
    assert "1 rejected row was not imported" in page.inner_text(".messagelist")
    assert set(Customer.objects.filter(email__endswith="@csv.example").values_list("name", flat=True)) == {
        "Imported One",
        "Valid Two",
        "Valid Three",
    }
    shot(page, "07-import-rows-skipped")


def open_board(page, base, user, card):
    """Log ``user`` in on their way to the pipeline board, and wait for the ``card`` selector."""
    page.goto(f"{base}/admin/login/?next=/admin/opportunities/opportunity/board/")
    page.fill("#id_username", user.username)
    page.fill("#id_password", PASSWORD)
    page.click("input[type=submit]")
    page.wait_for_selector(card)


def test_pipeline_board_drag_and_drop(page, live_server):
    """A rep drags a deal to the next stage; a deal moved meanwhile by a manager is refused and shown where it is."""
    from django.contrib.auth.models import Group

    from tests.factories import CustomerFactory, ManagerFactory, OpportunityFactory, UserFactory

    rep = UserFactory(username="board-rep", is_staff=True)
    rep.groups.add(Group.objects.get(name="Sales rep"))
    customer = CustomerFactory(owner=rep, name="Board Buyer")
    deal = OpportunityFactory(customer=customer, title="Dragged deal", value=1234567, stage="lead")
    contested = OpportunityFactory(customer=customer, title="Contested deal", value=500, stage="lead")
    OpportunityFactory(customer=CustomerFactory(owner=ManagerFactory()), title="Not the rep's")
    base = live_server.url

    open_board(page, base, rep, f"#column-lead #card-{deal.pk}")
    assert "Not the rep's" not in page.inner_text("#pipeline-columns")
    assert "1,234,567.00" in page.inner_text(f"#card-{deal.pk}")

    # Drag and drop: the card lands in the next column, and stays there.
    page.drag_and_drop(f"#card-{deal.pk} dl", "#column-proposal")
    page.wait_for_selector(f"#column-proposal #card-{deal.pk}")
    page.wait_for_selector(".messagelist .success")
    deal.refresh_from_db()
    assert (deal.stage, deal.probability) == ("proposal", 40)
    assert deal.history.first().history_user == rep
    assert page.inner_text('#column-proposal [data-figure="value"]') == "$1,234,567.00"  # CRM_CURRENCY: USD by default
    shot(page, "06-pipeline-board-dragged")
    page.reload()
    page.wait_for_selector(f"#column-proposal #card-{deal.pk}")

    # Moved meanwhile by someone else: refused, and the board shows where it is now.
    contested.stage = "negotiation"
    contested.save()
    page.drag_and_drop(f"#card-{contested.pk} dl", "#column-proposal")
    page.wait_for_selector(".messagelist .warning")
    assert "changed by someone else meanwhile" in page.inner_text(".messagelist")
    page.wait_for_selector(f"#column-negotiation #card-{contested.pk}")
    contested.refresh_from_db()
    assert contested.stage == "negotiation"
    shot(page, "07-pipeline-board-refused")

    # Without a mouse: the card's own "move to" select and button.
    page.focus(f"#move-{deal.pk}")
    page.select_option(f"#move-{deal.pk}", "negotiation")
    page.keyboard.press("Tab")
    page.keyboard.press("Enter")
    page.wait_for_selector(f"#column-negotiation #card-{deal.pk}")
    deal.refresh_from_db()
    assert deal.stage == "negotiation"

    # The same board for a browser set to Chinese: its words, and amounts still grouped by thousands.
    chinese = page.context.browser.new_context(
        locale="zh-CN", viewport={"width": 1400, "height": 1000}, storage_state=page.context.storage_state()
    )
    try:
        zh_page = chinese.new_page()
        zh_page.goto(f"{base}/admin/opportunities/opportunity/board/")
        assert "销售管道看板" in zh_page.inner_text("#content")
        assert "1,234,567.00" in zh_page.inner_text(f"#card-{deal.pk}")
        shot(zh_page, "08-pipeline-board-zh-hans")
    finally:
        chinese.close()


def test_pipeline_board_asks_why_a_deal_is_lost(page, live_server):
    """Dropped on "Lost", a card asks why in a dialog: Cancel (or Escape) moves nothing, "Mark as lost" moves it
    with the reason typed; from the keyboard, the card's own form asks the same."""
    from tests.factories import CustomerFactory, OpportunityFactory, StaffFactory

    rep = StaffFactory(username="lost-rep")
    customer = CustomerFactory(owner=rep, name="Lost Buyer")
    dropped = OpportunityFactory(customer=customer, title="Dropped deal", stage="proposal")
    keyed = OpportunityFactory(customer=customer, title="Keyed deal", stage="lead")
    base = live_server.url

    open_board(page, base, rep, f"#column-proposal #card-{dropped.pk}")

    # Dropped on the folded "Lost" column: the dialog asks; Escape moves nothing.
    page.drag_and_drop(f"#card-{dropped.pk} dl", "#column-lost")
    page.wait_for_selector("#lost-reason-dialog[open]")
    assert page.inner_text("#lost-reason-dialog .deal-title") == "Dropped deal"
    assert page.evaluate("document.activeElement.id") == "lost-reason-dialog-input"
    page.keyboard.press("Escape")
    page.wait_for_selector("#lost-reason-dialog", state="hidden")
    # Said once the dialog's "close" event is handled, a task after it is hidden.
    page.wait_for_function("document.getElementById('board-status').textContent === 'Not moved.'")
    dropped.refresh_from_db()
    assert dropped.stage == "proposal"

    # Again, with a reason: the deal is lost, with it.
    page.drag_and_drop(f"#card-{dropped.pk} dl", "#column-lost")
    page.wait_for_selector("#lost-reason-dialog[open]")
    page.fill("#lost-reason-dialog-input", "Went with a rival")
    page.click("#lost-reason-dialog button[value=lost]")
    page.wait_for_selector(".messagelist .success")
    assert "“Dropped deal” moved to “Lost”: “Went with a rival”." in page.inner_text(".messagelist")
    page.wait_for_selector(f"#card-{dropped.pk}", state="detached")
    dropped.refresh_from_db()
    assert (dropped.stage, dropped.lost_reason) == ("lost", "Went with a rival")
    shot(page, "09-pipeline-board-lost-reason")

    # From the keyboard: the card's select, Move, the dialog, Enter with nothing typed: lost without a reason.
    page.focus(f"#move-{keyed.pk}")
    page.select_option(f"#move-{keyed.pk}", "lost")
    page.keyboard.press("Tab")
    page.keyboard.press("Enter")
    page.wait_for_selector("#lost-reason-dialog[open]")
    page.keyboard.press("Enter")
    page.wait_for_selector(f"#card-{keyed.pk}", state="detached")
    keyed.refresh_from_db()
    assert (keyed.stage, keyed.lost_reason) == ("lost", "")

    # The lost column unfolded shows the reason on its card.
    page.click("#column-lost .toggle")
    page.wait_for_selector(f"#column-lost #card-{dropped.pk}")
    assert "Went with a rival" in page.inner_text(f"#card-{dropped.pk} dl")

    # A reason given with a line break (the API, an import or a switch may give one) is kept on one line: the
    # card's text field sends it back as the deal has it, and the deal dragged back to "Proposal" is reopened.
    from opportunities.services import opportunity_set_stage

    broken = OpportunityFactory(customer=customer, title="Broken reason deal", stage="proposal")
    opportunity_set_stage(opportunity=broken, stage="lost", lost_reason="Price,\nthen timing")
    broken.save()
    page.goto(f"{base}/admin/opportunities/opportunity/board/?unfold=lost")
    page.wait_for_selector(f"#column-lost #card-{broken.pk}")
    page.drag_and_drop(f"#card-{broken.pk} dl", "#column-proposal")
    page.wait_for_selector(".messagelist .success")
    assert "“Broken reason deal” moved to “Proposal”." in page.inner_text(".messagelist")
    broken.refresh_from_db()
    assert (broken.stage, broken.lost_reason) == ("proposal", "")


def test_rep_logs_a_call_from_the_customer_page_and_finds_others_customers_not_found(page, live_server):
    from django.contrib.auth.models import Group

    from tests.factories import CustomerFactory, InteractionFactory, OpportunityFactory, UserFactory

    rep = UserFactory(username="quick_rep", is_staff=True)
    rep.groups.add(Group.objects.get(name="Sales rep"))
    other = UserFactory(username="other_rep", is_staff=True)
    other.groups.add(Group.objects.get(name="Sales rep"))
    customer = CustomerFactory(name="Quick Buyer", company=CompanyFactory(name="Quick Co", owner=rep), owner=rep)
    InteractionFactory(customer=customer, notes="First meeting at the fair")
    OpportunityFactory(customer=customer, title="Quick deal", value=2500)
    theirs = CustomerFactory(name="Not Yours Ltd buyer", owner=other)
    base = live_server.url

    page.goto(f"{base}/admin/login/")
    page.fill("#id_username", rep.username)
    page.fill("#id_password", PASSWORD)
    page.click("input[type=submit]")
    page.wait_for_load_state()

    # The customer's page: the essentials, the interactions list, the timeline; a call logged in place.
    page.goto(f"{base}/admin/customers/customer/{customer.pk}/change/")
    header = page.inner_text("#customer-header")
    assert "quick_rep" in header and "Quick Co" in header
    assert "First meeting at the fair" in page.inner_text("#list-interactions")
    shot(page, "10-customer-page")
    page.click("#quick-interaction summary")
    page.select_option("#id_interaction-interaction_type", "call")
    page.fill("#id_interaction-notes", "Called about the quote")
    shot(page, "11-customer-quick-call")
    page.click("#quick-interaction input[type=submit]")
    page.wait_for_selector(".messagelist .success")
    logged = Interaction.objects.get(notes="Called about the quote")
    assert (logged.customer, logged.interaction_type, logged.created_by) == (customer, "call", rep)
    assert "Called about the quote" in page.inner_text("#timeline")
    assert "Called about the quote" in page.inner_text("#list-interactions")
    shot(page, "12-customer-call-logged")

    # Someone else's customer: not found, with nothing about it.
    response = page.goto(f"{base}/admin/customers/customer/{theirs.pk}/change/")
    assert response.status == 404
    text = page.inner_text("#content")
    assert "There is no such customer" in text
    assert "Not Yours" not in text and "deleted" not in text
    shot(page, "13-not-yours")
