"""Every API endpoint x every role: who may do what, and that no rep reaches another rep's book.

Rep A owns customer ``a`` (with an interaction and an opportunity); rep B owns
``b``. Paths name rep A's records, so the table says what each role gets when
it reaches for them: rep B must get a 404 (never a 403, which would confirm the
id exists), read-only users read but never write, users without a role get 403,
anonymous requests 401.
"""

from decimal import Decimal

import pytest
from django.contrib.auth.models import Group
from django.utils import timezone
from knox.models import get_token_model
from rest_framework.test import APIClient

from companies.models import Company
from core.changesets import Changeset, recording
from core.history import batched_delete_history
from core.models import CustomField, Event, Tag
from customers.models import Customer
from duplicates.models import DuplicateCandidate, Kind
from interactions.models import Interaction
from notifications.services import notify
from opportunities.models import Opportunity
from tests.factories import (
    CompanyFactory,
    CustomerFactory,
    InteractionFactory,
    OpportunityFactory,
    TaskFactory,
    UserFactory,
    fresh,
)
from webhooks.models import Endpoint

pytestmark = pytest.mark.django_db

ROLES = ["rep_a", "rep_b", "manager", "read_only", "anonymous", "no_role"]
GROUPS = {"rep_a": "Sales rep", "rep_b": "Sales rep", "manager": "Sales manager", "read_only": "Read-only"}


@pytest.fixture(scope="module")
def built_world(module_data):
    return module_data(build_world)


@pytest.fixture
def world(built_world):
    return fresh(built_world)


def build_world():
    users = {}
    for role in ("rep_a", "rep_b", "manager", "read_only", "no_role"):
        users[role] = UserFactory(username=role)
        if role in GROUPS:
            users[role].groups.add(Group.objects.get(name=GROUPS[role]))
    # Rep A's company, rep B's, and a manager's company that rep A's customer works for.
    ca = CompanyFactory(name="Alpha Co", owner=users["rep_a"])
    cb = CompanyFactory(name="Bravo Co", owner=users["rep_b"])
    cs = CompanyFactory(name="Shared Co", owner=users["manager"])
    a = CustomerFactory(name="Alpha", owner=users["rep_a"], company=cs)
    b = CustomerFactory(name="Bravo", owner=users["rep_b"])
    records = {
        "ca": ca,
        "cb": cb,
        "cs": cs,
        "a": a,
        "b": b,
        "ia": InteractionFactory(customer=a),
        "ib": InteractionFactory(customer=b),
        "oa": OpportunityFactory(customer=a, value=Decimal("700"), stage=Opportunity.Stage.PROPOSAL),
        "ob": OpportunityFactory(customer=b, value=Decimal("9000"), stage=Opportunity.Stage.PROPOSAL),
        "wh": Endpoint.objects.create(url="https://hooks.example.com/crm", is_active=False),
        "cf": CustomField.objects.create(model="customers", key="region", label="Region"),
        "tg": Tag.objects.create(name="VIP"),
        # Rep A's own notification: nobody else sees it, managers included.
        "na": notify(users["rep_a"], "test", "For rep A")[0],
        "users": users,
    }
    # Rep A's open and done tasks on their customer, and a task on rep B's customer assigned to rep A.
    records["ta"] = TaskFactory(customer=a, opportunity=records["oa"], assignee=users["rep_a"])
    records["td"] = TaskFactory(customer=a, assignee=users["rep_a"], done_at=timezone.now())
    records["tx"] = TaskFactory(customer=b, assignee=users["rep_a"])
    # Rep A's changesets: one that changed their customer, one that created a customer.
    with recording("action", user=users["rep_a"]) as changed:
        a.phone = "555"
        a.save()
    with recording("import", user=users["rep_a"]) as created:
        imported = CustomerFactory(name="Imported", owner=users["rep_a"])
    # Deleted since (the world keeps its two customers): a manager's undo skips it as a conflict.
    with batched_delete_history():
        imported.delete()
    records["cha"], records["chc"] = changed, created
    # A possible duplicate of two companies rep A sees (their own, and their customer's).
    records["dp"] = DuplicateCandidate.objects.create(
        kind=Kind.COMPANY, a_id=min(ca.pk, cs.pk), b_id=max(ca.pk, cs.pk), score=0.9, reasons=["similar_name"]
    )
    return records


