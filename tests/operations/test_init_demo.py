import datetime
import os
import shutil
import subprocess
import sys

import pytest
from django.conf import settings
from django.contrib.auth import authenticate, get_user_model
from django.core.management import CommandError, call_command

from customers.models import Customer
from interactions.models import Interaction
from opportunities.models import Opportunity
from tests.factories import CustomerFactory, UserFactory


def printed_passwords(out):
    """``{username: password}`` from the accounts table init_demo prints."""
    passwords = {}
    for line in out.splitlines():
        if "password:" in line and not line.lstrip().startswith("-d"):
            before, password = line.split("password:")
            passwords[before.split()[-1]] = password.strip()
    return passwords


def run_init_demo(capsys):
    call_command("init_demo")
    return capsys.readouterr().out


def test_init_demo_on_an_empty_database_loads_demo_and_prints_a_working_password(db, capsys):
    out = run_init_demo(capsys)
    assert Customer.objects.filter(name="张三", company__name="ABC科技", company_name="ABC科技").exists()
    assert Interaction.objects.exists() and Opportunity.objects.exists()
    admin = authenticate(username="admin", password=printed_passwords(out)["admin"])
    assert admin is not None and admin.is_superuser and admin.is_staff


def test_init_demo_changes_nothing_on_a_database_in_use(db, capsys):
    UserFactory(username="existing")
    CustomerFactory(name="Real customer")
    out = run_init_demo(capsys)
    assert "password" not in out
    assert list(Customer.objects.values_list("name", flat=True)) == ["Real customer"]
    assert list(get_user_model().objects.values_list("username", flat=True)) == ["existing"]


def test_init_demo_loads_no_demo_over_companies_of_the_database(db, capsys):
    # The fixture's companies would take the ids of these: loaddata refuses, and init_demo does not try.
    from companies.models import Company
    from tests.factories import CompanyFactory

    company = CompanyFactory(name="Our own company")
    out = run_init_demo(capsys)
    assert "Loaded demo data" not in out
    assert list(Company.objects.values_list("pk", "name")) == [(company.pk, "Our own company")]
    assert not Customer.objects.exists()
    assert list(get_user_model().objects.values_list("username", flat=True)) == ["admin"]


def test_init_demo_twice_prints_the_password_only_once(db, capsys):
    first = run_init_demo(capsys)
    second = run_init_demo(capsys)
    assert "password:" in first
    assert "password:" not in second
    assert get_user_model().objects.count() == 4
    assert Customer.objects.count() == 24


@pytest.mark.parametrize(
    ("args", "url"),
    [
        ([], "http://127.0.0.1:8000"),
        (["--port", "8080"], "http://127.0.0.1:8080"),
        (["--host", "0.0.0.0", "--port", "9000"], "http://127.0.0.1:9000"),
        (["--host", "192.168.1.20"], "http://192.168.1.20:8000"),
        (["--host", "localhost", "--port", "8001"], "http://localhost:8001"),
        (["--host", "::1"], "http://[::1]:8000"),
        (["--host", "[::]", "--port", "8002"], "http://[::1]:8002"),
    ],
)
def test_init_demo_prints_the_address_the_server_will_listen_on(db, capsys, args, url):
    call_command("init_demo", "--no-demo-data", *args)
    out = capsys.readouterr().out
    assert f"Log in at {url}/admin/ or" in out
    assert f"curl -X POST {url}/api/auth/token" in out
    assert out.count("http://") == 2


@pytest.mark.parametrize("port", ["0", "65536", "80a", ""])
def test_init_demo_refuses_a_bad_port_before_creating_anything(db, port):
    with pytest.raises(CommandError, match="port"):
        call_command("init_demo", "--port", port)
    assert not get_user_model().objects.exists()
    assert not Customer.objects.exists()


@pytest.mark.skipif(shutil.which("make") is None, reason="needs make")
def test_make_run_gives_its_host_and_port_to_init_demo_and_the_server_with_its_worker(tmp_path):
    venv = tmp_path / "venv"  # "make -n" only prints the commands: nothing is created
    result = subprocess.run(
        ["make", "-n", "run", "HOST=0.0.0.0", "PORT=9000", f"VENV={venv}"],
        cwd=settings.BASE_DIR,
        capture_output=True,
        text=True,
        timeout=60,
        check=True,
    )
    lines = result.stdout.splitlines()
    assert f"{venv}/bin/python manage.py init_demo --host '0.0.0.0' --port '9000'" in lines
    assert f"{venv}/bin/python manage.py run_all 0.0.0.0:9000" in lines
    assert not venv.exists()


def test_demo_fixture_loads_on_an_empty_database(db):
    call_command("loaddata", "demo", verbosity=0)
    assert Customer.objects.count() == 10
    assert Opportunity.objects.filter(stage=Opportunity.Stage.CLOSED).exists()
    # Each lost deal says why, for the pipeline report's and the dashboard's lost reasons.
    assert sorted(Opportunity.objects.filter(stage=Opportunity.Stage.LOST).values_list("lost_reason", flat=True)) == [
        "No budget this year",
        "报价高于竞争对手",
    ]


