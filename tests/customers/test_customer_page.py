"""The customer's admin page: the header, the compact lists, the timeline (the API's), the quick actions."""

import datetime
from decimal import Decimal

import pytest
from django.contrib.auth.models import Group
from django.db import connection
from django.test import Client
from django.test.utils import CaptureQueriesContext
from django.urls import reverse
from django.utils import timezone
from knox.models import get_token_model

from core.models import Event
from customers.models import Customer
from interactions.models import Interaction
from opportunities.models import Opportunity
from tasks.models import Task
from tests.factories import (
    CompanyFactory,
    CustomerFactory,
    InteractionFactory,
    OpportunityFactory,
    TaskFactory,
    UserFactory,
)

pytestmark = pytest.mark.django_db

GROUPS = {"rep": "Sales rep", "other_rep": "Sales rep", "manager": "Sales manager", "read_only": "Read-only"}


def staff(role):
    user = UserFactory(username=role, is_staff=True)
    user.groups.add(Group.objects.get(name=GROUPS[role]))
    return user


def login(user, **kwargs):
    client = Client(**kwargs)
    client.force_login(user)
    return client


def page_url(customer, **query):
    url = reverse("admin:customers_customer_change", args=[customer.pk])
    return url + ("?" + "&".join(f"{k}={v}" for k, v in query.items()) if query else "")


def quick_url(customer, name):
    return reverse("admin:customers_customer_quick_action", args=[customer.pk, name])


@pytest.fixture
def users():
    return {role: staff(role) for role in GROUPS}


@pytest.fixture
def customer(users):
    company = CompanyFactory(name="Acme Trading", owner=users["rep"])
    customer = CustomerFactory(name="Alice Buyer", company=company, owner=users["rep"], status=Customer.Status.PROSPECT)
    now = timezone.now()
    InteractionFactory(customer=customer, notes="Discussed the pricing", occurred_at=now - datetime.timedelta(days=2))
    InteractionFactory(customer=customer, notes="Sent the brochure", occurred_at=now - datetime.timedelta(days=1))
    OpportunityFactory(customer=customer, title="Fleet renewal", value=Decimal("12500"), stage=Opportunity.Stage.LEAD)
    TaskFactory(
        customer=customer, assignee=users["rep"], title="Send the quote", due_at=now + datetime.timedelta(days=3)
    )
    return customer


@pytest.mark.parametrize("role", ["rep", "manager"])
def test_the_page_tells_the_story(users, customer, role):
    response = login(users[role]).get(page_url(customer))
    assert response.status_code == 200
    html = response.content.decode()
    header = dict((str(label), value) for label, value in response.context["customer_header"])
    assert header["Owner"] == "rep"
    assert header["Status"] == "Prospect"
    assert header["Company"] == "Acme Trading"
    assert header["Open pipeline"] == "$12,500.00"  # CRM_CURRENCY: USD by default
    assert header["Last interaction"] == customer.interactions.order_by("-occurred_at").first().occurred_at
    assert header["Next task"].startswith("Send the quote (")
    assert 'id="customer-header"' in html
    # Interactions: a compact list, newest first, each linking to its own page; no textareas to edit them here.
    (interactions,) = response.context["customer_lists"]
    assert [row["cells"][2] for row in interactions["rows"]] == ["Sent the brochure", "Discussed the pricing"]
    first = customer.interactions.order_by("-occurred_at").first()
    assert reverse("admin:interactions_interaction_change", args=[first.pk]) in html
    assert "interactions-0-notes" not in html and "interactions-TOTAL_FORMS" not in html
    # The customer's own fields stay editable.
    assert 'name="name"' in html and 'name="email"' in html
    # Quick actions: three small forms posting to their own views.
    assert [quick["action"].name for quick in response.context["quick_actions"]] == [
        "interaction",
        "opportunity",
        "task",
    ]
    for name in ("interaction", "opportunity", "task"):
        assert f'action="{quick_url(customer, name)}"' in html
    kinds = [item["kind"] for item in response.context["timeline"]]
    assert set(kinds) == {"interaction", "opportunity_created", "task_created", "customer_created"}
    history = reverse("admin:customers_customer_history", args=[customer.pk])
    assert [item["url"] for item in response.context["timeline"] if item["kind"] == "customer_created"] == [history]
    assert "Fleet renewal" in html and "Send the quote" in html


def test_the_timeline_is_the_apis(users, customer):
    token = get_token_model().objects.create(users["rep"])[1]
    api = Client(HTTP_AUTHORIZATION=f"Bearer {token}")
    entries = api.get(f"/api/customers/{customer.pk}/timeline").json()["data"]
    shown = login(users["rep"]).get(page_url(customer)).context["timeline"]
    assert [item["kind"] for item in shown] == [entry["type"] for entry in entries]
    records = [entry for entry in entries if "history" not in entry]
    ids = [entry.get("interaction", entry.get("opportunity", entry.get("task")))["id"] for entry in records]
    assert [int(item["url"].rstrip("/").split("/")[-2]) for item in shown if item["kind"] != "customer_created"] == ids