def client_for(world, role):
    client = APIClient()
    if role != "anonymous":
        _, token = get_token_model().objects.create(world["users"][role])
        client.credentials(HTTP_AUTHORIZATION=f"Bearer {token}")
    return client


def payload(world, body):
    """``body`` with each "@name" (at any depth: batch items) replaced by the id of that record of the world."""
    if isinstance(body, dict):
        return {key: payload(world, value) for key, value in body.items()}
    if isinstance(body, list):
        return [payload(world, value) for value in body]
    return world[body[1:]].pk if isinstance(body, str) and body.startswith("@") else body


# (method, path template, body, expected status for rep_a, rep_b, manager, read_only, anonymous, no_role)
MATRIX = [
    ("get", "/api/customers", None, (200, 200, 200, 200, 401, 403)),
    ("get", "/api/customers/{a}", None, (200, 404, 200, 200, 401, 403)),
    ("post", "/api/customers", {"name": "New"}, (201, 201, 201, 403, 401, 403)),
    ("put", "/api/customers/{a}", {"phone": "1"}, (200, 404, 200, 403, 401, 403)),
    ("patch", "/api/customers/{a}", {"phone": "1"}, (200, 404, 200, 403, 401, 403)),
    ("delete", "/api/customers/{a}", None, (403, 403, 200, 403, 401, 403)),
    ("get", "/api/customers/export", None, (200, 200, 200, 200, 401, 403)),
    ("get", "/api/customers/{a}/history", None, (200, 404, 200, 200, 401, 403)),
    ("get", "/api/customers/{a}/timeline", None, (200, 404, 200, 200, 401, 403)),
    ("post", "/api/customers/{a}/reassign", {"owner_id": "@b_owner"}, (403, 403, 200, 403, 401, 403)),
    (
        "post",
        "/api/customers/reassign",
        {"from_owner_id": "@a_owner", "to_owner_id": "@b_owner"},
        (403, 403, 200, 403, 401, 403),
    ),
    # A batch answers 207 when an item fails: rep B's items on rep A's records are 404s, a
    # rep's deletes of customers 403s (docs/roles.md); read-only users may not send one.
    ("post", "/api/customers/batch", {"create": [{"name": "New"}]}, (200, 200, 200, 403, 401, 403)),
    ("post", "/api/customers/batch", {"update": [{"id": "@a", "phone": "1"}]}, (200, 207, 200, 403, 401, 403)),
    ("post", "/api/customers/batch", {"upsert": [{"external_id": "x", "name": "X"}]}, (200, 200, 200, 403, 401, 403)),
    ("post", "/api/customers/batch", {"delete": ["@a"]}, (207, 207, 200, 403, 401, 403)),
    # A merge names records of two books: each rep is refused (a 400, naming the ids it cannot use).
    ("post", "/api/customers/merge", {"survivor_id": "@a", "merged_ids": ["@b"]}, (400, 400, 200, 403, 401, 403)),
    (
        "post",
        "/api/customers/merge?dry_run=true",
        {"survivor_id": "@a", "merged_ids": ["@b"]},
        (400, 400, 200, 403, 401, 403),
    ),
    # A rep sees the companies they own and those of the customers they own (``cs``, through ``a``).
    ("get", "/api/companies", None, (200, 200, 200, 200, 401, 403)),
    ("get", "/api/companies/{ca}", None, (200, 404, 200, 200, 401, 403)),
    ("get", "/api/companies/{cs}", None, (200, 404, 200, 200, 401, 403)),
    ("get", "/api/companies/{cb}", None, (404, 200, 200, 200, 401, 403)),
    ("post", "/api/companies", {"name": "New"}, (201, 201, 201, 403, 401, 403)),
    ("put", "/api/companies/{ca}", {"industry": "x"}, (200, 404, 200, 403, 401, 403)),
    ("patch", "/api/companies/{cs}", {"industry": "x"}, (200, 404, 200, 403, 401, 403)),
    ("delete", "/api/companies/{ca}", None, (403, 403, 200, 403, 401, 403)),
    ("delete", "/api/companies/{cs}", None, (403, 403, 200, 403, 401, 403)),
    ("get", "/api/companies/export", None, (200, 200, 200, 200, 401, 403)),
    ("get", "/api/companies/{ca}/history", None, (200, 404, 200, 200, 401, 403)),
    ("get", "/api/companies/{cs}/timeline", None, (200, 404, 200, 200, 401, 403)),
    ("post", "/api/companies/batch", {"create": [{"name": "New"}]}, (200, 200, 200, 403, 401, 403)),
    ("post", "/api/companies/batch", {"update": [{"id": "@ca", "industry": "x"}]}, (200, 207, 200, 403, 401, 403)),
    ("post", "/api/companies/batch", {"delete": ["@ca"]}, (207, 207, 200, 403, 401, 403)),
    ("post", "/api/companies/merge", {"survivor_id": "@ca", "merged_ids": ["@cb"]}, (400, 400, 200, 403, 401, 403)),
    ("get", "/api/customers?company_id={cs}", None, (200, 200, 200, 200, 401, 403)),
    # Linking to a company the user does not see is refused like an unknown id.
    ("post", "/api/customers", {"name": "New", "company_id": "@cb"}, (400, 201, 201, 403, 401, 403)),
    ("put", "/api/customers/{a}", {"company_id": "@ca"}, (200, 404, 200, 403, 401, 403)),
    (
        "post",
        "/api/opportunities",
        {"customer_id": "@a", "title": "T", "company_id": "@cb"},
        (400, 400, 201, 403, 401, 403),
    ),
    ("get", "/api/interactions", None, (200, 200, 200, 200, 401, 403)),
    ("get", "/api/interactions/{ia}", None, (200, 404, 200, 200, 401, 403)),
    ("post", "/api/interactions", {"customer_id": "@a", "interaction_type": "call"}, (201, 400, 201, 403, 401, 403)),
    ("put", "/api/interactions/{ia}", {"notes": "x"}, (200, 404, 200, 403, 401, 403)),
    ("delete", "/api/interactions/{ia}", None, (200, 404, 200, 403, 401, 403)),
    ("get", "/api/interactions/export", None, (200, 200, 200, 200, 401, 403)),
    ("get", "/api/interactions/{ia}/history", None, (200, 404, 200, 200, 401, 403)),
    (
        "post",
        "/api/interactions/batch",
        {"create": [{"customer_id": "@a", "interaction_type": "call"}], "update": [{"id": "@ia", "notes": "x"}]},
        (200, 207, 200, 403, 401, 403),
    ),
    ("post", "/api/interactions/batch", {"delete": ["@ia"]}, (200, 207, 200, 403, 401, 403)),
    ("get", "/api/opportunities", None, (200, 200, 200, 200, 401, 403)),
    ("get", "/api/opportunities/{oa}", None, (200, 404, 200, 200, 401, 403)),
    ("post", "/api/opportunities", {"customer_id": "@a", "title": "T"}, (201, 400, 201, 403, 401, 403)),
    ("put", "/api/opportunities/{oa}", {"value": 5}, (200, 404, 200, 403, 401, 403)),
    ("delete", "/api/opportunities/{oa}", None, (200, 404, 200, 403, 401, 403)),
    ("get", "/api/opportunities/export", None, (200, 200, 200, 200, 401, 403)),
    ("get", "/api/opportunities/{oa}/history", None, (200, 404, 200, 200, 401, 403)),
    (
        "post",
        "/api/opportunities/batch",
        {"create": [{"customer_id": "@a", "title": "T"}], "update": [{"id": "@oa", "value": 5}]},
        (200, 207, 200, 403, 401, 403),
    ),
    ("post", "/api/opportunities/batch", {"delete": ["@oa"]}, (200, 207, 200, 403, 401, 403)),
    ("get", "/api/reports/pipeline", None, (200, 200, 200, 200, 401, 403)),
    ("get", "/api/reports/pipeline?customer_id={a}", None, (200, 400, 200, 200, 401, 403)),
    ("get", "/api/reports/pipeline?group_by=company", None, (200, 200, 200, 200, 401, 403)),
    ("get", "/api/reports/pipeline?group_by=owner", None, (200, 200, 200, 200, 401, 403)),
    ("get", "/api/reports/forecast", None, (200, 200, 200, 200, 401, 403)),
    ("get", "/api/reports/activity", None, (200, 200, 200, 200, 401, 403)),
    ("get", "/api/auth/me", None, (200, 200, 200, 200, 401, 200)),
    ("post", "/api/auth/calendar-feed", None, (200, 200, 200, 200, 401, 403)),
    ("delete", "/api/auth/calendar-feed", None, (200, 200, 200, 200, 401, 403)),
    # Everyone signed in sets their own preferences.
    ("patch", "/api/auth/me", {"time_zone": "Asia/Shanghai"}, (200, 200, 200, 200, 401, 200)),
    ("get", "/api/tasks", None, (200, 200, 200, 200, 401, 403)),
    ("get", "/api/tasks/{ta}", None, (200, 404, 200, 200, 401, 403)),
    # Assigned to rep A, on rep B's customer: both reps see it.
    ("get", "/api/tasks/{tx}", None, (200, 200, 200, 200, 401, 403)),
    ("post", "/api/tasks", {"customer_id": "@a", "title": "Call back"}, (201, 400, 201, 403, 401, 403)),
    ("patch", "/api/tasks/{ta}", {"title": "Call again"}, (200, 404, 200, 403, 401, 403)),
    ("put", "/api/tasks/{ta}", {"priority": "high"}, (200, 404, 200, 403, 401, 403)),
    ("patch", "/api/tasks/{tx}", {"priority": "high"}, (200, 200, 200, 403, 401, 403)),
    ("delete", "/api/tasks/{ta}", None, (200, 404, 200, 403, 401, 403)),
    ("post", "/api/tasks/{ta}/complete", {}, (200, 404, 200, 403, 401, 403)),
    ("post", "/api/tasks/{ta}/complete", {"log_interaction": True}, (200, 404, 200, 403, 401, 403)),
    # Rep A may complete a task on rep B's customer, but not log an interaction with a customer not theirs.
    ("post", "/api/tasks/{tx}/complete", {"log_interaction": True}, (400, 200, 200, 403, 401, 403)),
    ("post", "/api/tasks/{td}/reopen", None, (200, 404, 200, 403, 401, 403)),
    ("post", "/api/tasks/{ta}/reopen", None, (409, 404, 409, 403, 401, 403)),
    ("get", "/api/tasks/export", None, (200, 200, 200, 200, 401, 403)),
    ("get", "/api/tasks/{ta}/history", None, (200, 404, 200, 200, 401, 403)),
    (
        "post",
        "/api/tasks/batch",
        {"create": [{"customer_id": "@a", "title": "T"}], "update": [{"id": "@ta", "notes": "x"}]},
        (200, 207, 200, 403, 401, 403),
    ),
    ("post", "/api/tasks/batch", {"delete": ["@ta"]}, (200, 207, 200, 403, 401, 403)),
    ("get", "/api/reports/follow-ups", None, (200, 200, 200, 200, 401, 403)),
    ("get", "/api/events", None, (200, 200, 200, 200, 401, 403)),
    ("get", "/api/events?type=customer.created", None, (200, 200, 200, 200, 401, 403)),
    ("post", "/api/events", {}, (405, 405, 405, 403, 401, 403)),
    ("get", "/api/webhooks", None, (403, 403, 200, 403, 401, 403)),
    ("post", "/api/webhooks", {}, (403, 403, 400, 403, 401, 403)),
    ("get", "/api/webhooks/{wh}", None, (403, 403, 200, 403, 401, 403)),
    ("patch", "/api/webhooks/{wh}", {"description": "x"}, (403, 403, 200, 403, 401, 403)),
    ("get", "/api/webhooks/{wh}/deliveries", None, (403, 403, 200, 403, 401, 403)),
    ("post", "/api/webhooks/{wh}/rotate-secret", None, (403, 403, 200, 403, 401, 403)),
    ("post", "/api/webhooks/{wh}/replay", {}, (403, 403, 400, 403, 401, 403)),
    ("delete", "/api/webhooks/{wh}", None, (403, 403, 200, 403, 401, 403)),
    # Custom field definitions: every role reads them, only managers define them.
    ("get", "/api/custom-fields", None, (200, 200, 200, 200, 401, 403)),
    ("get", "/api/custom-fields/{cf}", None, (200, 200, 200, 200, 401, 403)),
    ("post", "/api/custom-fields", {"model": "customers", "key": "tier", "label": "T"}, (403, 403, 201, 403, 401, 403)),
    ("patch", "/api/custom-fields/{cf}", {"label": "Area"}, (403, 403, 200, 403, 401, 403)),
    ("delete", "/api/custom-fields/{cf}", None, (403, 403, 200, 403, 401, 403)),
    # A value of a custom field, on a record of the rep's book.
    ("patch", "/api/customers/{a}", {"custom_fields": {"region": "north"}}, (200, 404, 200, 403, 401, 403)),
    # Tags: every role reads them (with counts of its own records); managers write them.
    ("get", "/api/tags", None, (200, 200, 200, 200, 401, 403)),
    ("get", "/api/tags?search=vi", None, (200, 200, 200, 200, 401, 403)),
    ("get", "/api/tags/{tg}", None, (200, 200, 200, 200, 401, 403)),
    ("post", "/api/tags", {"name": "New"}, (403, 403, 201, 403, 401, 403)),
    ("put", "/api/tags/{tg}", {"colour": "#FF0000"}, (403, 403, 200, 403, 401, 403)),
    ("patch", "/api/tags/{tg}", {"name": "Key account"}, (403, 403, 200, 403, 401, 403)),
    ("delete", "/api/tags/{tg}", None, (403, 403, 200, 403, 401, 403)),
    # Tagging a record is changing it: the record's own rules.
    ("patch", "/api/customers/{a}", {"tags": ["vip", "new"]}, (200, 404, 200, 403, 401, 403)),
    ("patch", "/api/companies/{ca}", {"tags": ["vip"]}, (200, 404, 200, 403, 401, 403)),
    ("patch", "/api/opportunities/{oa}", {"tags": ["vip"]}, (200, 404, 200, 403, 401, 403)),
    ("get", "/api/customers?tag=vip&tag_any=a,b", None, (200, 200, 200, 200, 401, 403)),
    ("get", "/api/companies?tag=vip", None, (200, 200, 200, 200, 401, 403)),
    ("get", "/api/opportunities?tag_any=vip", None, (200, 200, 200, 200, 401, 403)),
    ("get", "/api/notifications", None, (200, 200, 200, 200, 401, 403)),
    ("get", "/api/notifications?unread=true", None, (200, 200, 200, 200, 401, 403)),
    ("get", "/api/notifications/{na}", None, (200, 404, 404, 404, 401, 403)),
    ("post", "/api/notifications/{na}/read", None, (200, 404, 404, 404, 401, 403)),
    ("post", "/api/notifications/read-all", None, (200, 200, 200, 200, 401, 403)),
    ("post", "/api/notifications", {}, (405, 405, 405, 405, 401, 403)),
    # Changesets: a rep sees their own; undoing is writing, and undoing a creation is deleting.
    ("get", "/api/changesets", None, (200, 200, 200, 200, 401, 403)),
    ("get", "/api/changesets/{cha}", None, (200, 404, 200, 200, 401, 403)),
    ("get", "/api/changesets/{cha}/rows", None, (200, 404, 200, 200, 401, 403)),
    ("post", "/api/changesets/{cha}/undo", {}, (200, 404, 200, 403, 401, 403)),
    ("post", "/api/changesets/{chc}/undo", {"skip_conflicts": True}, (403, 404, 200, 403, 401, 403)),
    # Nobody deletes a changeset (no role has the permission): the record of a change stays.
    ("delete", "/api/changesets/{cha}", None, (403, 403, 403, 403, 401, 403)),
    ("delete", "/api/notifications/{na}", None, (405, 405, 405, 405, 401, 403)),
    # Possible duplicates: a rep sees the pairs whose two records they see.
    ("get", "/api/duplicates", None, (200, 200, 200, 200, 401, 403)),
    ("get", "/api/duplicates?kind=company&status=open", None, (200, 200, 200, 200, 401, 403)),
    ("get", "/api/duplicates/{dp}", None, (200, 404, 200, 200, 401, 403)),
    ("post", "/api/duplicates/{dp}/dismiss", None, (200, 404, 200, 403, 401, 403)),
    ("post", "/api/duplicates", {}, (405, 405, 405, 403, 401, 403)),
    ("delete", "/api/duplicates/{dp}", None, (403, 403, 403, 403, 401, 403)),
]


