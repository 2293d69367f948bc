"""Markup typed into records is shown as text, never run, on every page that shows it.

Records are named with script and event-handler payloads; a real Chromium
(Debian's, driven by Playwright) visits the admin's lists, record pages, history
and revert pages, the dashboard, the browsable API, Swagger UI and Redoc, signed
in as staff. Any dialog (``alert(1)``), uncaught script error or console error
fails the test, as does a payload that reached the page as an element rather
than as text.
"""

import pytest
from django.urls import reverse

from tests.factories import PASSWORD, CustomerFactory, InteractionFactory, OpportunityFactory, StaffFactory

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]

SCRIPT = "<script>alert(1)</script>"
ATTRIBUTE = '"><img src=x onerror=alert(1)>'
PAYLOADS = [SCRIPT, ATTRIBUTE]


@pytest.fixture
def hostile_records():
    customers = []
    for first, second in (PAYLOADS, reversed(PAYLOADS)):
        customer = CustomerFactory(name=first, company=second)
        # A change, so that the history pages show the payloads as old and new values.
        customer.name, customer.company, customer.company_name = second, None, first
        customer.save()
        interaction = InteractionFactory(customer=customer, notes=first)
        interaction.notes = second
        interaction.save()
        opportunity = OpportunityFactory(customer=customer, title=first)
        opportunity.title = second
        opportunity.save()
        customers.append((customer, interaction, opportunity))
    return customers


def _admin(name, *args):
    return reverse(f"admin:{name}", args=args)


def pages_to_visit(records):
    urls = [_admin("index")]
    for customer, interaction, opportunity in records:
        for record in (customer, interaction, opportunity):
            info = f"{record._meta.app_label}_{record._meta.model_name}"
            urls += [
                _admin(f"{info}_changelist"),
                _admin(f"{info}_change", record.pk),
                _admin(f"{info}_history", record.pk),
                _admin(f"{info}_simple_history", record.pk, record.history.earliest().history_id),
            ]
        urls.append(_admin("customers_customer_changelist") + f"?q={customer.name}")
    urls += [
        "/api/customers?format=api",
        "/api/interactions?format=api",
        "/api/opportunities?format=api",
        f"/api/customers/{records[0][0].pk}/history?format=api",
        "/api/docs/",
        "/api/redoc/",
    ]
    return list(dict.fromkeys(urls))


def test_markup_in_records_runs_nowhere(page, live_server, hostile_records):
    staff = StaffFactory(username="staff")
    problems, outside = [], set()

    def on_console(message):
        # Chromium's own request for /favicon.ico (which the site does not serve) is no page's doing.
        if message.type == "error" and not message.location.get("url", "").endswith("/favicon.ico"):
            problems.append(f"console error on {page.url}: {message.text} ({message.location.get('url')})")

    def on_request(request):
        if not request.url.startswith((live_server.url, "data:", "blob:")):
            outside.add((page.url.removeprefix(live_server.url), request.url))

    page.on("dialog", lambda dialog: (problems.append(f"dialog on {page.url}: {dialog.message}"), dialog.dismiss()))
    page.on("pageerror", lambda error: problems.append(f"script error on {page.url}: {error}"))
    page.on("console", on_console)
    page.on("request", on_request)
    # Nothing is fetched from other sites: a failed outside request would only add noise to the console.
    page.route(
        lambda url: not url.startswith((live_server.url, "data:", "blob:")),
        lambda route: route.fulfill(status=204),
    )

    page.goto(f"{live_server.url}/admin/login/")
    page.fill("#id_username", staff.username)
    page.fill("#id_password", PASSWORD)
    page.click("input[type=submit]")
    page.wait_for_selector("#content")

    visited = []
    for path in pages_to_visit(hostile_records):
        # The load event waits for the page's scripts and images (an <img src=x onerror=...> has fired by
        # then); none of these pages fetches anything after it but the two below.
        response = page.goto(f"{live_server.url}{path}", wait_until="load")
        assert response.status == 200, (path, response.status)
        # Redoc and Swagger UI build the page from the schema they fetch: wait until they have.
        if path.startswith(("/api/docs", "/api/redoc")):
            page.wait_for_load_state("networkidle")
            page.wait_for_selector(".swagger-ui .information-container, .redoc-wrap .api-content")
        # The payloads never became elements: no <img src=x>, no inline <script> carrying them.
        injected = page.evaluate(
            """() => document.querySelectorAll('img[src="x"], img[onerror]').length
                 + [...document.querySelectorAll('script:not([src])')]
                       .filter(s => s.textContent.includes('alert(1)') && s.type !== 'application/json').length"""
        )
        assert injected == 0, path
        visited.append(path)

    assert problems == []
    # The one request to another site: the logo in Redoc's "API docs by Redocly" link, built into its bundle.
    assert outside == {("/api/redoc/", "https://cdn.redoc.ly/redoc/logo-mini.svg")}
    # The data was on the pages, as text.
    page.goto(f"{live_server.url}{_admin('customers_customer_changelist')}")
    assert SCRIPT in page.inner_text("#result_list") and ATTRIBUTE in page.inner_text("#result_list")
    assert len(visited) == len(pages_to_visit(hostile_records)) > 20
