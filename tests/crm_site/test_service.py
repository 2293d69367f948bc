"""The service contract: health, index, routing, the error envelope."""

import json

import pytest
from django.test import override_settings

from customers.models import Customer
from tests.factories import CustomerFactory

RESOURCES = ["customers", "interactions", "opportunities"]


def test_health_reports_database_and_cache_ok(anon_client, db):
    response = anon_client.get("/api/health")
    assert response.status_code == 200
    assert response.json() == {"status": "healthy", "message": "CRM API is running", "database": "ok", "cache": "ok"}


def test_health_rejects_writes_in_the_envelope(anon_client, db):
    response = anon_client.delete("/api/health")
    assert response.status_code == 405
    assert response.json()["error"]["code"] == "method_not_allowed"


def test_index_lists_name_version_and_endpoints(anon_client):
    body = anon_client.get("/").json()
    assert body["name"] == "CRM API"
    assert body["version"]
    assert body["endpoints"]["customers"] == "/api/customers"
    assert set(body["endpoints"]) >= {"health", "token", "customers", "interactions", "opportunities"}


def test_index_lists_every_resource_and_report_and_each_answers(anon_client, api):
    endpoints = anon_client.get("/").json()["endpoints"]
    for name in ("companies", "tags", "events", "notifications", "duplicates", "changesets", "reports/pipeline"):
        assert endpoints[name] == f"/api/{name}"
    for name, path in endpoints.items():
        if path.startswith("/api/") and name not in ("token", "logout"):
            assert api.get(path).status_code == 200, name


@pytest.mark.parametrize("resource", RESOURCES)
@pytest.mark.parametrize("suffix", ["", "/"])
def test_lists_answer_with_and_without_trailing_slash(api, resource, suffix):
    response = api.get(f"/api/{resource}{suffix}")
    assert response.status_code == 200
    assert response.json()["success"] is True


@pytest.mark.parametrize("suffix", ["", "/"])
def test_detail_and_writes_answer_with_and_without_trailing_slash(api, suffix):
    customer = CustomerFactory()
    assert api.get(f"/api/customers/{customer.pk}{suffix}").json()["data"]["id"] == customer.pk
    response = api.put(f"/api/customers/{customer.pk}{suffix}", {"phone": "123"}, format="json")
    assert response.status_code == 200
    assert response.json()["data"]["phone"] == "123"
    created = api.post(f"/api/customers{suffix}", {"name": "Slash"}, format="json")
    assert created.status_code == 201


@pytest.mark.parametrize("debug", [False, True])
@pytest.mark.parametrize("path", ["/api/nope", "/api/customers/1/extra", "/api/customers/abc", "/api"])
def test_unknown_routes_get_json_404_envelope(api, path, debug):
    with override_settings(DEBUG=debug):
        response = api.get(path)
    assert response.status_code == 404
    assert response["Content-Type"].startswith("application/json")
    assert response.json() == {"success": False, "error": {"code": "not_found", "message": "Not found."}}


@pytest.mark.parametrize(("language", "message"), [("en", "Not found."), ("zh-hans", "未找到。")])
def test_an_unknown_route_and_an_unknown_record_answer_the_same_404(api, language, message):
    # A client that tells the two apart does it by URL, not by the wording of one of them.
    not_found = {"success": False, "error": {"code": "not_found", "message": message}}
    for path in ["/api/nope", "/api/customers/999999", "/api/customers/999999/timeline"]:
        response = api.get(path, HTTP_ACCEPT_LANGUAGE=language)
        assert (response.status_code, response.json()) == (404, not_found), path


@pytest.mark.parametrize("method", ["post", "put", "delete"])
def test_unknown_routes_get_404_for_every_method(api, method):
    response = getattr(api, method)("/api/unknown/route", {"a": 1}, format="json")
    assert response.status_code == 404
    assert response.json()["error"]["code"] == "not_found"


@pytest.mark.parametrize(
    ("method", "path"),
    [
        ("patch", "/api/customers"),
        ("delete", "/api/interactions"),
        ("put", "/api/opportunities/"),
        ("post", "/api/customers/1"),
    ],
)
def test_wrong_methods_get_405_envelope(api, method, path):
    CustomerFactory(id=1)
    response = getattr(api, method)(path, {}, format="json")
    assert response.status_code == 405
    body = response.json()
    assert body["success"] is False
    assert body["error"]["code"] == "method_not_allowed"


@pytest.mark.parametrize(
    ("method", "path", "allow"),
    [
        ("post", "/api/docs", "GET, HEAD"),
        ("put", "/api/docs/", "GET, HEAD"),
        ("delete", "/api/redoc", "GET, HEAD"),
        ("post", "/api/schema/", "GET, HEAD, OPTIONS"),
    ],
)
def test_the_schema_and_its_pages_answer_a_wrong_method_in_the_json_envelope(api, method, path, allow):
    response = getattr(api, method)(path)
    assert response.status_code == 405
    assert response["Content-Type"] == "application/json"
    assert response["Allow"] == allow
    assert response.json() == {
        "success": False,
        "error": {"code": "method_not_allowed", "message": f'Method "{method.upper()}" not allowed.'},
    }


@pytest.mark.parametrize(
    ("path", "known"),
    [
        *[(f"/api/{resource}", "json, api") for resource in RESOURCES],
        ("/api/customers/", "json, api"),
        ("/api/customers/1", "json, api"),
        ("/api/customers/1/timeline", "json, api"),
        ("/api/reports/pipeline", "json, api"),
        ("/api/auth/me", "json, api"),
        ("/api/schema", "yaml, json"),
        ("/api/docs/", "html"),
        ("/api/redoc/", "html"),
    ],
)
def test_an_unknown_format_is_a_400_that_names_it(api, path, known):
    CustomerFactory(id=1)
    response = api.get(path, {"format": "abc"})
    assert response.status_code == 400
    assert response["Content-Type"] == "application/json"
    message = f'Unknown format "abc": this URL answers {known}.'
    assert response.json() == {
        "success": False,
        "error": {
            "code": "validation_error",
            "message": f"Invalid input: format: {message}",
            "fields": {"format": [message]},
        },
    }