def test_lists_and_timeline_are_paged(users, customer):
    start = timezone.now() - datetime.timedelta(days=30)
    for index in range(23):
        InteractionFactory(customer=customer, notes=f"n{index}", occurred_at=start + datetime.timedelta(hours=index))
    client = login(users["rep"])
    first = client.get(page_url(customer)).context
    assert len(first["timeline"]) == 20 and first["timeline_has_next"]
    (interactions,) = first["customer_lists"]
    assert len(interactions["rows"]) == 10 and interactions["has_next"]
    second = client.get(page_url(customer, timeline_page=2, interactions_page=3)).context
    # 25 interactions, the opportunity, the task and the customer's creation: 28 entries.
    assert len(second["timeline"]) == 8 and not second["timeline_has_next"]
    assert len(second["customer_lists"][0]["rows"]) == 5 and not second["customer_lists"][0]["has_next"]
    # A page number that is no number is the first page, not an error.
    assert client.get(page_url(customer, timeline_page="x", interactions_page="-1")).status_code == 200


def _queries(client, url):
    with CaptureQueriesContext(connection) as queries:
        assert client.get(url).status_code == 200
    return len(queries)


@pytest.mark.parametrize("role", ["rep", "manager"])
def test_the_page_costs_the_same_queries_with_5_or_50_interactions(users, role):
    counts = []
    for size in (5, 50):
        customer = CustomerFactory(owner=users["rep"])
        InteractionFactory.create_batch(size, customer=customer)
        OpportunityFactory.create_batch(2, customer=customer)
        TaskFactory(customer=customer, assignee=users["rep"], due_at=timezone.now())
        client = login(users[role])
        _queries(client, page_url(customer))  # warm: session, content types
        counts.append(_queries(client, page_url(customer)))
    assert counts[0] == counts[1], counts


# ---- Quick actions -------------------------------------------------------------------------------------

VALID = {
    "interaction": {"interaction-interaction_type": "call", "interaction-notes": "Called about the renewal"},
    "opportunity": {
        "opportunity-title": "Extra trucks",
        "opportunity-value": "3,000.50".replace(",", ""),
        "opportunity-stage": "proposal",
        "opportunity-expected_close_date": "2030-06-30",
    },
    "task": {"task-title": "Follow up", "task-kind": "call", "task-due": "2030-01-15"},
}
INVALID = {
    "interaction": {"interaction-interaction_type": "fax", "interaction-occurred_at": "1066-10-14T09:00"},
    "opportunity": {"opportunity-title": " ", "opportunity-value": "-5", "opportunity-stage": "lead"},
    "task": {"task-title": "", "task-kind": "call", "task-due": "15/01/2030x"},
}
CREATED = {
    "interaction": (Interaction, "notes", "Called about the renewal", "interaction.created"),
    "opportunity": (Opportunity, "title", "Extra trucks", "opportunity.created"),
    "task": (Task, "title", "Follow up", "task.created"),
}


def count(model):
    return model.objects.count(), model.history.count(), Event.objects.count()


@pytest.mark.parametrize("name", list(VALID))
@pytest.mark.parametrize("role", ["rep", "manager"])
def test_a_quick_action_adds_the_record_as_the_api_would(users, customer, role, name):
    model, field, value, event = CREATED[name]
    response = login(users[role]).post(quick_url(customer, name), VALID[name], follow=True)
    assert response.redirect_chain == [(page_url(customer), 302)]
    record = model.objects.get(**{field: value})
    assert record.customer == customer and record.created_by == users[role]
    assert record.history.get().history_user == users[role]
    assert Event.objects.filter(type=event, object_id=record.pk).count() == 1
    assert [message.level_tag for message in response.context["messages"]] == ["success"]
    if name == "opportunity":
        # The API's stage rules: the stage's default probability; the customer's company.
        assert (record.value, record.probability, record.company_id) == (Decimal("3000.50"), 40, customer.company_id)
    if name == "task":
        assert record.assignee == users[role] and record.due_is_date_only


@pytest.mark.parametrize("name", list(VALID))
def test_a_refused_quick_action_shows_why_and_writes_nothing(users, customer, name):
    model = CREATED[name][0]
    before = count(model)
    response = login(users["rep"]).post(quick_url(customer, name), INVALID[name])
    assert response.status_code == 200
    assert response.context["form"].errors
    assert "errornote" in response.content.decode()
    assert count(model) == before


def test_the_serializers_reasons_are_shown_on_the_form(users, customer):
    # A date the form reads but the API refuses (the years a record may have).
    data = {"interaction-interaction_type": "call", "interaction-occurred_at": "1066-10-14T09:00"}
    response = login(users["rep"]).post(quick_url(customer, "interaction"), data)
    assert "occurred_at" in response.context["form"].errors
    assert not Interaction.objects.filter(occurred_at__year=1066).exists()


@pytest.mark.parametrize("name", list(VALID))
def test_someone_elses_customer_is_not_found(users, customer, name):
    model = CREATED[name][0]
    before = count(model)
    response = login(users["other_rep"]).post(quick_url(customer, name), VALID[name])
    assert response.status_code == 404
    text = response.content.decode()
    assert "Alice Buyer" not in text and "deleted" not in text
    assert count(model) == before


