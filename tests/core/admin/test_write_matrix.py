"""Every admin POST endpoint x every role: the admin writes only what the API would let that user write.

Rep A owns customer ``a`` (with an interaction and an opportunity), rep B owns
``b``. The roles: the two reps, a manager, a read-only user, staff without a role,
and two users given the managers' permissions one by one, which must not make
writers of them: staff outside every role group, and a read-only user. Each case posts to one endpoint of one registered model admin, naming rep
A's records, with the data a superuser's browser would send (so the owner field
and every other field are in it, whatever the role may set), and the table says
which roles may change the database by it. The whole database (records, their
history, users, groups, tokens, the admin log) is compared before and after: a
role not listed must leave it exactly as it was, a listed one must change it,
and some cases check what the change was (a rep's revert keeps the owner).

The endpoints are enumerated from the registered model admins' ``get_urls()``
and their actions: a new URL or action without a case here fails
``test_every_admin_post_endpoint_and_action_is_in_the_matrix``.
"""

import functools
from collections.abc import Callable
from dataclasses import dataclass

import pytest
from django.conf import settings as django_settings
from django.contrib import admin
from django.contrib.admin.models import LogEntry
from django.contrib.auth import get_user_model
from django.contrib.auth.models import Group, Permission
from django.core.files.uploadedfile import SimpleUploadedFile
from django.db import connection
from django.test import Client, RequestFactory, override_settings
from django.urls import URLPattern, reverse
from django.utils import timezone
from knox.models import get_token_model

from companies.models import Company
from core import tags as tag_service
from core.changesets import Changeset, ChangesetRow, recording
from core.models import CustomField, MergedRecord, Tag, UserPreferences
from customers.models import Customer
from duplicates.models import DuplicateCandidate, Kind
from interactions.models import Interaction
from mailgateway.models import InboundEmail
from notifications.models import Notification
from notifications.services import notify
from operations.models import ColumnMapping
from opportunities.models import Opportunity, StageChange
from tasks.models import Task
from tests.core.admin.helpers import change_form_data, confirm, csv_bytes, upload
from tests.factories import (
    CompanyFactory,
    CustomerFactory,
    InteractionFactory,
    OpportunityFactory,
    TaskFactory,
    UserFactory,
    fresh,
)
from webhooks import delivery as webhook_delivery
from webhooks.models import Delivery, Endpoint

pytestmark = pytest.mark.django_db

ROLES = ["rep_a", "rep_b", "manager", "read_only", "no_role", "perms_no_role", "read_only_granted"]
GROUPS = {
    "rep_a": "Sales rep",
    "rep_b": "Sales rep",
    "manager": "Sales manager",
    "read_only": "Read-only",
    "read_only_granted": "Read-only",
}

NOBODY = frozenset()
MANAGER = frozenset({"manager"})
OWNER_OR_MANAGER = frozenset({"rep_a", "manager"})
ANY_WRITER = frozenset({"rep_a", "rep_b", "manager"})

SNAPSHOT_MODELS = [
    MergedRecord,
    DuplicateCandidate,
    Company,
    Company.history.model,
    Customer,
    Interaction,
    Opportunity,
    StageChange,
    Task,
    UserPreferences,
    Task.history.model,
    Customer.history.model,
    Interaction.history.model,
    Opportunity.history.model,
    get_user_model(),
    get_user_model().groups.through,
    get_user_model().user_permissions.through,
    Group,
    Group.permissions.through,
    get_token_model(),
    LogEntry,
    Endpoint,
    Endpoint.history.model,
    Delivery,
    Notification,
    InboundEmail,
    InboundEmail.interactions.through,
    CustomField,
    Tag,
    Tag.history.model,
    Customer.tag_set.through,
    Company.tag_set.through,
    Opportunity.tag_set.through,
    Changeset,
    ChangesetRow,
    ColumnMapping,
]


@pytest.fixture(scope="module")
def built_world(module_data):
    # The webhook endpoint below is on this machine; such addresses are refused unless allowed.
    with override_settings(WEBHOOKS_ALLOW_PRIVATE=True):
        return module_data(build_world)


@pytest.fixture
def world(built_world, settings):
    settings.WEBHOOKS_ALLOW_PRIVATE = True
    return fresh(built_world)