def test_init_demo_adds_tasks_around_today_for_the_new_admin(db, capsys):
    from tasks.models import Task
    from tasks.windows import condition, day_of

    out = run_init_demo(capsys)
    admin = get_user_model().objects.get(username="admin")
    day = day_of(admin)
    tasks = Task.objects.filter(assignee=admin)
    assert "demo tasks around today" in out
    for window in ("overdue", "today", "upcoming", "none"):
        assert tasks.filter(condition(window, day)).exists(), window
    assert tasks.filter(done_at__isnull=False).exists()
    assert Task.history.filter(history_type="+").count() == Task.objects.count()


def test_init_demo_prints_a_working_password_for_every_role(db, capsys):
    from core.access import role_of

    out = run_init_demo(capsys)
    passwords = printed_passwords(out)
    assert set(passwords) == {"admin", "manager", "rep", "rep2"}
    for username, role in (("manager", "manager"), ("rep", "rep"), ("rep2", "rep")):
        user = authenticate(username=username, password=passwords[username])
        assert user is not None and user.is_staff and not user.is_superuser
        assert role_of(user) == role
    hint = next(line for line in out.splitlines() if "changepassword" in line)
    assert hint.split()[2] in (sys.executable, os.path.relpath(sys.executable))
    assert "already exists" not in out