def _case_id(row):
    return f"{row[0].upper()} {row[1]}"


@pytest.mark.parametrize("role", ROLES)
@pytest.mark.parametrize(("method", "template", "body", "expected"), MATRIX, ids=[_case_id(row) for row in MATRIX])
def test_matrix(world, role, method, template, body, expected):
    world["a_owner"], world["b_owner"] = world["users"]["rep_a"], world["users"]["rep_b"]
    path = template.format(**{key: value.pk for key, value in world.items() if key != "users"})
    data = payload(world, body) if body is not None else None
    response = getattr(client_for(world, role), method)(path, data, format="json")
    assert response.status_code == expected[ROLES.index(role)], (response.status_code, response.content[:300])
    if response.status_code >= 400 and not response.get("Content-Type", "").startswith("text/csv"):
        assert response.json()["success"] is False


def _text(response):
    if response.streaming:
        return b"".join(response.streaming_content).decode("utf-8-sig")
    return response.content.decode()


@pytest.mark.parametrize("resource", ["companies", "customers", "interactions", "opportunities", "tasks"])
def test_rep_b_never_sees_rep_a_records_in_lists_and_exports(world, resource):
    keys = {
        "companies": ("ca", "cb"),
        "customers": ("a", "b"),
        "interactions": ("ia", "ib"),
        "opportunities": ("oa", "ob"),
        "tasks": ("ta", "tx"),
    }[resource]
    mine, theirs = (world[key].pk for key in keys)
    client = client_for(world, "rep_b")
    ids = [row["id"] for row in client.get(f"/api/{resource}", {"page_size": 500}).json()["data"]]
    assert ids == [theirs]
    assert mine not in ids
    export = _text(client.get(f"/api/{resource}/export")).splitlines()
    assert [line.split(",")[0] for line in export[1:]] == [str(theirs)]
    # Filtering by rep A's customer finds nothing rather than an error that confirms it exists.
    if resource in ("interactions", "opportunities"):
        assert client.get(f"/api/{resource}", {"customer_id": world["a"].pk}).json()["data"] == []
    manager_ids = {row["id"] for row in client_for(world, "manager").get(f"/api/{resource}").json()["data"]}
    assert {mine, theirs} <= manager_ids