def build_world():
    users = {}
    for role in ROLES:
        users[role] = UserFactory(username=role, is_staff=True)
        if role in GROUPS:
            users[role].groups.add(Group.objects.get(name=GROUPS[role]))
    # A user outside every role group, and a read-only one, given the managers' permissions one by one.
    for role in ("perms_no_role", "read_only_granted"):
        users[role].user_permissions.set(Permission.objects.filter(group__name="Sales manager"))
    root = UserFactory(username="root", is_staff=True, is_superuser=True)

    # Rep A's records each have an older version: under rep B, with other values.
    ca = CompanyFactory(name="Alpha Co old", owner=users["rep_b"])
    ca.name, ca.owner = "Alpha Co", users["rep_a"]
    ca.save()
    # Rep A's revert of ``a`` brings back its earlier company: one that rep A sees.
    old_co = CompanyFactory(name="Old Co", owner=users["rep_a"])
    a = CustomerFactory(name="Alpha old", company="Old Co", owner=users["rep_b"])
    a.name, a.company, a.owner = "Alpha", ca, users["rep_a"]
    a.save()
    ia = InteractionFactory(customer=a, notes="old notes")
    ia.notes = "alpha notes"
    ia.save()
    oa = OpportunityFactory(customer=a, title="Old deal", stage=Opportunity.Stage.LEAD, probability=10)
    oa.title = "Alpha deal"
    oa.save()
    ta = TaskFactory(customer=a, opportunity=oa, assignee=users["rep_a"], title="Old task", due_at=timezone.now())
    ta.title = "Alpha task"
    ta.save()
    b = CustomerFactory(name="Bravo", owner=users["rep_b"])
    get_token_model().objects.create(users["manager"])
    endpoint = Endpoint.objects.create(
        url="http://127.0.0.1:9/hook", description="Old hook", created_by=users["manager"]
    )
    endpoint.description = "Hook"
    endpoint.save()
    delivery = webhook_delivery.send_test_event(endpoint=endpoint, user=users["manager"])
    # Given up on (a replay starts it again; a pending one is left to its retries).
    Delivery.objects.filter(pk=delivery.pk).update(status=Delivery.Status.FAILED, next_attempt_at=None)
    delivery.refresh_from_db()
    # A tag with an older name (a revert brings it back).
    tag = Tag.objects.create(name="Old tag")
    tag_service.save_tag(tag, name="VIP")
    # Rep A's bulk change of their own customer (undone by the changeset admin's Undo).
    with recording("action", user=users["rep_a"]) as changeset:
        a.phone = "555"
        a.save()
    return {
        "changeset": changeset,
        # Two companies of rep A's that are probably one.
        "pair": DuplicateCandidate.objects.create(
            kind=Kind.COMPANY, a_id=min(ca.pk, old_co.pk), b_id=max(ca.pk, old_co.pk), score=0.8, reasons=["x"]
        ),
        "tag": tag,
        "endpoint": endpoint,
        "delivery": delivery,
        "users": users,
        "root": root,
        "ca": ca,
        "a": a,
        "ia": ia,
        "oa": oa,
        "ta": ta,
        "b": b,
        "cb": CompanyFactory(name="Bravo Co", owner=users["rep_b"]),
        "ib": InteractionFactory(customer=b),
        "ob": OpportunityFactory(customer=b),
        "group": Group.objects.get(name="Sales rep"),
        "token": get_token_model().objects.get(user=users["manager"]),
        # Rep A's own notification: only rep A may mark it read.
        "notification": notify(users["rep_a"], "test", "For rep A")[0],
        # Mail rep A's gateway address received and kept to assign.
        "inbound": InboundEmail.objects.create(
            user=users["rep_a"], message_id="<m@x>", subject="Kept", status=InboundEmail.Status.UNMATCHED
        ),
        "custom_field": CustomField.objects.create(model="customers", key="region", label="Region"),
        # A column mapping rep A saved for their files.
        "mapping": ColumnMapping.objects.create(
            user=users["rep_a"], signature="full name\x1fe-mail", kind="customers", mapping={"full name": "name"}
        ),
    }


def login(user):
    client = Client()
    client.force_login(user)
    return client


def snapshot():
    """Every row of every table in SNAPSHOT_MODELS, as the database returns it, by model label."""
    state = {}
    with connection.cursor() as cursor:
        for label, sql, params in snapshot_queries(connection.alias):
            cursor.execute(sql, params)
            state[label] = cursor.fetchall()
    return state


@functools.cache
def snapshot_queries(alias):
    """(label, SQL, parameters) reading each snapshot table in primary-key order, compiled once.

    Every test takes two snapshots of 40 tables: compiling the queries each time cost more
    than running them. The rows are compared as the database returns them (no conversion).
    """
    queries = []
    for model in SNAPSHOT_MODELS:
        # A user's last_login changes when a test signs in; that is not a change to the records.
        columns = [field.attname for field in model._meta.concrete_fields if field.name != "last_login"]
        rows = model._base_manager.using(alias).order_by("pk").values_list(*columns)
        if model is LogEntry:
            # Django's note that a form was saved without a change: no record changed.
            rows = rows.exclude(change_message="[]")
        sql, params = rows.query.get_compiler(alias).as_sql()
        queries.append((model._meta.label, sql, params))
    return queries


def url(record, view, *args):
    opts = record._meta
    return reverse(f"admin:{opts.app_label}_{opts.model_name}_{view}", args=[record.pk, *args])


def list_url(model, view="changelist"):
    return reverse(f"admin:{model._meta.app_label}_{model._meta.model_name}_{view}")


def stored(record):
    return type(record)._base_manager.get(pk=record.pk)


# ---- What each case posts --------------------------------------------------------------------------


def post_add(model, fill):
    def run(client, w, role):
        data = change_form_data(login(w["root"]).get(list_url(model, "add")))
        data.update(fill(w))
        return client.post(list_url(model, "add"), data)

    return run


def post_change(key, fill):
    def run(client, w, role):
        data = change_form_data(login(w["root"]).get(url(w[key], "change")))
        data.update(fill(w))
        return client.post(url(w[key], "change"), data)

    return run


def post_delete(key):
    return lambda client, w, role: client.post(url(w[key], "delete"), {"post": "yes"})


def post_revert(key):
    def run(client, w, role):
        version = w[key].history.earliest().history_id
        target = url(w[key], "simple_history", version)
        return client.post(target, change_form_data(login(w["root"]).get(target)))

    return run


def post_plain(key, view, data=None):
    return lambda client, w, role: client.post(url(w[key], view), data or {})


def post_redirect(key):
    return lambda client, w, role: client.post(url(w[key], "change").removesuffix("change/"))


def post_action(model, key, action, extra=lambda w: {}):
    """The action as the changelist posts it, then its preview's "Confirm"; a role shown no preview
    posts the confirm anyway (a forged one), which must not write either."""

    def run(client, w, role):
        data = {"action": action, "_selected_action": [w[key].pk], "index": "0", "post": "yes", **extra(w)}
        first = client.post(list_url(model), data)
        context = getattr(first, "context", None) or {}
        if context.get("changeset_preview") is not None:
            assert first.status_code == 200
            confirm_data = {}
            for name, value in context["confirm_data"]:
                confirm_data.setdefault(name, []).append(value)
            confirm_data.update({"preview_confirmed": "yes", "preview_digest": context["digest"]})
            return client.post(list_url(model), confirm_data)
        return client.post(list_url(model), {**data, "preview_confirmed": "yes"})

    return run


