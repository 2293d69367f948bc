"""What the shared request path answers, header by header: making it leaner must change none of it.

Every API request goes through one path (the middleware, DRF's dispatch, the
base viewset). These requests cover its branches on the way to a detail: a
bearer read, a conditional read (304), a missing record, a refused token, the
client's language, a browser's origin, an id of its own, and a session's read.
Each answer's status and its headers, in order, are compared whole with what
the path answered before it was trimmed (values that differ on every request
stand as placeholders: the generated request id, the ETag, the rate limits).
"""

import json
import logging
import os
import re
import uuid

import pytest
from corsheaders import middleware as cors
from django.http import HttpResponse
from django.middleware import locale
from django.test import Client
from django.utils import translation

from core.api.middleware import CorsMiddleware, LocaleMiddleware
from core.api.request_id import new_request_id
from tests.factories import PASSWORD, CustomerFactory

pytestmark = pytest.mark.django_db

_DETAIL_METHODS = "GET, PUT, PATCH, DELETE, HEAD, OPTIONS"

_VOLATILE = {
    "X-Request-ID": re.compile(r"^[0-9a-f]{32}$"),
    "ETag": re.compile(r'^W/"[0-9a-f]+"$|^"[0-9a-f]+"$'),
    "RateLimit": re.compile(r'^"user";r=\d+;t=\d+$'),
}


def _answer(response):
    headers = []
    for name, value in response.headers.items():
        pattern = _VOLATILE.get(name)
        if pattern and pattern.match(value) or name == "Content-Length" and value == str(len(response.content)):
            value = f"<{name}>"
        headers.append((name, value))
    return response.status_code, headers


def _record(
    *,
    etag=True,
    content_type=True,
    vary="Accept, Accept-Language, origin",
    allow=_DETAIL_METHODS,
    language="en",
    limited=True,
    before_vary=(),
    request_id="<X-Request-ID>",
):
    """The headers of an answer that went through a viewset, in the order the path sets them."""
    return [
        *([("Content-Type", "application/json")] if content_type else []),
        *([("ETag", "<ETag>")] if etag else []),
        *before_vary,
        ("Vary", vary),
        ("Allow", allow),
        ("X-Frame-Options", "DENY"),
        ("Content-Length", "<Content-Length>"),
        ("Content-Language", language),
        *([("RateLimit-Policy", '"user";q=100000;w=60'), ("RateLimit", "<RateLimit>")] if limited else []),
        ("X-Content-Type-Options", "nosniff"),
        ("Referrer-Policy", "same-origin"),
        ("Cross-Origin-Opener-Policy", "same-origin"),
        ("X-Request-ID", request_id),
    ]


@pytest.fixture
def detail(user):
    return f"/api/customers/{CustomerFactory(owner=user).pk}"


@pytest.fixture
def bearer(token):
    return {"HTTP_AUTHORIZATION": f"Bearer {token}"}


@pytest.mark.parametrize(
    ("extra", "expected"),
    [
        ({}, (200, _record())),
        ({"HTTP_ACCEPT_LANGUAGE": "zh-hans"}, (200, _record(language="zh-hans"))),
        ({"HTTP_ACCEPT": "*/*", "HTTP_ORIGIN": "https://elsewhere.example"}, (200, _record())),
        ({"HTTP_X_REQUEST_ID": "client-id-1"}, (200, _record(request_id="client-id-1"))),
        ({"HTTP_X_REQUEST_ID": "not an id"}, (200, _record())),
    ],
    ids=["plain", "language", "origin", "request-id", "bad-request-id"],
)
def test_a_bearer_detail_answers_every_header_as_before(client, detail, bearer, extra, expected):
    assert _answer(client.get(detail, **bearer, **extra)) == expected


def test_a_conditional_read_answers_304_with_the_same_headers(client, detail, bearer):
    etag = client.get(detail, **bearer)["ETag"]

    answer = _answer(client.get(detail, HTTP_IF_NONE_MATCH=etag, **bearer))

    assert answer == (304, _record(content_type=False))


def test_a_missing_record_and_a_refused_token_answer_as_before(client, bearer):
    assert _answer(client.get("/api/customers/999999", **bearer)) == (404, _record(etag=False))
    assert _answer(client.get("/api/customers/1", HTTP_AUTHORIZATION="Bearer nope")) == (
        401,
        _record(etag=False, limited=False, before_vary=[("WWW-Authenticate", "Bearer")]),
    )


def test_a_list_and_an_unknown_api_path_answer_as_before(client, detail, bearer):
    assert _answer(client.get("/api/customers?page_size=1", **bearer)) == (
        200,
        _record(etag=False, allow="GET, POST, HEAD, OPTIONS"),
    )
    assert _answer(client.get("/api/nothing-here", **bearer)) == (
        404,
        [
            ("Content-Type", "application/json"),
            ("X-Frame-Options", "DENY"),
            ("Content-Length", "<Content-Length>"),
            ("Vary", "Accept-Language, origin"),
            ("Content-Language", "en"),
            ("X-Content-Type-Options", "nosniff"),
            ("Referrer-Policy", "same-origin"),
            ("Cross-Origin-Opener-Policy", "same-origin"),
            ("X-Request-ID", "<X-Request-ID>"),
        ],
    )


def test_a_session_read_answers_as_before(detail, user):
    client = Client()
    client.login(username=user.username, password=PASSWORD)

    assert _answer(client.get(detail)) == (200, _record(vary="Accept, Accept-Language, Cookie, origin"))


