"""Request ids, the access log, body limits and where credentials are read from."""

import json
import logging

import pytest
from django.http import HttpResponse

from core.api.middleware import RequestBodyLimitMiddleware
from customers.models import Customer
from tests.factories import InteractionFactory

pytestmark = pytest.mark.django_db


def test_client_request_id_is_echoed(api):
    response = api.get("/api/customers", HTTP_X_REQUEST_ID="abc-123.def_456")
    assert response["X-Request-ID"] == "abc-123.def_456"


@pytest.mark.parametrize("bad_id", ["", "has space", "x" * 129, "<script>", "ünï"])
def test_unusable_request_id_is_replaced_by_a_generated_one(api, bad_id):
    response = api.get("/api/customers", HTTP_X_REQUEST_ID=bad_id)
    assert response["X-Request-ID"] != bad_id
    assert len(response["X-Request-ID"]) == 32


@pytest.mark.parametrize("path", ["/api/customers", "/api/nowhere", "/api/health", "/", "/admin/login/"])
def test_every_response_gets_a_request_id(anon_client, path):
    first, second = anon_client.get(path), anon_client.get(path)
    assert first["X-Request-ID"] and first["X-Request-ID"] != second["X-Request-ID"]


def test_one_json_access_log_line_per_request(api, user, caplog):
    with caplog.at_level(logging.INFO, logger="crm.access"):
        response = api.post("/api/customers", {"name": "Ada"}, format="json", HTTP_X_REQUEST_ID="req-1")

    records = [r for r in caplog.records if r.name == "crm.access"]
    assert len(records) == 1
    line = json.loads(records[0].getMessage())
    assert line["request_id"] == "req-1" == response["X-Request-ID"]
    assert line["method"] == "POST"
    assert line["path"] == "/api/customers"
    assert line["status"] == 201
    assert line["user_id"] == user.pk
    assert isinstance(line["duration_ms"], float) and line["duration_ms"] >= 0


def test_access_log_has_no_user_for_anonymous_requests(anon_client, caplog):
    with caplog.at_level(logging.INFO, logger="crm.access"):
        anon_client.get("/api/customers")
    line = json.loads([r for r in caplog.records if r.name == "crm.access"][0].getMessage())
    assert line["status"] == 401
    assert line["user_id"] is None


def test_body_over_the_limit_is_413(api, settings):
    settings.MAX_REQUEST_BODY_BYTES = 100
    response = api.post("/api/customers", {"name": "x" * 200}, format="json")

    assert response.status_code == 413
    assert response.json()["error"]["code"] == "request_too_large"
    assert not Customer.objects.exists()


@pytest.mark.parametrize("content_length", [None, ""], ids=["absent (gunicorn)", "empty (runserver)"])
def test_chunked_body_without_length_is_refused(rf, content_length):
    # The test client always sets Content-Length; a real server does not for chunked bodies
    # (tests/live covers that through gunicorn).
    request = rf.post("/api/customers", b'{"name": "Ada"}', content_type="application/json")
    if content_length is None:
        del request.META["CONTENT_LENGTH"]
    else:
        request.META["CONTENT_LENGTH"] = content_length
    request.META["HTTP_TRANSFER_ENCODING"] = "chunked"

    response = RequestBodyLimitMiddleware(lambda request: HttpResponse("view reached"))(request)

    assert response.status_code == 411
    assert json.loads(response.content)["error"]["code"] == "length_required"


@pytest.mark.parametrize(
    ("content_type", "body", "status", "code"),
    [
        ("text/plain", b"name=Ada", 415, "unsupported_media_type"),
        ("application/x-www-form-urlencoded", b"name=Ada", 415, "unsupported_media_type"),
        (
            "multipart/form-data; boundary=x",
            b'--x\r\nContent-Disposition: form-data; name="name"\r\n\r\nAda\r\n--x--',
            415,
            "unsupported_media_type",
        ),
        ("application/xml", b"<name>Ada</name>", 415, "unsupported_media_type"),
        ("application/json", b"{not json", 400, "malformed_request"),
        ("application/json", b"\xff\xfe", 400, "malformed_request"),
    ],
)
def test_non_json_bodies_are_refused(api, content_type, body, status, code):
    response = api.generic("POST", "/api/customers", body, content_type=content_type)

    assert response.status_code == status
    assert response.json()["error"]["code"] == code
    assert not Customer.objects.exists()


@pytest.mark.parametrize("param", ["token", "access_token", "auth_token", "bearer", "Authorization"])
def test_tokens_are_never_read_from_the_query_string(anon_client, token, param):
    response = anon_client.get(f"/api/customers?{param}={token}")

    assert response.status_code == 401
    assert response.json()["error"]["code"] in ("not_authenticated", "authentication_failed")


def test_token_from_the_header_works(anon_client, token):
    anon_client.credentials(HTTP_AUTHORIZATION=f"Bearer {token}")
    assert anon_client.get("/api/customers").status_code == 200


@pytest.mark.parametrize("value", ["0001-01-01T00:30:00+05:00", "9999-12-31T23:59:00-05:00"])
def test_date_time_filters_out_of_range_in_utc_are_400_not_500(api, value):
    response = api.get("/api/interactions", {"created_before": value})

    assert response.status_code == 400
    assert response.json()["error"]["fields"] == {"created_before": ["Date and time out of range."]}


@pytest.mark.parametrize("value", ["2020-01-01T00:00:00+23:59", "2020-01-01T00:00:00-16:00"])
def test_date_time_filters_accept_offsets_the_database_would_refuse(api, value):
    # PostgreSQL refuses offsets past 15:59; the value is compared in UTC instead.
    InteractionFactory()
    response = api.get("/api/interactions", {"created_after": value})

    assert response.status_code == 200
    assert response.json()["meta"]["count"] == 1


def test_date_time_filters_with_offsets_compare_in_utc(api):
    from tests.factories import CustomerFactory

    customer = CustomerFactory()
    response = api.get("/api/customers", {"created_after": "2000-01-01T10:00:00+15:30"})

    assert [row["id"] for row in response.json()["data"]] == [customer.pk]


def test_login_takes_json_only(anon_client, user):
    response = anon_client.post("/api/auth/token", {"username": user.username, "password": "x"})  # a form

    assert response.status_code == 415
    assert response.json()["error"]["code"] == "unsupported_media_type"


def test_browsers_may_send_the_safe_write_headers_across_origins(anon_client, settings):
    settings.CORS_ALLOWED_ORIGINS = ["https://app.example.com"]
    response = anon_client.options(
        "/api/customers/1",
        HTTP_ORIGIN="https://app.example.com",
        HTTP_ACCESS_CONTROL_REQUEST_METHOD="PATCH",
        HTTP_ACCESS_CONTROL_REQUEST_HEADERS="authorization, content-type, if-match, idempotency-key, x-request-id",
    )

    allowed = {h.strip() for h in response["Access-Control-Allow-Headers"].split(",")}
    assert {"authorization", "if-match", "if-none-match", "idempotency-key", "x-request-id"} <= allowed