def post_import_preview(model, rows):
    return lambda client, w, role: upload(client, list_url(model), rows(w))


def post_import_confirm(model, rows):
    """Confirm an import: the role's own preview when it gets one, else a manager's (a forged confirm)."""

    def run(client, w, role):
        preview = upload(client, list_url(model), rows(w))
        context = getattr(preview, "context", None) or {}
        if context.get("confirm_form") is None:
            preview = upload(login(w["users"]["manager"]), list_url(model), rows(w))
        return confirm(client, list_url(model), preview)

    return run


def post_export(model):
    def run(client, w, role):
        form = login(w["root"]).get(list_url(model, "export")).context["form"]
        data = {"format": "0", "resource": "0", **{name: "on" for name in form.fields if "_" in name}}
        return client.post(list_url(model, "export"), data)

    return run


def post_list_edit(client, w, role):
    """The list's stage and probability of rep A's opportunity, edited and saved."""
    data = {
        "form-TOTAL_FORMS": "1",
        "form-INITIAL_FORMS": "1",
        "form-0-id": str(w["oa"].pk),
        "form-0-stage": Opportunity.Stage.NEGOTIATION,
        "form-0-probability": "65",
        "_save": "Save",
    }
    return client.post(list_url(Opportunity), data)


# ---- What a case must have done where it writes ------------------------------------------------------


def field_is(key, name, value):
    def check(w, role):
        actual = getattr(stored(w[key]), name)
        expected = value(w) if callable(value) else value
        assert actual == expected, (name, actual, expected)

    return check


def gone(key):
    def check(w, role):
        assert not type(w[key])._base_manager.filter(pk=w[key].pk).exists()

    return check


def owned_by_writer(w, role):
    """Only a manager names another owner; a rep's new customer is their own."""
    return w["users"]["rep_b"] if role == "manager" else w["users"][role]


def owner_kept_unless_manager(w, role):
    return w["users"]["rep_b"] if role == "manager" else w["users"]["rep_a"]


def customer_added(w, role):
    assert Customer.objects.get(name="Added").owner == owned_by_writer(w, role)


def customer_changed(w, role):
    a = stored(w["a"])
    assert (a.name, a.owner) == ("Changed", owner_kept_unless_manager(w, role))
    assert stored(w["ia"]).notes == "alpha notes"


def customer_reverted(w, role):
    a = stored(w["a"])
    # The earlier owner comes back only for a manager: a rep's revert keeps the current one.
    assert (a.name, a.company_name, a.owner) == ("Alpha old", "Old Co", owner_kept_unless_manager(w, role))


def child_added(model, text_field, value):
    def check(w, role):
        assert model.objects.filter(customer=w["a"], **{text_field: value}).count() == 1

    return check


def customer_imported(w, role):
    assert Customer.objects.get(name="Imported").owner == w["users"][role]


def company_added(w, role):
    assert Company.objects.get(name="Added").owner == owned_by_writer(w, role)


def company_imported(w, role):
    assert Company.objects.get(name="Imported").owner == w["users"][role]


# ---- The cases -------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Case:
    model: type
    view: str  # the admin URL posted to: its name without "<app>_<model>_", or "redirect"
    label: str
    run: Callable
    writers: frozenset
    check: Callable | None = None
    action: str | None = None
    before: Callable | None = None

    @property
    def id(self):
        return f"{self.model._meta.model_name}-{self.label}"


def customer_rows(w):
    return [["name", "email"], ["Imported", "imported@example.com"]]


def company_rows(w):
    return [["name", "domain"], ["Imported", "imported.example.com"]]


def interaction_rows(w):
    return [["customer", "interaction_type", "notes"], [w["a"].pk, "call", "Imported"]]


def opportunity_rows(w):
    return [["customer", "title", "value", "stage"], [w["a"].pk, "Imported", "10", "lead"]]


def task_rows(w):
    return [["customer", "title", "kind"], [w["a"].pk, "Imported", "call"]]


def update_rows(key, text_field):
    if key in ("a", "ca"):
        return lambda w: [["id", text_field], [w[key].pk, "Imported"]]
    if key == "ia":
        return lambda w: [["id", "customer", "interaction_type", "notes"], [w[key].pk, w["a"].pk, "call", "Imported"]]
    if key == "ta":
        return lambda w: [["id", "customer", "title"], [w[key].pk, w["a"].pk, "Imported"]]
    return lambda w: [["id", "customer", text_field], [w[key].pk, w["a"].pk, "Imported"]]