def test_known_and_empty_formats_are_served(api):
    CustomerFactory(name="Formatted")
    for query in ({"format": "json"}, {"format": ""}):
        response = api.get("/api/customers", query)
        assert response.status_code == 200
        assert response.json()["data"][0]["name"] == "Formatted"
    # On an export, ?format= is the file type.
    assert api.get("/api/customers/export", {"format": "csv"})["Content-Type"].startswith("text/csv")
    assert api.get("/api/customers/export", {"format": "abc"}).json()["error"]["fields"] == {
        "format": ['"abc" is not a valid choice.']
    }


def test_malformed_json_is_a_400_in_the_envelope(api):
    response = api.generic("POST", "/api/customers", '{"name": ', content_type="application/json")
    assert response.status_code == 400
    assert response.json()["error"]["code"] == "malformed_request"


@pytest.mark.parametrize("literal", ["NaN", "Infinity", "-Infinity"])
def test_non_standard_json_numbers_are_rejected(api, literal):
    customer = CustomerFactory()
    body = f'{{"customer_id": {customer.pk}, "title": "x", "value": {literal}}}'
    response = api.generic("POST", "/api/opportunities", body, content_type="application/json")
    assert response.status_code == 400
    assert response.json()["success"] is False


def test_unsupported_media_type_is_a_415(api):
    response = api.generic("POST", "/api/customers", "name=x", content_type="text/plain")
    assert response.status_code == 415
    assert response.json()["error"]["code"] == "unsupported_media_type"


def test_oversized_body_is_a_413_and_writes_nothing(api, settings):
    settings.MAX_REQUEST_BODY_BYTES = 1000
    body = json.dumps({"name": "x" * 2000})
    response = api.generic("POST", "/api/customers", body, content_type="application/json")
    assert response.status_code == 413
    assert response.json()["error"]["code"] == "request_too_large"
    assert api.get("/api/customers").json()["meta"]["count"] == 0


@pytest.mark.parametrize("payload", [[1, 2], "text", 42, None])
def test_json_that_is_not_an_object_is_a_400(api, payload):
    response = api.generic("POST", "/api/customers", json.dumps(payload), content_type="application/json")
    assert response.status_code == 400
    assert response.json()["success"] is False


def test_session_form_post_without_csrf_token_is_an_enveloped_403(client, staff_user):
    client.force_login(staff_user)
    client.handler.enforce_csrf_checks = True
    response = client.post("/api/customers", {"name": "x"})
    assert response.status_code == 403
    assert response.json()["success"] is False


def test_cors_is_limited_to_configured_origins_on_the_api(anon_client, db, settings):
    settings.CORS_ALLOWED_ORIGINS = ["https://app.example.com"]
    allowed = anon_client.get("/api/health", HTTP_ORIGIN="https://app.example.com")
    assert allowed["Access-Control-Allow-Origin"] == "https://app.example.com"
    other = anon_client.get("/api/health", HTTP_ORIGIN="https://evil.example.com")
    assert "Access-Control-Allow-Origin" not in other
    outside_api = anon_client.get("/", HTTP_ORIGIN="https://app.example.com")
    assert "Access-Control-Allow-Origin" not in outside_api


def test_unexpected_errors_are_a_500_in_the_envelope(client, db, settings):
    settings.ROOT_URLCONF = "tests.server_error_urls"
    client.raise_request_exception = False
    response = client.get("/api/broken")
    assert response.status_code == 500
    assert response.json() == {"success": False, "error": {"code": "server_error", "message": "Internal server error."}}
    assert "a bug" not in response.content.decode()


def test_a_conflicting_write_that_no_validator_caught_is_a_409(api, db):
    from django.db import connection

    from tests.factories import CustomerFactory

    # A constraint the serializer knows nothing about, as a later migration might add. Created
    # first: PostgreSQL refuses to index a table with deferred foreign-key checks pending.
    with connection.cursor() as cursor:
        cursor.execute("CREATE UNIQUE INDEX test_phone_unique ON customers_customer (phone)")
    customer = CustomerFactory(name="Guarded")
    response = api.post("/api/customers", {"name": "Other", "phone": customer.phone}, format="json")
    assert response.status_code == 409
    assert response.json()["error"]["code"] == "conflict"
    assert list(Customer.objects.values_list("name", flat=True)) == ["Guarded"]


def test_health_is_503_when_the_database_is_unreachable():
    import subprocess
    import sys

    from django.conf import settings

    script = (
        "import django; django.setup(); from django.test import Client; "
        "r = Client().get('/api/health'); print(r.status_code); print(r.content.decode())"
    )
    env = {
        "PATH": "/usr/bin:/bin",
        "DJANGO_SETTINGS_MODULE": "crm_site.settings.test",
        # Nothing listens on port 1: the connection is refused at once.
        "DATABASE_URL": "postgres://postgres@127.0.0.1:1/unreachable",
    }
    result = subprocess.run(
        [sys.executable, "-c", script], cwd=settings.BASE_DIR, env=env, capture_output=True, text=True, timeout=60
    )
    status, body = result.stdout.splitlines()[:2]
    assert status == "503"
    assert '"status": "unhealthy"' in body
    assert '"database": "unavailable"' in body
