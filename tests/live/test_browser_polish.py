"""The admin at a laptop's width, and its accessibility, in a real browser (Playwright + Debian's Chromium).

- Every main list's default columns fit a 1366 x 768 screen as a manager sees them, with long
  texts: the page never scrolls sideways (screenshots in ``test-artifacts/``).
- The main pages pass axe-core (``tests/live/package.json``, installed by ``.ci/run`` and
  ``make test``) without a "serious" or "critical" violation.
"""

import datetime
import json
import os
from decimal import Decimal

import pytest
from django.utils import timezone

from tests.factories import (
    PASSWORD,
    CompanyFactory,
    CustomerFactory,
    InteractionFactory,
    ManagerFactory,
    OpportunityFactory,
    TaskFactory,
)
from tests.live.conftest import ARTIFACTS, ROOT

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]

AXE = ROOT / "tests" / "live" / "node_modules" / "axe-core" / "axe.min.js"
LONG = "Shenzhen Very Long Name International Trading and Manufacturing Company Limited of Greater Bay"

LISTS = {
    "customers": "/admin/customers/customer/",
    "companies": "/admin/companies/company/",
    "opportunities": "/admin/opportunities/opportunity/",
    "interactions": "/admin/interactions/interaction/",
    "tasks": "/admin/tasks/task/",
}


def _data(manager):
    company = CompanyFactory(name=LONG, domain="very-long-domain-name-of-the-company.example.com", owner=manager)
    for i in range(3):
        customer = CustomerFactory(
            name=f"{LONG} contact {i}",
            company=company,
            email=f"someone.with.a.long.address.{i}@very-long-domain-name-of-the-company.example.com",
            phone="+86 138 0013 8000",
            owner=manager,
        )
        deal = OpportunityFactory(
            customer=customer,
            title=f"{LONG} framework agreement {i}",
            value=Decimal("123456789.99"),
            stage="proposal",
            expected_close_date=timezone.localdate(),
        )
        InteractionFactory(customer=customer, notes=LONG * 3)
        TaskFactory(
            title=f"Follow up on the {LONG} tender {i}",
            customer=customer,
            opportunity=deal,
            assignee=manager,
            due_at=timezone.now() + datetime.timedelta(days=1),
        )
    # The dashboard's lost deals by reason: a long reason, and the deals lost with none.
    OpportunityFactory(customer=customer, title="Lost", stage="lost", lost_reason=f"{LONG} chose another vendor")
    OpportunityFactory(customer=customer, title="Lost quietly", stage="lost")
    return customer


def _log_in(page, base, user):
    page.goto(f"{base}/admin/login/")
    page.fill("#id_username", user.username)
    page.fill("#id_password", PASSWORD)
    page.click("input[type=submit]")
    page.wait_for_selector("#content")


def test_lists_fit_a_1366_pixel_screen(page, live_server):
    manager = ManagerFactory(username="boss", is_staff=True)
    _data(manager)
    page.set_viewport_size({"width": 1366, "height": 768})
    _log_in(page, live_server.url, manager)
    widths, hovers = {}, {}
    for name, url in LISTS.items():
        page.goto(f"{live_server.url}{url}")
        page.wait_for_selector("#result_list")
        page.screenshot(path=str(ARTIFACTS / f"list-1366-{name}.png"))
        # The page does not scroll sideways, nor does the table inside its box (.results scrolls on overflow).
        widths[name] = page.evaluate(
            "Math.max(document.scrollingElement.scrollWidth,"
            " document.querySelector('#changelist .results').scrollWidth)"
        )
        # Long texts are cut, with the whole text on hover.
        hovers[name] = page.locator("#result_list [title*='Greater Bay']").count()
    (ARTIFACTS / "list-1366-widths.json").write_text(json.dumps({"widths": widths, "hovers": hovers}))
    assert all(width <= 1366 for width in widths.values()), widths
    assert all(hovers.values()), hovers


def _axe(page):
    page.add_script_tag(path=str(AXE))
    result = page.evaluate(
        "async () => { const r = await axe.run(document, {resultTypes: ['violations']});"
        " return r.violations.map(v => ({id: v.id, impact: v.impact, help: v.help,"
        " nodes: v.nodes.slice(0, 3).map(n => n.target.join(' '))})); }"
    )
    return [violation for violation in result if violation["impact"] in ("serious", "critical")]


def test_main_pages_pass_axe(page, live_server):
    if not AXE.exists():
        # CI installs it (.ci/run); a local run without npm may go without the check, but says so.
        message = "axe-core is not installed (npm ci --prefix tests/live)"
        if os.environ.get("CI"):
            pytest.fail(message)
        pytest.skip(message)
    manager = ManagerFactory(username="boss", is_staff=True)
    customer = _data(manager)
    _log_in(page, live_server.url, manager)
    pages = {
        "dashboard": "/admin/",
        "customers": "/admin/customers/customer/",
        "customer-page": f"/admin/customers/customer/{customer.pk}/change/",
        "opportunities": "/admin/opportunities/opportunity/",
        "board": "/admin/opportunities/opportunity/board/",
        "my-day": "/admin/tasks/task/my-day/",
    }
    found = {}
    for name, url in pages.items():
        page.goto(f"{live_server.url}{url}")
        page.wait_for_selector("#content")
        violations = _axe(page)
        if violations:
            found[name] = violations
            (ARTIFACTS / "axe-violations.json").write_text(json.dumps(found, indent=1))
            page.screenshot(path=str(ARTIFACTS / f"axe-{name}.png"), full_page=True)
    # The board's dialog asking why a deal was lost, open.
    page.goto(f"{live_server.url}{pages['board']}")
    page.evaluate("document.getElementById('lost-reason-dialog').showModal()")
    violations = _axe(page)
    if violations:
        found["board-lost-reason-dialog"] = violations
    assert not found, found


@pytest.mark.parametrize("width", [1366, 1440])
def test_the_dashboards_tables_break_lines_only_between_words(page, live_server, width):
    manager = ManagerFactory(username="boss", is_staff=True)
    _data(manager)
    page.set_viewport_size({"width": width, "height": 900})
    _log_in(page, live_server.url, manager)
    page.goto(f"{live_server.url}/admin/")
    page.wait_for_selector("#rep-table tbody tr")
    page.locator("#rep-table").screenshot(path=str(ARTIFACTS / f"dashboard-rep-table-{width}.png"))
    # Each cell's lines (one client rect per line of its text) are no more than its words.
    broken = page.evaluate(
        "() => [...document.querySelectorAll('#rep-table th, #rep-table td')].map(cell => {"
        " const range = document.createRange(); range.selectNodeContents(cell);"
        " const lines = new Set([...range.getClientRects()].map(r => Math.round(r.top))).size;"
        " const words = cell.innerText.trim().split(/\\s+/).filter(Boolean).length;"
        " return [cell.innerText.trim(), lines, words]; }).filter(([, lines, words]) => lines > Math.max(words, 1))"
    )
    assert broken == [], broken
    # The figures stay inside the module (it hides what overflows).
    assert page.evaluate(
        "(() => { const t = document.querySelector('#rep-table'); return t.scrollWidth <= t.clientWidth; })()"
    )