# model, key of rep A's record, a text field, what an add form fills in, a check of the add,
# the move of the record to rep B's book, who may delete, rows that create records, who may import them.
CRM = [
    (
        Company,
        "ca",
        "name",
        lambda w: {"name": "Added", "owner": w["users"]["rep_b"].pk},
        company_added,
        lambda w: {"owner": w["users"]["rep_b"].pk},
        field_is("ca", "owner", lambda w: w["users"]["rep_b"]),
        MANAGER,
        company_rows,
        company_imported,
    ),
    (
        Customer,
        "a",
        "name",
        lambda w: {"name": "Added", "status": "active", "owner": w["users"]["rep_b"].pk},
        customer_added,
        lambda w: {"owner": w["users"]["rep_b"].pk},
        field_is("a", "owner", lambda w: w["users"]["rep_b"]),
        MANAGER,
        customer_rows,
        customer_imported,
    ),
    (
        Interaction,
        "ia",
        "notes",
        lambda w: {"customer": w["a"].pk, "interaction_type": "call", "notes": "Added"},
        child_added(Interaction, "notes", "Added"),
        lambda w: {"customer": w["b"].pk},
        field_is("ia", "customer", lambda w: w["b"]),
        OWNER_OR_MANAGER,
        interaction_rows,
        child_added(Interaction, "notes", "Imported"),
    ),
    (
        Opportunity,
        "oa",
        "title",
        lambda w: {"customer": w["a"].pk, "title": "Added"},
        child_added(Opportunity, "title", "Added"),
        lambda w: {"customer": w["b"].pk},
        field_is("oa", "customer", lambda w: w["b"]),
        OWNER_OR_MANAGER,
        opportunity_rows,
        child_added(Opportunity, "title", "Imported"),
    ),
    (
        Task,
        "ta",
        "title",
        lambda w: {"customer": w["a"].pk, "title": "Added", "kind": "call", "priority": "normal"},
        child_added(Task, "title", "Added"),
        lambda w: {"customer": w["b"].pk, "opportunity": ""},
        field_is("ta", "customer", lambda w: w["b"]),
        OWNER_OR_MANAGER,
        task_rows,
        child_added(Task, "title", "Imported"),
    ),
]
CHANGES = {
    # A rep's form carries the owner too: what a browser sends is not what a rep may set.
    "ca": lambda w: {"name": "Changed", "owner": w["users"]["rep_b"].pk},
    # The customer's page lists its interactions (their own pages edit them): no inline to post.
    "a": lambda w: {"name": "Changed", "owner": w["users"]["rep_b"].pk, "interactions-0-notes": "inline notes"},
    "ia": lambda w: {"notes": "Changed"},
    "oa": lambda w: {"title": "Changed"},
    "ta": lambda w: {"title": "Changed"},
}
EARLIER = {"ca": "Alpha Co old", "a": "Alpha old", "ia": "old notes", "oa": "Old deal", "ta": "Old task"}


def crm_cases():
    cases = []
    for model, key, text, adding, added, moving, moved, deleters, new_rows, imported in CRM:
        customer = model is Customer
        # Anyone who writes may add customers and companies to their own book.
        own_book = model in (Customer, Company)
        changing = CHANGES[key]
        cases += [
            Case(model, "add", "add", post_add(model, adding), ANY_WRITER if own_book else OWNER_OR_MANAGER, added),
            Case(
                model,
                "change",
                "change",
                post_change(key, changing),
                OWNER_OR_MANAGER,
                customer_changed if customer else field_is(key, text, "Changed"),
            ),
            Case(model, "change", "change-into-another-book", post_change(key, moving), MANAGER, moved),
            Case(model, "delete", "delete", post_delete(key), deleters, gone(key)),
            Case(
                model,
                "changelist",
                "action-delete-selected",
                post_action(model, key, "delete_selected"),
                deleters,
                gone(key),
                action="delete_selected",
            ),
            Case(
                model,
                "changelist",
                "action-export",
                post_action(model, key, "export_admin_action", lambda w: {"format": "0"}),
                NOBODY,
                action="export_admin_action",
            ),
            Case(
                model,
                "simple_history",
                "revert",
                post_revert(key),
                # A revert is a manager's call; a rep changes the record instead.
                MANAGER,
                customer_reverted if customer else field_is(key, text, EARLIER[key]),
            ),
            Case(model, "history", "history", post_plain(key, "history"), NOBODY),
            Case(model, "redirect", "redirect", post_redirect(key), NOBODY),
            Case(model, "import", "import-preview", post_import_preview(model, update_rows(key, text)), NOBODY),
            Case(
                model,
                "process_import",
                "import-confirm-new",
                post_import_confirm(model, new_rows),
                ANY_WRITER if own_book else OWNER_OR_MANAGER,
                imported,
            ),
            Case(
                model,
                "process_import",
                "import-confirm-update",
                post_import_confirm(model, update_rows(key, text)),
                OWNER_OR_MANAGER,
                field_is(key, text, "Imported"),
            ),
            Case(model, "export", "export", post_export(model), NOBODY),
        ]
    for status in Customer.Status:
        cases.append(
            Case(
                Customer,
                "changelist",
                f"action-set-status-{status.value}",
                post_action(Customer, "a", f"set_status_{status.value}"),
                OWNER_OR_MANAGER,
                field_is("a", "status", status),
                action=f"set_status_{status.value}",
                # From another status, so that the action has something to change.
                before=lambda w, status=status: Customer.objects.filter(pk=w["a"].pk).update(
                    status=Customer.Status.INACTIVE if status == Customer.Status.LEAD else Customer.Status.LEAD
                ),
            )
        )
    cases += [
        Case(
            Customer,
            "changelist",
            "action-reassign",
            post_action(
                Customer, "a", "reassign_customers", lambda w: {"confirm": "yes", "owner": w["users"]["rep_b"].pk}
            ),
            MANAGER,
            field_is("a", "owner", lambda w: w["users"]["rep_b"]),
            action="reassign_customers",
        ),
        Case(
            Opportunity,
            "changelist",
            "action-set-stage",
            post_action(Opportunity, "oa", "set_stage", lambda w: {"confirm": "yes", "stage": "lost"}),
            OWNER_OR_MANAGER,
            field_is("oa", "stage", Opportunity.Stage.LOST),
            action="set_stage",
        ),
        Case(
            Opportunity,
            "changelist",
            "list-edit",
            post_list_edit,
            OWNER_OR_MANAGER,
            field_is("oa", "stage", Opportunity.Stage.NEGOTIATION),
        ),
    ]
    cases += merge_cases()
    cases += my_day_cases()
    cases += board_cases()
    cases += quick_action_cases()
    return cases


def post_merge(model, keys, confirm=True, version=lambda record: stored(record).updated_at.isoformat()):
    def run(client, w, role):
        records = [w[key] for key in keys]
        data = {"survivor": records[0].pk, **{f"version:{r.pk}": version(r) for r in records}}
        if confirm:
            data["confirm"] = "yes"
        return client.post(f"{list_url(model, 'merge')}?ids={','.join(str(r.pk) for r in records)}", data)

    return run


def twin(model, key, factory):
    """A second record of rep A's (``<key>2``) to merge ``key`` with."""

    def before(w):
        w[f"{key}2"] = factory(name="Alpha twin", owner=w["users"]["rep_a"])

    return before