def test_rep_b_sees_only_the_events_of_their_book(world):
    rep_b = client_for(world, "rep_b")
    feed = rep_b.get("/api/events", {"page_size": 500}).json()["data"]
    assert {(event["model"], event["object_id"]) for event in feed} == {
        ("companies.company", world["cb"].pk),
        ("customers.customer", world["b"].pk),
        ("interactions.interaction", world["ib"].pk),
        ("opportunities.opportunity", world["ob"].pk),
        # A task's events are filed under its customer's owner.
        ("tasks.task", world["tx"].pk),
    }
    manager = client_for(world, "manager").get("/api/events", {"page_size": 500}).json()["data"]
    assert len(manager) == Event.objects.count() > len(feed)


def test_search_is_scoped(world):
    client = client_for(world, "rep_b")
    assert client.get("/api/customers", {"search": "Alpha"}).json()["data"] == []
    assert [
        c["name"] for c in client_for(world, "rep_a").get("/api/customers", {"search": "Alpha"}).json()["data"]
    ] == ["Alpha"]


def test_reports_count_only_the_reps_book(world):
    rep_b = client_for(world, "rep_b")
    pipeline = rep_b.get("/api/reports/pipeline").json()["data"]
    assert pipeline["open"] == {"count": 1, "total_value": 9000.0, "weighted_value": 3600.0}
    forecast = rep_b.get("/api/reports/forecast").json()["data"]
    assert forecast["total"]["count"] == 1 and forecast["total"]["total_value"] == 9000.0
    activity = rep_b.get("/api/reports/activity").json()["data"]
    assert activity["totals"]["total"] == 1
    assert [c["id"] for c in activity["going_cold"]["customers"]] == [] or all(
        c["id"] == world["b"].pk for c in activity["going_cold"]["customers"]
    )
    manager = client_for(world, "manager").get("/api/reports/pipeline").json()["data"]
    assert manager["open"]["count"] == 2 and manager["open"]["total_value"] == 9700.0


