"""The admin keeps each rep to their own book: lists, pages, search, autocomplete, export, history, imports."""

from decimal import Decimal
from io import StringIO

import pytest
from django.contrib.auth import get_user_model
from django.contrib.auth.models import Group
from django.core.management import CommandError, call_command
from django.test import Client

from customers.models import Customer
from opportunities.models import Opportunity
from tests.core.admin.helpers import CSV_FORMAT, export_data, import_rows, preview_then_confirm, read_csv, upload
from tests.factories import CustomerFactory, InteractionFactory, OpportunityFactory, UserFactory

pytestmark = pytest.mark.django_db

URL = "/admin/customers/customer/"


def staff(username, group):
    user = UserFactory(username=username, is_staff=True)
    user.groups.add(Group.objects.get(name=group))
    return user


@pytest.fixture
def book():
    rep_a, rep_b = staff("rep_a", "Sales rep"), staff("rep_b", "Sales rep")
    a = CustomerFactory(name="Alpha Secret", owner=rep_a)
    b = CustomerFactory(name="Bravo Own", owner=rep_b)
    return {
        "rep_a": rep_a,
        "rep_b": rep_b,
        "a": a,
        "b": b,
        "ia": InteractionFactory(customer=a, notes="alpha notes"),
        "oa": OpportunityFactory(customer=a, title="Alpha deal", value=Decimal("700"), stage=Opportunity.Stage.LEAD),
        "ob": OpportunityFactory(customer=b, title="Bravo deal", value=Decimal("50"), stage=Opportunity.Stage.LEAD),
    }


def login(user):
    client = Client()
    client.force_login(user)
    return client


def test_changelist_and_search_show_only_own_customers(book):
    client = login(book["rep_b"])
    page = client.get(URL).content.decode()
    assert "Bravo Own" in page and "Alpha Secret" not in page
    assert "Alpha Secret" not in client.get(URL, {"q": "Alpha"}).content.decode()
    for url in ("/admin/interactions/interaction/", "/admin/opportunities/opportunity/"):
        text = client.get(url, {"q": "Alpha"}).content.decode()
        assert "alpha notes" not in text and "Alpha deal" not in text
    assert "Alpha Secret" in login(book["rep_a"]).get(URL, {"q": "Alpha"}).content.decode()


@pytest.mark.parametrize(
    "path",
    [
        "customers/customer/{a}/change/",
        "customers/customer/{a}/history/",
        "customers/customer/{a}/delete/",
        "interactions/interaction/{ia}/change/",
        "interactions/interaction/{ia}/history/",
        "opportunities/opportunity/{oa}/change/",
        "opportunities/opportunity/{oa}/delete/",
    ],
)
def test_pages_of_another_reps_records_are_unreachable(book, path):
    url = "/admin/" + path.format(a=book["a"].pk, ia=book["ia"].pk, oa=book["oa"].pk)
    response = login(book["rep_b"]).get(url, follow=True)
    text = response.content.decode()
    assert "doesn’t exist" in text or response.status_code in (403, 404)
    for secret in ("Alpha Secret", "alpha notes", "Alpha deal"):
        assert secret not in text
    assert login(book["rep_a"]).get(url).status_code in (200, 403)  # 403: a rep may not delete customers


def test_history_of_a_deleted_record_is_not_shown_to_reps(book):
    record_id = book["ia"].pk
    book["ia"].delete()
    response = login(book["rep_b"]).get(f"/admin/interactions/interaction/{record_id}/history/", follow=True)
    assert "alpha notes" not in response.content.decode()


def test_autocomplete_offers_only_own_customers(book):
    response = login(book["rep_b"]).get(
        "/admin/autocomplete/",
        {"app_label": "opportunities", "model_name": "opportunity", "field_name": "customer", "term": ""},
    )
    assert [row["text"] for row in response.json()["results"]] == [str(book["b"])]


def test_form_refuses_another_reps_customer(book):
    client = login(book["rep_b"])
    response = client.post(
        "/admin/interactions/interaction/add/",
        {"customer": book["a"].pk, "interaction_type": "call", "occurred_at_0": "2025-01-01", "occurred_at_1": "10:00"},
    )
    assert response.status_code == 200 and "customer" in response.context["adminform"].form.errors
    assert book["a"].interactions.count() == 1