def merge_cases():
    """The side-by-side merge page (its preview writes nothing; a stale page merges nothing) and the action."""
    cases = []
    for model, key, factory in [(Customer, "a", CustomerFactory), (Company, "ca", CompanyFactory)]:
        merged = holds(lambda w, model=model, key=key: not model.objects.filter(pk=w[f"{key}2"].pk).exists())
        cases += [
            Case(
                model,
                "merge",
                "merge",
                post_merge(model, [key, f"{key}2"]),
                OWNER_OR_MANAGER,
                merged,
                before=twin(model, key, factory),
            ),
            Case(
                model,
                "merge",
                "merge-preview",
                post_merge(model, [key, f"{key}2"], confirm=False),
                NOBODY,
                before=twin(model, key, factory),
            ),
            Case(
                model,
                "merge",
                "merge-stale-version",
                post_merge(model, [key, f"{key}2"], version=lambda record: "2000-01-01T00:00:00+00:00"),
                NOBODY,
                before=twin(model, key, factory),
            ),
            # Across two books: only a manager sees both.
            Case(model, "merge", "merge-across-books", post_merge(model, [key, "b" if key == "a" else "cb"]), MANAGER),
            # The action only leads to the page.
            Case(
                model,
                "changelist",
                "action-merge",
                post_action(model, key, "merge_selected"),
                NOBODY,
                action="merge_selected",
            ),
        ]
    return cases


def post_quick(name, data, customer="a"):
    def run(client, w, role):
        return client.post(reverse("admin:customers_customer_quick_action", args=[w[customer].pk, name]), data)

    return run


def quick_action_cases():
    """The customer page's quick actions: each adds a record to rep A's customer, as the API would."""
    added = {
        "interaction": holds(lambda w: Interaction.objects.filter(customer=w["a"], notes="Quick call").count() == 1),
        "opportunity": child_added(Opportunity, "title", "Quick deal"),
        "task": child_added(Task, "title", "Quick task"),
    }
    data = {
        "interaction": {"interaction-interaction_type": "call", "interaction-notes": "Quick call"},
        "opportunity": {"opportunity-title": "Quick deal", "opportunity-stage": "lead"},
        "task": {"task-title": "Quick task", "task-kind": "call"},
    }
    invalid = {
        "interaction": {"interaction-interaction_type": "fax"},
        "opportunity": {"opportunity-title": "", "opportunity-stage": "lead"},
        "task": {"task-title": "", "task-kind": "call"},
    }
    cases = []
    for name in data:
        cases += [
            Case(
                Customer, "quick_action", f"quick-{name}", post_quick(name, data[name]), OWNER_OR_MANAGER, added[name]
            ),
            Case(Customer, "quick_action", f"quick-{name}-invalid", post_quick(name, invalid[name]), NOBODY),
        ]
    return cases


def post_my_day(action, version=lambda w: stored(w["ta"]).updated_at.isoformat()):
    def run(client, w, role):
        data = {"task": w["ta"].pk, "action": action, "version": version(w)}
        return client.post(reverse("admin:tasks_task_my_day_act"), data)

    return run


def holds(predicate):
    def check(w, role):
        assert predicate(w), role

    return check


def my_day_cases():
    """The "My day" page's one-click changes, on rep A's task: done, snooze, log a call; a stale page writes nothing."""
    return [
        Case(
            Task,
            "my_day",
            "my-day-page",
            lambda client, w, role: client.post(reverse("admin:tasks_task_my_day")),
            NOBODY,
        ),
        Case(
            Task,
            "my_day_act",
            "my-day-done",
            post_my_day("done"),
            OWNER_OR_MANAGER,
            holds(lambda w: stored(w["ta"]).done_at is not None),
        ),
        Case(
            Task,
            "my_day_act",
            "my-day-snooze",
            post_my_day("snooze"),
            OWNER_OR_MANAGER,
            holds(lambda w: stored(w["ta"]).due_at > w["ta"].due_at),
        ),
        Case(
            Task,
            "my_day_act",
            "my-day-log-call",
            post_my_day("log_call"),
            OWNER_OR_MANAGER,
            holds(lambda w: Interaction.objects.filter(customer=w["a"], notes="Alpha task").count() == 1),
        ),
        Case(
            Task,
            "my_day_act",
            "my-day-stale-version",
            post_my_day("done", lambda w: "2000-01-01T00:00:00+00:00"),
            NOBODY,
        ),
    ]


def post_board_move(stage, version=lambda w: stored(w["oa"]).updated_at.isoformat(), accept="text/html"):
    def run(client, w, role):
        data = {"opportunity": w["oa"].pk, "stage": stage, "version": version(w), "filters": "owner=mine"}
        return client.post(reverse("admin:opportunities_opportunity_board_move"), data, HTTP_ACCEPT=accept)

    return run


def board_cases():
    """The pipeline board's move of rep A's deal (a form, or JSON for the script); a stale card moves nothing."""
    moved = holds(lambda w: stored(w["oa"]).stage == Opportunity.Stage.PROPOSAL)
    return [
        Case(
            Opportunity,
            "board",
            "board-page",
            lambda client, w, role: client.post(reverse("admin:opportunities_opportunity_board")),
            NOBODY,
        ),
        Case(Opportunity, "board_move", "board-move", post_board_move("proposal"), OWNER_OR_MANAGER, moved),
        Case(
            Opportunity,
            "board_move",
            "board-move-json",
            post_board_move("proposal", accept="application/json"),
            OWNER_OR_MANAGER,
            moved,
        ),
        Case(
            Opportunity,
            "board_move",
            "board-move-stale-version",
            post_board_move("proposal", lambda w: "2000-01-01T00:00:00+00:00"),
            NOBODY,
        ),
    ]