def test_records_without_owner_are_visible_to_managers_only(world):
    orphan = CustomerFactory(name="Orphan", owner=None)
    assert client_for(world, "rep_a").get(f"/api/customers/{orphan.pk}").status_code == 404
    assert client_for(world, "manager").get(f"/api/customers/{orphan.pk}").status_code == 200


def test_a_rep_typing_another_reps_company_name_gets_a_company_of_their_own(world):
    rep_a = world["users"]["rep_a"]
    data = client_for(world, "rep_a").post("/api/customers", {"name": "N", "company": "bravo co"}, format="json")
    company_id = data.json()["data"]["company_id"]
    assert company_id != world["cb"].pk
    assert Company.objects.get(pk=company_id).owner == rep_a
    # A manager's text reaches the company that exists.
    data = client_for(world, "manager").post("/api/customers", {"name": "M", "company": "Bravo Co"}, format="json")
    assert data.json()["data"]["company_id"] == world["cb"].pk


def test_new_customer_belongs_to_its_creator(world):
    rep_a = world["users"]["rep_a"]
    data = client_for(world, "rep_a").post("/api/customers", {"name": "Mine"}, format="json").json()["data"]
    assert data["owner_id"] == rep_a.pk and data["created_by_id"] == rep_a.pk
    interaction = client_for(world, "rep_a").post(
        "/api/interactions", {"customer_id": data["id"], "interaction_type": "call"}, format="json"
    )
    assert interaction.json()["data"]["created_by_id"] == rep_a.pk