@pytest.mark.parametrize("name", list(VALID))
def test_a_stale_page_writes_nothing(users, customer, name):
    """The page was shown while the customer was the rep's; it was given to someone else since."""
    model = CREATED[name][0]
    client = login(users["rep"])
    assert client.get(page_url(customer)).status_code == 200
    Customer.objects.filter(pk=customer.pk).update(owner=users["other_rep"])
    before = count(model)
    assert client.post(quick_url(customer, name), VALID[name]).status_code == 404
    assert count(model) == before


def test_a_task_for_a_deal_gone_since_the_page_was_shown_is_refused(users, customer):
    deal = customer.opportunities.get()
    data = {**VALID["task"], "task-opportunity": str(deal.pk)}
    deal.delete()
    before = count(Task)
    response = login(users["rep"]).post(quick_url(customer, "task"), data)
    assert response.status_code == 200 and "opportunity" in response.context["form"].errors
    assert count(Task) == before


def test_a_deal_of_another_customer_cannot_be_named(users, customer):
    other = OpportunityFactory(customer=CustomerFactory(owner=users["rep"]))
    response = login(users["rep"]).post(quick_url(customer, "task"), {**VALID["task"], "task-opportunity": other.pk})
    assert "opportunity" in response.context["form"].errors
    assert not Task.objects.filter(title="Follow up").exists()


def test_read_only_users_see_no_quick_actions_and_may_not_post(users, customer):
    client = login(users["read_only"])
    assert client.get(page_url(customer)).context["quick_actions"] == []
    before = count(Interaction)
    assert client.post(quick_url(customer, "interaction"), VALID["interaction"]).status_code == 403
    assert count(Interaction) == before


def test_quick_actions_need_the_csrf_token(users, customer):
    client = login(users["rep"], enforce_csrf_checks=True)
    before = count(Interaction)
    assert client.post(quick_url(customer, "interaction"), VALID["interaction"]).status_code == 403
    assert count(Interaction) == before


def test_an_unknown_quick_action_or_customer_is_not_found(users, customer):
    client = login(users["manager"])
    assert client.post(quick_url(customer, "nothing"), {}).status_code == 404
    missing = reverse("admin:customers_customer_quick_action", args=[999999, "interaction"])
    assert client.post(missing, VALID["interaction"]).status_code == 404


def test_a_quick_action_alone_shows_its_form(users, customer):
    response = login(users["rep"]).get(quick_url(customer, "interaction"))
    assert response.status_code == 200
    assert 'name="interaction-interaction_type"' in response.content.decode()


def test_the_add_page_keeps_the_interaction_inline(users):
    html = login(users["rep"]).get(reverse("admin:customers_customer_add")).content.decode()
    assert "interactions-TOTAL_FORMS" in html


def test_the_page_in_chinese(users, customer):
    html = login(users["rep"]).get(page_url(customer), HTTP_ACCEPT_LANGUAGE="zh-hans").content.decode()
    for text in ["负责人", "进行中商机金额", "下一个任务", "时间线", "记录电话、邮件或会面", "新增商机", "添加任务"]:
        assert text in html, text
    refused = login(users["other_rep"]).get(page_url(customer), HTTP_ACCEPT_LANGUAGE="zh-hans")
    assert refused.status_code == 404 and "在您可查看的记录中没有这个客户。" in refused.content.decode()


def test_a_change_names_its_fields_with_their_labels(users, customer):
    customer.status, customer.owner, customer.email = Customer.Status.ACTIVE, users["manager"], None
    customer.save()
    response = login(users["manager"]).get(page_url(customer))
    (item,) = [item for item in response.context["timeline"] if item["kind"] == "customer_changed"]
    old_email = customer.history.all()[1].email
    assert item["text"] == f"email: {old_email} → —; status: Prospect → Active; owner: rep → manager"
    assert item["text"] in response.content.decode()
    zh = login(users["manager"]).get(page_url(customer), HTTP_ACCEPT_LANGUAGE="zh-hans").context["timeline"]
    (item,) = [item for item in zh if item["kind"] == "customer_changed"]
    assert item["text"] == f"电子邮件：{old_email} → —；状态：意向客户 → 活跃；负责人：rep → manager"


@pytest.mark.parametrize("role", ["rep", "manager"])
def test_the_page_costs_the_same_queries_with_1_or_15_changes(users, role):
    counts = []
    for size in (1, 15):
        customer = CustomerFactory(owner=users["rep"], company=CompanyFactory())
        for index in range(size):
            customer.name, customer.owner = f"Name {index}", users["rep" if index % 2 else "manager"]
            customer.company = CompanyFactory()
            customer.save()
        customer.owner = users["rep"]
        customer.save()
        client = login(users[role])
        _queries(client, page_url(customer))  # warm: session, content types
        counts.append(_queries(client, page_url(customer)))
    assert counts[0] == counts[1], counts