def test_the_access_log_line_says_what_it_said(client, detail, bearer, user, caplog):
    with caplog.at_level(logging.INFO, logger="crm.access"):
        client.get(detail, HTTP_X_REQUEST_ID="client-id-2", **bearer)

    (record,) = [record for record in caplog.records if record.name == "crm.access"]
    message = record.getMessage()
    line = json.loads(message)
    # The same line to the character: the keys in this order, json's separators.
    assert message == json.dumps(line, ensure_ascii=False)
    assert isinstance(line.pop("duration_ms"), float)
    assert line == {
        "event": "request",
        "request_id": "client-id-2",
        "method": "GET",
        "path": detail,
        "status": 200,
        "user_id": user.pk,
        "remote_addr": "127.0.0.1",
        "pid": os.getpid(),
    }
    assert list(json.loads(message)) == [*list(line)[:5], "duration_ms", *list(line)[5:]]
    assert record.levelno == logging.INFO


@pytest.mark.parametrize(
    "extra",
    [
        {},
        {"HTTP_ACCEPT_LANGUAGE": "zh-hans"},
        {"HTTP_ACCEPT_LANGUAGE": "zh-CN,zh;q=0.9,en;q=0.8"},
        {"HTTP_ACCEPT_LANGUAGE": "fr, de;q=0.5"},
        {"HTTP_ACCEPT_LANGUAGE": "en-GB"},
        {"HTTP_COOKIE": "django_language=zh-hans", "HTTP_ACCEPT_LANGUAGE": "en"},
        {"HTTP_ACCEPT_LANGUAGE": "*;q=0.1, zh-Hans;q=0.2"},
    ],
)
@pytest.mark.parametrize("path", ["/api/customers/1", "/admin/", "/zh-hans/admin/"])
def test_locale_middleware_answers_as_djangos(rf, extra, path):
    def run(middleware_class):
        seen = []

        def view(request):
            seen.append((request.LANGUAGE_CODE, translation.get_language()))
            return HttpResponse(status=404 if path.startswith("/zh") else 200, headers={"Vary": "Accept"})

        try:
            response = middleware_class(view)(rf.get(path, **extra))
            return seen, response.status_code, list(response.headers.items())
        finally:
            translation.deactivate()

    assert run(LocaleMiddleware) == run(locale.LocaleMiddleware)


@pytest.mark.parametrize(
    ("method", "extra"),
    [
        ("get", {}),
        ("get", {"HTTP_ORIGIN": ""}),
        ("get", {"HTTP_ORIGIN": "https://app.example.com"}),
        ("get", {"HTTP_ORIGIN": "https://elsewhere.example"}),
        ("get", {"HTTP_ORIGIN": "null"}),
        ("get", {"HTTP_ORIGIN": "http://[bad"}),
        ("options", {"HTTP_ORIGIN": "https://app.example.com", "HTTP_ACCESS_CONTROL_REQUEST_METHOD": "PATCH"}),
        ("options", {"HTTP_ORIGIN": "https://elsewhere.example", "HTTP_ACCESS_CONTROL_REQUEST_METHOD": "PATCH"}),
        ("options", {"HTTP_ACCESS_CONTROL_REQUEST_METHOD": "PATCH"}),
        ("options", {"HTTP_ORIGIN": "https://app.example.com"}),
    ],
)
@pytest.mark.parametrize("path", ["/api/customers/1", "/admin/"])
def test_cors_middleware_answers_as_corsheaders(rf, settings, method, extra, path):
    settings.CORS_ALLOWED_ORIGINS = ["https://app.example.com"]

    def run(middleware_class):
        def view(request):
            return HttpResponse(headers={"Vary": "Accept"})

        return middleware_class(view)(getattr(rf, method)(path, **extra))

    response = run(CorsMiddleware)
    assert _answer(response) == _answer(run(cors.CorsMiddleware))
    # What each case is about: the origin allowed on the API only, Vary wherever CORS applies, and
    # a preflight answered by the middleware itself.
    api = path.startswith("/api/")
    allowed = api and extra.get("HTTP_ORIGIN") == "https://app.example.com"
    assert response.get("Access-Control-Allow-Origin") == ("https://app.example.com" if allowed else None)
    preflight = api and method == "options" and "HTTP_ACCESS_CONTROL_REQUEST_METHOD" in extra
    assert response["Vary"] == ("origin" if preflight else "Accept, origin" if api else "Accept")


def test_a_new_request_id_is_a_random_uuid4_as_before():
    ids = [new_request_id() for _ in range(2000)]

    assert len(set(ids)) == len(ids)
    for request_id in ids:
        assert re.fullmatch(r"[0-9a-f]{32}", request_id)
        as_uuid = uuid.UUID(hex=request_id)
        assert (as_uuid.version, as_uuid.variant) == (4, uuid.RFC_4122)
    # Every bit uuid4 leaves random is random here too: each is seen both set and clear.
    values = [int(request_id, 16) for request_id in ids]
    fixed = (0xF000 << 64) | (0xC000 << 48)
    assert all(value & fixed == (4 << 76) | (0x8000 << 48) for value in values)
    seen_set = seen_clear = 0
    for value in values:
        seen_set |= value
        seen_clear |= ~value & (2**128 - 1)
    assert seen_set & ~fixed == seen_clear & ~fixed == (2**128 - 1) & ~fixed
