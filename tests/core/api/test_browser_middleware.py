"""Bearer API requests pass by the session, authentication and messages middleware; nothing else does."""

import pytest
from django.contrib.auth.middleware import AuthenticationMiddleware as DjangoAuthenticationMiddleware
from django.contrib.auth.models import Group
from django.contrib.messages.middleware import MessageMiddleware as DjangoMessageMiddleware
from django.contrib.sessions.middleware import SessionMiddleware as DjangoSessionMiddleware
from django.http import HttpResponse
from rest_framework.test import APIClient

from core.api.middleware import AuthenticationMiddleware, MessageMiddleware, SessionMiddleware, bearer_api_request
from customers.models import Customer
from tests.factories import PASSWORD, CustomerFactory, ManagerFactory, UserFactory

pytestmark = pytest.mark.django_db


@pytest.mark.parametrize(
    ("path", "header", "bearer"),
    [
        ("/api/customers", "Bearer abc", True),
        ("/api/customers", "bearer abc", True),
        ("/api/customers", "  Bearer\tabc", True),
        ("/api/customers", "Bearer", True),  # refused by the bearer scheme itself (401), never by the session
        ("/api/customers", None, False),
        ("/api/customers", "Token abc", False),
        ("/api/customers", "Basic dTpw", False),
        ("/api/customers", "Bearer\xa0abc", False),  # not a bearer header to knox either (one word)
        ("/admin/", "Bearer abc", False),
        ("/apix/customers", "Bearer abc", False),
    ],
)
def test_bearer_api_request_reads_the_header_as_the_bearer_scheme_does(rf, path, header, bearer):
    extra = {} if header is None else {"HTTP_AUTHORIZATION": header}
    assert bearer_api_request(rf.get(path, **extra)) is bearer


@pytest.mark.parametrize(
    ("ours", "django"),
    [
        (SessionMiddleware, DjangoSessionMiddleware),
        (AuthenticationMiddleware, DjangoAuthenticationMiddleware),
        (MessageMiddleware, DjangoMessageMiddleware),
    ],
)
def test_each_is_djangos_middleware_passed_by_on_bearer_api_requests(rf, ours, django):
    # The admin's checks look for subclasses of Django's classes.
    assert issubclass(ours, django)
    seen = []

    def view(request):
        seen.append({name for name in ("session", "user", "_messages") if hasattr(request, name)})
        return HttpResponse()

    stack = SessionMiddleware(AuthenticationMiddleware(MessageMiddleware(view)))
    stack(rf.get("/api/customers", HTTP_AUTHORIZATION="Bearer abc"))
    stack(rf.get("/api/customers"))
    stack(rf.get("/admin/", HTTP_AUTHORIZATION="Bearer abc"))

    assert seen == [set(), {"session", "user", "_messages"}, {"session", "user", "_messages"}]


def test_a_bearer_request_is_the_tokens_user_whatever_session_it_carries(token, user):
    rep = UserFactory()
    rep.groups.add(Group.objects.get(name="Sales rep"))
    client = APIClient()
    client.login(username=rep.username, password=PASSWORD)
    CustomerFactory(owner=user)

    by_session = client.get("/api/customers").json()["meta"]["count"]
    client.credentials(HTTP_AUTHORIZATION=f"Bearer {token}")
    by_token = client.get("/api/auth/me").json()["data"]

    assert by_session == 0  # the rep's book is empty
    assert by_token["username"] == user.username


def test_session_signed_in_api_use_still_works_and_writes_need_the_csrf_token():
    manager = ManagerFactory()
    client = APIClient(enforce_csrf_checks=True)
    client.login(username=manager.username, password=PASSWORD)

    assert client.get("/api/customers").status_code == 200
    refused = client.post("/api/customers", {"name": "No token"}, format="json")

    assert refused.status_code == 403
    assert "CSRF" in refused.json()["error"]["message"]
    assert not Customer.objects.filter(name="No token").exists()


def test_the_admin_with_a_bearer_header_is_still_the_admin(token):
    client = APIClient()
    client.credentials(HTTP_AUTHORIZATION=f"Bearer {token}")

    response = client.get("/admin/")

    assert response.status_code == 302
    assert "/admin/login/" in response["Location"]


def test_a_bearer_api_answer_sets_no_cookie_and_varies_as_before(api):
    response = api.get("/api/customers")

    assert response.status_code == 200
    assert not response.cookies
    assert "Cookie" not in response.get("Vary", "")
    assert response["X-Frame-Options"] == "DENY"