def test_rep_cannot_give_a_customer_away(world):
    rep_b = world["users"]["rep_b"]
    client = client_for(world, "rep_a")
    created = client.post("/api/customers", {"name": "Mine", "owner_id": rep_b.pk}, format="json")
    assert created.status_code == 400 and "owner_id" in created.json()["error"]["fields"]
    updated = client.put(f"/api/customers/{world['a'].pk}", {"owner_id": rep_b.pk}, format="json")
    assert updated.status_code == 400 and "owner_id" in updated.json()["error"]["fields"]
    assert Customer.objects.get(pk=world["a"].pk).owner == world["users"]["rep_a"]


def test_manager_names_the_owner(world):
    rep_b = world["users"]["rep_b"]
    data = client_for(world, "manager").post("/api/customers", {"name": "For B", "owner_id": rep_b.pk}, format="json")
    assert data.status_code == 201 and data.json()["data"]["owner_id"] == rep_b.pk


def test_child_for_another_reps_customer_is_refused_like_an_unknown_id(world):
    client = client_for(world, "rep_b")
    other = client.post("/api/interactions", {"customer_id": world["a"].pk, "interaction_type": "call"}, format="json")
    missing = client.post("/api/interactions", {"customer_id": 999999, "interaction_type": "call"}, format="json")
    assert other.status_code == missing.status_code == 400
    assert other.json()["error"]["fields"]["customer_id"] == [
        message.replace("999999", str(world["a"].pk)) for message in missing.json()["error"]["fields"]["customer_id"]
    ]
    moved = client.put(f"/api/opportunities/{world['ob'].pk}", {"customer_id": world["a"].pk}, format="json")
    assert moved.status_code == 400
    assert Interaction.objects.filter(customer=world["a"]).count() == 1