def auth_cases():
    """Users, groups and tokens: no sales role may change them (only superusers, who are managers in every book)."""
    user_model, token_model = get_user_model(), get_token_model()
    cases = []
    for model, key, changing in [
        (user_model, "rep_b_user", lambda w: {"is_superuser": "on", "is_staff": "on"}),
        (Group, "group", lambda w: {"name": "Renamed"}),
        (token_model, "token", lambda w: {"expiry_0": "2999-01-01", "expiry_1": "00:00:00"}),
    ]:
        cases += [
            Case(model, "add", "add", post_add(model, lambda w: {"username": "intruder", "name": "Intruders"}), NOBODY),
            Case(model, "change", "change", post_change(key, changing), NOBODY),
            Case(model, "delete", "delete", post_delete(key), NOBODY),
            Case(
                model,
                "changelist",
                "action-delete-selected",
                post_action(model, key, "delete_selected"),
                NOBODY,
                action="delete_selected",
            ),
            Case(model, "history", "history", post_plain(key, "history"), NOBODY),
            Case(model, "redirect", "redirect", post_redirect(key), NOBODY),
        ]
    password = {"password1": "An0ther-secret-pass", "password2": "An0ther-secret-pass", "usable_password": "true"}
    cases.append(
        Case(user_model, "password_change", "password", post_plain("rep_b_user", "password_change", password), NOBODY)
    )
    return cases


def endpoint_added(w, role):
    added = Endpoint.objects.get(url="http://127.0.0.1:9/other")
    assert added.created_by == w["users"]["manager"]
    assert added.history.count() == 1


def endpoint_reverted(w, role):
    endpoint = stored(w["endpoint"])
    # The older version's description comes back; the secret is no part of the history and stays.
    assert (endpoint.description, endpoint.secret) == ("Old hook", w["endpoint"].secret)


def webhook_cases():
    """Webhook endpoints and their deliveries reach outside the CRM: managers only; no import or export."""
    cases = [
        Case(
            Endpoint,
            "add",
            "add",
            post_add(Endpoint, lambda w: {"url": "http://127.0.0.1:9/other"}),
            MANAGER,
            endpoint_added,
        ),
        Case(
            Endpoint,
            "change",
            "change",
            post_change("endpoint", lambda w: {"description": "Changed"}),
            MANAGER,
            field_is("endpoint", "description", "Changed"),
        ),
        Case(
            Endpoint,
            "change",
            "change-to-a-private-address-refused",
            post_change("endpoint", lambda w: {"url": "http://10.0.0.1/hook"}),
            NOBODY,
            before=lambda w: setattr(django_settings, "WEBHOOKS_ALLOW_PRIVATE", False),
        ),
        Case(
            Endpoint,
            "change",
            "deactivate",
            post_change("endpoint", lambda w: {"is_active": ""}),
            MANAGER,
            field_is("endpoint", "is_active", False),
        ),
        Case(Endpoint, "simple_history", "revert", post_revert("endpoint"), MANAGER, endpoint_reverted),
        Case(Delivery, "add", "add", lambda client, w, role: client.post(list_url(Delivery, "add"), {}), NOBODY),
        Case(Delivery, "change", "change", post_plain("delivery", "change", {"status": "succeeded"}), NOBODY),
        Case(
            Delivery,
            "simple_history",
            "revert",
            lambda client, w, role: client.post(url(w["delivery"], "simple_history", 1), {"status": "succeeded"}),
            NOBODY,
        ),
    ]
    for model, key, actions in [
        (Endpoint, "endpoint", ("delete_selected", "send_test_event", "rotate_secret")),
        (Delivery, "delivery", ("delete_selected", "replay")),
    ]:
        cases += [
            Case(model, "delete", "delete", post_delete(key), MANAGER),
            Case(model, "history", "history", post_plain(key, "history"), NOBODY),
            Case(model, "redirect", "redirect", post_redirect(key), NOBODY),
            # An endpoint carries its secret: nobody imports or exports them.
            Case(
                model,
                "import",
                "import-preview",
                post_import_preview(model, lambda w: [["url"], ["http://127.0.0.1:9/x"]]),
                NOBODY,
            ),
            Case(
                model,
                "process_import",
                "import-confirm",
                lambda client, w, role, model=model: client.post(list_url(model, "process_import"), {}),
                NOBODY,
            ),
            Case(
                model,
                "export",
                "export",
                lambda client, w, role, model=model: client.post(list_url(model, "export"), {"format": "0"}),
                NOBODY,
            ),
            Case(
                model,
                "changelist",
                "action-export",
                post_action(model, key, "export_admin_action", lambda w: {"format": "0"}),
                NOBODY,
            ),
        ]
        cases += [
            Case(model, "changelist", f"action-{action}", post_action(model, key, action), MANAGER, action=action)
            for action in actions
        ]
    return cases


def notification_cases():
    """Each user's own notifications: created by the CRM only; marking read is the recipient's alone."""
    return [
        Case(
            Notification,
            "add",
            "add",
            lambda client, w, role: client.post(list_url(Notification, "add"), {"title": "Forged", "kind": "x"}),
            NOBODY,
        ),
        Case(Notification, "change", "change", post_plain("notification", "change", {"title": "X"}), NOBODY),
        Case(Notification, "delete", "delete", post_delete("notification"), NOBODY),
        Case(Notification, "history", "history", post_plain("notification", "history"), NOBODY),
        Case(Notification, "redirect", "redirect", post_redirect("notification"), NOBODY),
        Case(
            Notification,
            "changelist",
            "action-mark-read",
            post_action(Notification, "notification", "mark_read"),
            frozenset({"rep_a"}),
            lambda w, role: stored(w["notification"]).read_at is not None or pytest.fail("not marked read"),
            action="mark_read",
        ),
    ]