def test_demo_data_is_dated_around_today_and_owned_by_demo_reps(db, capsys):
    from django.utils import timezone

    from companies.models import Company
    from notifications.models import Notification
    from tasks.models import Task
    from tasks.windows import condition, day_of

    run_init_demo(capsys)
    now = timezone.now()
    today = timezone.localdate(now)
    reps = get_user_model().objects.filter(username__in=["rep", "rep2"])
    # Every customer and company has an owner, and each rep has a book of their own.
    assert not Customer.objects.filter(owner__isnull=True).exists()
    assert not Company.objects.filter(owner__isnull=True).exists()
    for rep in reps:
        assert Customer.objects.filter(owner=rep).count() >= 5
        tasks = Task.objects.filter(assignee=rep)
        for window in ("overdue", "today", "upcoming"):
            assert tasks.filter(condition(window, day_of(rep))).exists(), (rep, window)
        assert Notification.objects.filter(recipient=rep).exists()
    assert Notification.objects.filter(recipient__username="manager").exists()
    # Several people per company, Chinese and Latin names among them; people belong to their companies.
    assert not Customer.objects.filter(company__isnull=True).exists()
    assert all(company.customers.count() >= 2 for company in Company.objects.all())
    assert Customer.objects.filter(name="李娜", company__name="ABC科技").exists()
    assert Customer.objects.filter(name="Oliver Chen", company__name="ABC科技").exists()
    # Interactions over the last three months, up to this week.
    occurred = list(Interaction.objects.values_list("occurred_at", flat=True))
    assert min(occurred) >= now - datetime.timedelta(days=92)
    assert max(occurred) <= now and max(occurred) >= now - datetime.timedelta(days=7)
    # Open deals close this month and next; closed ones were decided in the past.
    open_deals = Opportunity.objects.filter(stage__in=Opportunity.OPEN_STAGES)
    months = {(d.year, d.month) for d in open_deals.values_list("expected_close_date", flat=True)}
    next_month = (today.year + today.month // 12, today.month % 12 + 1)
    assert months == {(today.year, today.month), next_month}
    assert all(d >= today for d in open_deals.values_list("expected_close_date", flat=True))
    closed = Opportunity.objects.exclude(stage__in=Opportunity.OPEN_STAGES)
    assert closed.exists() and all(at <= now for at in closed.values_list("closed_at", flat=True))


def test_init_demo_twice_changes_nothing(db, capsys):
    from notifications.models import Notification
    from tasks.models import Task

    def snapshot():
        return [
            sorted(model.objects.values_list("pk", flat=True))
            for model in (Customer, Interaction, Opportunity, Task, Notification, get_user_model())
        ]

    run_init_demo(capsys)
    before = snapshot()
    owners = sorted(Customer.objects.values_list("pk", "owner_id"))
    out = run_init_demo(capsys)
    assert "password" not in out
    assert snapshot() == before
    assert sorted(Customer.objects.values_list("pk", "owner_id")) == owners


@pytest.mark.parametrize("with_rep", [True, False])
def test_init_demo_with_users_already_there_gives_the_demo_records_owners(db, capsys, with_rep):
    # Users existed before (no demo accounts are made): the demo's records go to their reps, else their managers.
    from companies.models import Company
    from tests.factories import member

    boss = UserFactory(username="boss", is_superuser=True, is_staff=True)
    rep = member("alice", "Sales rep", is_staff=True) if with_rep else None
    out = run_init_demo(capsys)
    assert "password" not in out
    owners = {rep} if with_rep else {boss}
    assert Customer.objects.exists()
    assert {customer.owner for customer in Customer.objects.select_related("owner")} == owners
    assert {company.owner for company in Company.objects.select_related("owner")} == owners


def _api_as(username):
    from knox.models import get_token_model
    from rest_framework.test import APIClient

    client = APIClient()
    _, token = get_token_model().objects.create(get_user_model().objects.get(username=username))
    client.credentials(HTTP_AUTHORIZATION=f"Bearer {token}")
    return client


@pytest.mark.parametrize(
    "model_path",
    ["companies.models.Company", *(f"{m.__module__}.{m.__name__}" for m in (Customer, Interaction, Opportunity))],
)
def test_the_demo_records_history_and_events_begin_from_what_init_demo_leaves(db, capsys, model_path):
    # Loaded raw from a fixture dated in the past, then moved to today and handed to reps by updates:
    # their one "created" entry and event hold what they are now, owner included, dated at their creation.
    from django.utils.module_loading import import_string

    from core.models import Event

    model = import_string(model_path)
    run_init_demo(capsys)
    tracked = [field.attname for field in model.history.model.tracked_fields]
    label = model._meta.label_lower
    for record in model.objects.all():
        entry = record.history.get()
        assert (entry.history_type, entry.history_user, entry.history_date) == ("+", None, record.created_at)
        assert [getattr(entry, name) for name in tracked] == [getattr(record, name) for name in tracked]
        [event] = Event.objects.filter(model=label, object_id=record.pk)
        assert event.type.endswith(".created")
        assert event.owner is not None


def test_a_change_to_a_demo_record_shows_only_that_change(db, capsys):
    # Not the dates and owners init_demo gave it: those are where its history begins.
    run_init_demo(capsys)
    api = _api_as("admin")
    for resource, model, change in (
        ("opportunities", Opportunity, {"title": "Retitled"}),
        ("customers", Customer, {"status": "lead"}),
    ):
        record = model.objects.exclude(**change).order_by("pk").first()
        assert api.patch(f"/api/{resource}/{record.pk}", change, format="json").status_code == 200
        changed, created = api.get(f"/api/{resource}/{record.pk}/history").json()["data"]
        assert (changed["history_type"], created["history_type"]) == ("changed", "created")
        assert [entry["field"] for entry in changed["changes"]] == list(change)


@pytest.mark.parametrize("region", ["CN", "US"])
def test_demo_phones_are_found_by_search_however_written(db, capsys, settings, region):
    # Written without its country code, a number is the national one of its country, whatever the region.
    settings.CRM_PHONE_REGION = region
    run_init_demo(capsys)
    api = _api_as("admin")
    zhang = Customer.objects.get(name="张三")
    assert zhang.phone_e164 == "+8613800138000"
    for term in ("13800138000", "138 0013 8000", "+86 138-0013-8000", "+8613800138000"):
        found = [row["id"] for row in api.get("/api/customers", {"search": term}).json()["data"]]
        assert found == [zhang.pk], term
    assert not Customer.objects.filter(phone__startswith="+86", phone_e164__isnull=True).exists()


def test_demo_data_holds_no_false_duplicates_and_is_keyed_for_the_create_hint(db, capsys):
    from duplicates.models import DuplicateCandidate

    run_init_demo(capsys)
    assert not DuplicateCandidate.objects.exists()
    # The README's create, on the demo data: the demo's 李四 at once, not after the first nightly rebuild.
    li = Customer.objects.get(name="李四", company_name="华为技术有限公司")
    answer = _api_as("admin").post(
        "/api/customers", {"name": "李四", "company": "ABC科技", "email": "lisi@abc.com"}, format="json"
    )
    assert answer.status_code == 201
    assert [hint["id"] for hint in answer.json()["data"]["duplicates"]] == [li.pk]


def test_a_database_holding_customers_of_its_own_gets_its_admin_only(db, capsys):
    # Brought over from the original CRM (import_legacy) before the first make run: no demo accounts, no demo data.
    Customer.objects.create(name="Brought over")
    out = run_init_demo(capsys)
    assert set(printed_passwords(out)) == {"admin"}
    assert list(get_user_model().objects.values_list("username", flat=True)) == ["admin"]
    assert list(Customer.objects.values_list("name", flat=True)) == ["Brought over"]


def test_the_demo_has_a_deal_gone_stale_in_my_day_of_its_owner_and_the_admin(db, capsys):
    # So a newcomer sees the stale list (tasks.reports.stale_condition) with something in it.
    from django.test import Client
    from django.utils import timezone

    from tasks.reports import stale_condition

    run_init_demo(capsys)
    stale = list(Opportunity.objects.filter(stale_condition(timezone.now())).select_related("customer__owner"))
    assert stale and all(deal.is_open for deal in stale)
    for username in {deal.customer.owner.username for deal in stale} | {"admin"}:
        client = Client()
        client.force_login(get_user_model().objects.get(username=username))
        page = client.get("/admin/tasks/task/my-day/")
        shown = {row["id"] for row in page.context["stale"]["deals"]}
        mine = {deal.pk for deal in stale if username == "admin" or deal.customer.owner.username == username}
        assert shown == mine, username
        section = page.content.decode().split('id="my-day-stale"')[1].split("</section>")[0]
        assert f"({len(mine)})" in section
        assert all(deal.title in section for deal in stale if deal.pk in mine)