@pytest.mark.parametrize(("value", "names"), [("me", ["Bravo"]), ("rep_a_id", []), ("garbage", None), ("-1", None)])
def test_owner_filter(world, value, names):
    if value == "rep_a_id":
        value = str(world["users"]["rep_a"].pk)
    response = client_for(world, "rep_b").get("/api/customers", {"owner": value})
    if names is None:
        assert response.status_code == 400 and "owner" in response.json()["error"]["fields"]
        return
    assert [c["name"] for c in response.json()["data"]] == names


def test_manager_owner_filter_on_opportunities(world):
    manager = client_for(world, "manager")
    rows = manager.get("/api/opportunities", {"owner": world["users"]["rep_a"].pk}).json()["data"]
    assert [row["id"] for row in rows] == [world["oa"].pk]
    assert manager.get("/api/opportunities", {"owner": "me"}).json()["data"] == []


def test_reassign_one_and_all(world):
    manager = client_for(world, "manager")
    rep_a, rep_b = world["users"]["rep_a"], world["users"]["rep_b"]
    one = manager.post(f"/api/customers/{world['a'].pk}/reassign", {"owner_id": rep_b.pk}, format="json")
    one = one.json()["data"]
    assert one.pop("changeset")["kind"] == "reassign"
    assert one == {"id": world["a"].pk, "owner_id": rep_b.pk, "customers": 1, "open_opportunities": 1, "dry_run": False}
    # The opportunity followed its customer into rep B's book.
    assert client_for(world, "rep_b").get(f"/api/opportunities/{world['oa'].pk}").status_code == 200
    assert client_for(world, "rep_a").get(f"/api/opportunities/{world['oa'].pk}").status_code == 404
    every = manager.post(
        "/api/customers/reassign", {"from_owner_id": rep_b.pk, "to_owner_id": rep_a.pk}, format="json"
    ).json()["data"]
    assert every.pop("changeset")["counts"] == {"customers.customer": {"created": 0, "updated": 2, "deleted": 0}}
    assert every == {
        "from_owner_id": rep_b.pk,
        "to_owner_id": rep_a.pk,
        "customers": 2,
        "open_opportunities": 2,
        "dry_run": False,
    }
    assert set(Customer.objects.filter(owner=rep_a).values_list("pk", flat=True)) == {world["a"].pk, world["b"].pk}
    history = manager.get(f"/api/customers/{world['b'].pk}/history").json()["data"][0]
    assert {"field": "owner_id", "old": rep_b.pk, "new": rep_a.pk} in history["changes"]