def inbound_email_cases():
    """Kept mail: assigned to a customer (logging it) or discarded by its owner or a manager; never added."""
    assigned = field_is("inbound", "status", InboundEmail.Status.ASSIGNED)
    return [
        Case(
            InboundEmail,
            "add",
            "add",
            lambda client, w, role: client.post(list_url(InboundEmail, "add"), {"subject": "Forged"}),
            NOBODY,
        ),
        Case(
            InboundEmail,
            "change",
            "assign",
            lambda client, w, role: client.post(url(w["inbound"], "change"), {"customer": w["a"].pk}),
            OWNER_OR_MANAGER,
            assigned,
        ),
        Case(InboundEmail, "delete", "delete", post_delete("inbound"), OWNER_OR_MANAGER, gone("inbound")),
        Case(
            InboundEmail,
            "changelist",
            "action-delete-selected",
            post_action(InboundEmail, "inbound", "delete_selected"),
            OWNER_OR_MANAGER,
            gone("inbound"),
            action="delete_selected",
        ),
        Case(InboundEmail, "history", "history", post_plain("inbound", "history"), NOBODY),
        Case(InboundEmail, "redirect", "redirect", post_redirect("inbound"), NOBODY),
    ]


def post_switch(client, w, role):
    """Upload a HubSpot contacts export, then confirm its preview."""
    switch = list_url(ColumnMapping, "switch")
    data = csv_bytes([["Email", "First Name", "Last Name"], ["switch@example.com", "Switch", "Person"]])
    preview = client.post(
        switch, {"step": "upload", "source": "hubspot", "files": [SimpleUploadedFile("contacts.csv", data)]}
    )
    if preview.status_code != 200 or preview.context.get("step") != "preview":
        return preview
    references = preview.context["references"]
    return client.post(
        switch,
        {
            "step": "confirm",
            "vendor": "hubspot",
            "reference": [reference for reference, _name in references],
            "name": [name for _reference, name in references],
        },
    )


def column_mapping_cases():
    """Saved column mappings are their user's own; the import screen writes for every writer, in their book."""
    rep_a = frozenset({"rep_a"})
    return [
        Case(ColumnMapping, "add", "add", lambda client, w, role: client.post(list_url(ColumnMapping, "add")), NOBODY),
        Case(ColumnMapping, "change", "change", post_plain("mapping", "change", {"kind": "deals"}), NOBODY),
        Case(ColumnMapping, "delete", "delete", post_delete("mapping"), rep_a, gone("mapping")),
        Case(
            ColumnMapping,
            "changelist",
            "action-delete-selected",
            post_action(ColumnMapping, "mapping", "delete_selected"),
            rep_a,
            gone("mapping"),
            action="delete_selected",
        ),
        Case(ColumnMapping, "history", "history", post_plain("mapping", "history"), NOBODY),
        Case(ColumnMapping, "redirect", "redirect", post_redirect("mapping"), NOBODY),
        Case(
            ColumnMapping,
            "switch",
            "import-from-hubspot",
            post_switch,
            ANY_WRITER,
            lambda w, role: (
                Customer.objects.get(email="switch@example.com").owner.username == role
                or pytest.fail("not in the importer's book")
            ),
        ),
    ]


def custom_field_cases():
    """Custom field definitions: managers only; a value on a record is a change of that record."""
    return [
        Case(
            CustomField,
            "add",
            "add",
            post_add(
                CustomField, lambda w: {"model": "customers", "key": "tier", "label": "Tier", "field_type": "text"}
            ),
            MANAGER,
        ),
        Case(
            CustomField,
            "change",
            "change",
            post_change("custom_field", lambda w: {"label": "Area"}),
            MANAGER,
            field_is("custom_field", "label", "Area"),
        ),
        Case(CustomField, "delete", "delete", post_delete("custom_field"), MANAGER, gone("custom_field")),
        Case(
            CustomField,
            "changelist",
            "action-delete-selected",
            post_action(CustomField, "custom_field", "delete_selected"),
            MANAGER,
            gone("custom_field"),
            action="delete_selected",
        ),
        Case(CustomField, "history", "history", post_plain("custom_field", "history"), NOBODY),
        Case(CustomField, "redirect", "redirect", post_redirect("custom_field"), NOBODY),
        Case(
            Customer,
            "change",
            "change-a-custom-field",
            post_change("a", lambda w: {"cf_region": "North"}),
            OWNER_OR_MANAGER,
            lambda w, role: stored(w["a"]).custom_fields == {"region": "North"} or pytest.fail("not stored"),
        ),
    ]


def tag_cases():
    """Tags: managers write them (the Tag admin); tagging a record in bulk is changing it (its own rules)."""
    cases = [
        Case(
            Tag,
            "add",
            "add",
            post_add(Tag, lambda w: {"name": "Added", "colour": "#123456"}),
            MANAGER,
            holds(lambda w: Tag.objects.filter(name="Added", colour="#123456").exists()),
        ),
        Case(
            Tag,
            "change",
            "change",
            post_change("tag", lambda w: {"name": "Changed"}),
            MANAGER,
            field_is("tag", "name", "Changed"),
        ),
        Case(Tag, "delete", "delete", post_delete("tag"), MANAGER, gone("tag")),
        Case(
            Tag,
            "changelist",
            "action-delete-selected",
            post_action(Tag, "tag", "delete_selected"),
            MANAGER,
            gone("tag"),
            action="delete_selected",
        ),
        Case(Tag, "simple_history", "revert", post_revert("tag"), MANAGER, field_is("tag", "name", "Old tag")),
        Case(Tag, "history", "history", post_plain("tag", "history"), NOBODY),
        Case(Tag, "redirect", "redirect", post_redirect("tag"), NOBODY),
    ]

    for model, key in ((Customer, "a"), (Company, "ca"), (Opportunity, "oa")):
        cases += [
            Case(
                model,
                "changelist",
                "action-add-tag",
                post_action(model, key, "add_tag", lambda w: {"confirm": "yes", "tag": w["tag"].pk}),
                OWNER_OR_MANAGER,
                field_is(key, "tags", ["VIP"]),
                action="add_tag",
            ),
            Case(
                model,
                "changelist",
                "action-remove-tag",
                post_action(model, key, "remove_tag", lambda w: {"confirm": "yes", "tag": w["tag"].pk}),
                OWNER_OR_MANAGER,
                field_is(key, "tags", []),
                action="remove_tag",
                before=lambda w, key=key: tag_service.add_tag([stored(w[key])], w["tag"]),
            ),
        ]
    return cases