def test_export_contains_only_own_records(book):
    client = login(book["rep_b"])
    form = client.get(f"{URL}export/").context["form"]
    rows = read_csv(client.post(f"{URL}export/", export_data(form, CSV_FORMAT)))
    assert [row["name"] for row in rows] == ["Bravo Own"]
    # A selection naming another rep's customer exports nothing of it.
    data = {**export_data(form, CSV_FORMAT), "export_items": [book["a"].pk]}
    response = client.post(f"{URL}export/", data)
    assert "Alpha Secret" not in (response.content.decode() if not response.streaming else "")


def test_import_by_a_rep_creates_own_customers_and_cannot_touch_others(book):
    client = login(book["rep_b"])
    import_rows(client, URL, [["name", "email"], ["Imported", "imported@example.com"]])
    imported = Customer.objects.get(name="Imported")
    assert imported.owner == book["rep_b"] and imported.created_by == book["rep_b"]
    # An id of rep A's customer is answered as unknown: the row fails, nothing changes.
    preview = upload(client, URL, [["id", "name"], [book["a"].pk, "Hijacked"]])
    assert preview.context.get("confirm_form") is None
    assert Customer.objects.get(pk=book["a"].pk).name == "Alpha Secret"


def test_dashboard_shows_the_reps_figures(book):
    context = login(book["rep_b"]).get("/admin/").context
    assert context["pipeline"]["open"]["count"] == 1
    assert context["pipeline"]["open"]["total_value"] == Decimal("50.00")
    assert all(item.customer_id == book["b"].pk for item in context["latest_interactions"])


def test_owner_is_read_only_for_reps_and_set_on_add(book):
    client = login(book["rep_b"])
    page = client.get(f"{URL}add/")
    assert "owner" not in page.context["adminform"].form.fields
    client.post(
        f"{URL}add/",
        {
            "name": "Rep added",
            "status": "active",
            "owner": book["rep_a"].pk,
            "interactions-TOTAL_FORMS": "0",
            "interactions-INITIAL_FORMS": "0",
            "opportunities-TOTAL_FORMS": "0",
            "opportunities-INITIAL_FORMS": "0",
            "tasks-TOTAL_FORMS": "0",
            "tasks-INITIAL_FORMS": "0",
        },
    )
    assert Customer.objects.get(name="Rep added").owner == book["rep_b"]


def test_manager_reassigns_with_the_admin_action(book):
    manager = staff("boss", "Sales manager")
    client = login(manager)
    ids = [book["a"].pk, book["b"].pk]
    form = client.post(URL, {"action": "reassign_customers", "_selected_action": ids})
    assert form.status_code == 200 and "reassign-form" in form.content.decode()
    done = preview_then_confirm(
        client,
        URL,
        {"action": "reassign_customers", "_selected_action": ids, "confirm": "yes", "owner": book["rep_a"].pk},
    )
    assert done.status_code == 302
    assert set(Customer.objects.filter(owner=book["rep_a"]).values_list("pk", flat=True)) == set(ids)
    actions = [name for name, _ in login(book["rep_a"]).get(URL).context["action_form"].fields["action"].choices]
    assert "reassign_customers" not in actions


@pytest.mark.parametrize(
    ("role", "group"), [("rep", "Sales rep"), ("manager", "Sales manager"), ("read_only", "Read-only")]
)
def test_create_user_command(role, group):
    out = StringIO()
    call_command("create_user", f"new_{role}", "--role", role, "--email", "n@example.com", stdout=out)
    user = get_user_model().objects.get(username=f"new_{role}")
    assert user.is_staff and not user.is_superuser and list(user.groups.values_list("name", flat=True)) == [group]
    password = out.getvalue().split("Password (shown only now): ")[1].strip()
    assert user.check_password(password)
    with pytest.raises(CommandError):
        call_command("create_user", f"new_{role}", "--role", role, stdout=StringIO())


def test_create_user_with_given_password():
    call_command("create_user", "given", "--role", "rep", "--password", "s3cret-pass", stdout=StringIO())
    assert get_user_model().objects.get(username="given").check_password("s3cret-pass")