@pytest.mark.parametrize("body", [{}, {"owner_id": "x"}, {"owner_id": 999999}])
def test_reassign_rejects_bad_owner(world, body):
    response = client_for(world, "manager").post(f"/api/customers/{world['a'].pk}/reassign", body, format="json")
    assert response.status_code == 400 and "owner_id" in response.json()["error"]["fields"]


@pytest.mark.parametrize(
    ("path", "body", "field"),
    [
        ("/api/customers/{a}/reassign", {"owner_id": "rep_b"}, "owner_id"),
        ("/api/customers/reassign", {"from_owner_id": "rep_a", "to_owner_id": "rep_b"}, "from_owner_id"),
        ("/api/customers/reassign", {"from_owner_id": "rep_a", "to_owner_id": "rep_b"}, "to_owner_id"),
    ],
)
def test_reassign_refuses_an_owner_id_given_as_text_and_moves_nothing(world, path, body, field):
    body = {name: world["users"][user].pk for name, user in body.items()}
    body[field] = str(body[field])
    owners = dict(Customer.objects.values_list("pk", "owner_id"))
    entries, events, changesets = Customer.history.count(), Event.objects.count(), Changeset.objects.count()

    response = client_for(world, "manager").post(path.format(a=world["a"].pk), body, format="json")

    assert response.status_code == 400, response.content
    assert response.json()["error"]["fields"] == {field: ["Incorrect type. Expected pk value, received str."]}
    assert dict(Customer.objects.values_list("pk", "owner_id")) == owners
    assert (Customer.history.count(), Event.objects.count(), Changeset.objects.count()) == (
        entries,
        events,
        changesets,
    )


@pytest.mark.parametrize(
    ("role", "expected"), [("rep_a", "rep"), ("manager", "manager"), ("read_only", "read_only"), ("no_role", None)]
)
def test_me(world, role, expected):
    data = client_for(world, role).get("/api/auth/me").json()["data"]
    user = world["users"][role]
    assert data["id"] == user.pk and data["username"] == role and data["role"] == expected
    assert data["is_superuser"] is False
    assert ("customers.delete_customer" in data["permissions"]) is (role == "manager")


def test_superuser_is_a_manager(world):
    boss = UserFactory(username="boss", is_superuser=True, is_staff=True)
    client = APIClient()
    client.credentials(HTTP_AUTHORIZATION=f"Bearer {get_token_model().objects.create(boss)[1]}")
    assert client.get("/api/auth/me").json()["data"]["role"] == "manager"
    assert len(client.get("/api/customers").json()["data"]) == 2


def test_rep_detail_and_list_query_counts_stay_constant(world, django_assert_num_queries):
    client = client_for(world, "rep_a")
    for _ in range(5):
        CustomerFactory(owner=world["users"]["rep_a"])
        CustomerFactory(owner=world["users"]["rep_b"])
    # Token (with the role), page, count.
    with django_assert_num_queries(3):
        assert client.get("/api/customers", {"page_size": 2}).status_code == 200
    with django_assert_num_queries(2):
        assert client.get(f"/api/customers/{world['a'].pk}").status_code == 200