def changeset_cases():
    """Changesets: nobody adds, edits or deletes one; their maker (or a manager) undoes one."""
    return [
        Case(
            Changeset,
            "undo",
            "undo",
            post_plain("changeset", "undo"),
            OWNER_OR_MANAGER,
            field_is("changeset", "status", "undone"),
        ),
        Case(
            Changeset,
            "undo",
            "undo-skipping-conflicts",
            post_plain("changeset", "undo", {"skip_conflicts": "yes"}),
            OWNER_OR_MANAGER,
            field_is("changeset", "status", "undone"),
        ),
        Case(Changeset, "add", "add", lambda client, w, role: client.post(list_url(Changeset, "add"), {}), NOBODY),
        Case(Changeset, "change", "change", post_plain("changeset", "change", {"label": "x"}), NOBODY),
        Case(Changeset, "delete", "delete", post_delete("changeset"), NOBODY),
        Case(Changeset, "history", "history", post_plain("changeset", "history"), NOBODY),
        Case(Changeset, "redirect", "redirect", post_redirect("changeset"), NOBODY),
        Case(
            Changeset,
            "changelist",
            "changelist",
            lambda client, w, role: client.post(list_url(Changeset), {"action": "delete_selected", "index": "0"}),
            NOBODY,
        ),
    ]


def duplicate_cases():
    """The review queue: the CRM finds the pairs; "not a duplicate" is for a writer who sees both records."""
    not_duplicate = field_is("pair", "status", DuplicateCandidate.Status.NOT_DUPLICATE)
    return [
        Case(
            DuplicateCandidate,
            "add",
            "add",
            lambda client, w, role: client.post(list_url(DuplicateCandidate, "add"), {"kind": "customer"}),
            NOBODY,
        ),
        Case(DuplicateCandidate, "change", "change", post_plain("pair", "change", {"status": "merged"}), NOBODY),
        Case(DuplicateCandidate, "delete", "delete", post_delete("pair"), NOBODY),
        Case(DuplicateCandidate, "history", "history", post_plain("pair", "history"), NOBODY),
        Case(DuplicateCandidate, "redirect", "redirect", post_redirect("pair"), NOBODY),
        Case(
            DuplicateCandidate,
            "not_duplicate",
            "not-duplicate",
            post_plain("pair", "not_duplicate"),
            OWNER_OR_MANAGER,
            not_duplicate,
        ),
        Case(
            DuplicateCandidate,
            "changelist",
            "action-not-duplicate",
            post_action(DuplicateCandidate, "pair", "mark_not_duplicate"),
            OWNER_OR_MANAGER,
            not_duplicate,
            action="mark_not_duplicate",
        ),
    ]


CASES = (
    changeset_cases()
    + crm_cases()
    + duplicate_cases()
    + auth_cases()
    + webhook_cases()
    + notification_cases()
    + inbound_email_cases()
    + custom_field_cases()
    + tag_cases()
    + column_mapping_cases()
)


@pytest.mark.parametrize("role", ROLES)
@pytest.mark.parametrize("case", CASES, ids=[case.id for case in CASES])
def test_matrix(world, role, case):
    world["rep_b_user"] = world["users"]["rep_b"]
    if case.before:
        case.before(world)
    before = snapshot()

    response = case.run(login(world["users"][role]), world, role)

    assert response.status_code < 500
    after = snapshot()
    if role in case.writers:
        assert after != before, f"{role} could not {case.label} ({response.status_code})"
        if case.check:
            case.check(world, role)
    else:
        changed = [label for label in after if after[label] != before[label]]
        assert not changed, f"{role} changed the database with {case.label} ({response.status_code}): {changed}"


# The admin site's own views, outside any model admin: none writes a record. A new one must be added here,
# and to the matrix if it writes.
SITE_VIEWS = {
    "index": "the dashboard: reads",
    "login": "signs in",
    "logout": "signs out",
    "password_change": "the user's own password",
    "password_change_done": "a page",
    "autocomplete": "reads, scoped (tests/core/admin/test_access.py)",
    "jsi18n": "translations for scripts",
    "view_on_site": "a redirect",
    "app_list": "reads",
    None: "the catch-all: a 404 or a redirect to the login",
}


def test_the_admin_site_has_no_other_view_that_could_write():
    names = {pattern.name for pattern in admin.site.get_urls() if isinstance(pattern, URLPattern)}
    assert names == set(SITE_VIEWS)


def _request_as(user):
    request = RequestFactory().get("/admin/")
    request.user = user
    return request


def test_every_admin_post_endpoint_and_action_is_in_the_matrix(world):
    root = _request_as(world["root"])
    covered = {(case.model, case.view) for case in CASES}
    covered_actions = {(case.model, case.action) for case in CASES if case.action}
    for model, model_admin in admin.site._registry.items():
        prefix = f"{model._meta.app_label}_{model._meta.model_name}_"
        views = {"redirect" if p.name is None else p.name.removeprefix(prefix) for p in model_admin.get_urls()}
        assert {(model, view) for view in views} <= covered, f"{model.__name__}: {views}"
        actions = set(model_admin.get_actions(root))
        assert {(model, action) for action in actions} <= covered_actions, f"{model.__name__}: {actions}"
        if model_admin.list_editable:
            assert any(case.model is model and case.label == "list-edit" for case in CASES), model.__name__
