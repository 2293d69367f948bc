"""A record outside the user's book reads "not found" on every record page; users, groups and tokens are
superusers' screens."""

import pytest
from django.contrib import admin
from django.contrib.auth import get_user_model
from django.contrib.auth.models import Group, Permission
from django.test import Client
from django.urls import reverse
from django.utils import timezone

from core.admin.base import CRMModelAdmin
from core.models import Tag
from tests.factories import (
    CompanyFactory,
    CustomerFactory,
    InteractionFactory,
    OpportunityFactory,
    TaskFactory,
    UserFactory,
)

pytestmark = pytest.mark.django_db

SALES_RECORDS = {
    "company": lambda owner: CompanyFactory(name="Secret Co", owner=owner),
    "customer": lambda owner: CustomerFactory(name="Secret Buyer", owner=owner),
    "interaction": lambda owner: InteractionFactory(customer=CustomerFactory(owner=owner), notes="Secret notes"),
    "opportunity": lambda owner: OpportunityFactory(customer=CustomerFactory(owner=owner), title="Secret deal"),
    "task": lambda owner: TaskFactory(
        customer=CustomerFactory(owner=owner), assignee=owner, title="Secret task", due_at=timezone.now()
    ),
}
VIEWS = ["change", "history", "delete"]


def staff(username, group=None, **kwargs):
    user = UserFactory(username=username, is_staff=True, **kwargs)
    if group:
        user.groups.add(Group.objects.get(name=group))
    return user


def login(user):
    client = Client()
    client.force_login(user)
    return client


def assert_not_found(response):
    assert response.status_code == 404
    text = response.content.decode()
    assert "doesn’t exist" not in text and "Perhaps it was deleted" not in text
    assert "There is no such" in text
    return text


@pytest.mark.parametrize("view", VIEWS)
@pytest.mark.parametrize("kind", list(SALES_RECORDS))
def test_another_reps_record_is_not_found(kind, view):
    owner, other = staff("owner", "Sales rep"), staff("other", "Sales rep")
    record = SALES_RECORDS[kind](owner)
    opts = record._meta
    url = reverse(f"admin:{opts.app_label}_{opts.model_name}_{view}", args=[record.pk])
    text = assert_not_found(login(other).get(url))
    assert "Secret" not in text
    # Its owner reaches it (a rep may not delete customers or companies: refused, not hidden).
    assert login(owner).get(url).status_code in (200, 403)


def _crm_model_admins():
    return [
        (model, model_admin)
        for model, model_admin in admin.site._registry.items()
        if isinstance(model_admin, CRMModelAdmin)
    ]


@pytest.mark.parametrize("view", [*VIEWS, "simple_history"])
def test_every_crm_record_page_answers_an_unknown_id_with_not_found(view):
    manager = staff("boss", "Sales manager")
    client = login(manager)
    for model, model_admin in _crm_model_admins():
        opts = model._meta
        if not model_admin.has_view_permission(_request(manager)):
            continue
        args = [999999, 1] if view == "simple_history" else [999999]
        response = client.get(reverse(f"admin:{opts.app_label}_{opts.model_name}_{view}", args=args))
        assert response.status_code == 404, (model, view, response.status_code)
        assert "Perhaps it was deleted" not in response.content.decode()


# Digits to str.isdigit() that int() refuses (superscripts, circled numbers), and ids that are no number.
NO_NUMBERS = ["²", "①", "1.5", "abc"]


@pytest.mark.parametrize("view", [*VIEWS, "simple_history"])
def test_every_crm_record_page_answers_an_id_that_is_no_number_with_not_found(view):
    for user in (staff("boss", "Sales manager"), staff("rep", "Sales rep")):
        client = login(user)
        for model, _model_admin in [*_crm_model_admins(), (Tag, None)]:
            opts = model._meta
            name = f"admin:{opts.app_label}_{opts.model_name}_{view}"
            if model is Tag and view not in ("history", "simple_history"):
                continue
            for object_id in NO_NUMBERS:
                url = reverse(name, args=[object_id, 1] if view == "simple_history" else [object_id])
                for method in (client.get, client.post):
                    response = method(url)
                    assert response.status_code in (403, 404), (user.username, url, response.status_code)


def test_pages_and_filters_taking_an_id_answer_one_that_is_no_number_without_a_failure():
    manager = staff("boss", "Sales manager")
    customer = CustomerFactory(owner=manager)
    client = login(manager)
    page = reverse("admin:customers_customer_change", args=[customer.pk])
    for param in ("interactions_page", "timeline_page"):
        assert client.get(page, {param: "²"}).status_code == 200
    quick = reverse("admin:customers_customer_change", args=["²"]).replace("/change/", "/quick/interaction/")
    assert client.post(quick, {"interaction_type": "call"}).status_code == 404
    for url, params in [
        ("/admin/customers/customer/", {"owner": "²"}),
        ("/admin/duplicates/duplicatecandidate/", {"status__exact": "open", "record": "²"}),
    ]:
        response = client.get(url, params)
        assert (response.status_code, response.get("Location")) in ((200, None), (302, f"{url}?e=1")), url
    response = client.get("/admin/customers/customer/merge/", {"ids": f"²,{customer.pk}"})
    assert (response.status_code, response["Location"]) == (302, "/admin/customers/customer/")


def _request(user):
    from django.test import RequestFactory

    request = RequestFactory().get("/admin/")
    request.user = user
    return request


TECHNICAL = ["/admin/auth/user/", "/admin/auth/group/", "/admin/knox/authtoken/"]


@pytest.mark.parametrize("group", ["Sales rep", "Sales manager", "Read-only"])
def test_sales_roles_see_no_technical_screens(group):
    user = staff("seller", group)
    # Even granted the permissions one by one.
    user.user_permissions.set(Permission.objects.filter(content_type__app_label__in=["auth", "knox"]))
    client = login(user)
    index = client.get("/admin/").content.decode()
    for url in TECHNICAL:
        assert f'href="{url}"' not in index
        assert client.get(url).status_code == 403
    assert client.get(reverse("admin:auth_user_change", args=[user.pk])).status_code == 403


def test_superusers_keep_the_technical_screens():
    root = staff("root", is_superuser=True)
    client = login(root)
    index = client.get("/admin/").content.decode()
    for url in TECHNICAL:
        assert f'href="{url}"' in index
        assert client.get(url).status_code == 200
    assert get_user_model().objects.filter(username="root").exists()
