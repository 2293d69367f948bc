"""What a client sees from gunicorn with the production settings."""

import http.client
import json
import uuid
from urllib.parse import urlsplit

import pytest

from tests.live.conftest import create_tokens

pytestmark = pytest.mark.live


@pytest.fixture(scope="module")
def token(gunicorn_server):
    return create_tokens(gunicorn_server.database_url, ["http-checks"])["http-checks"]


def _raw(server, method, path, headers, body_chunks=None):
    parts = urlsplit(server.url)
    connection = http.client.HTTPConnection(parts.hostname, parts.port, timeout=30)
    try:
        connection.request(method, path, body=body_chunks, headers=headers, encode_chunked=body_chunks is not None)
        response = connection.getresponse()
        return response.status, dict(response.getheaders()), response.read()
    finally:
        connection.close()


def test_chunked_body_without_length_is_refused_not_ignored(gunicorn_server, token):
    name = f"Chunked {uuid.uuid4().hex}"
    chunks = iter([b'{"name": ', json.dumps(name).encode(), b"}"])
    status, headers, body = _raw(
        gunicorn_server,
        "POST",
        "/api/customers",
        {"Authorization": f"Bearer {token}", "Content-Type": "application/json", "Transfer-Encoding": "chunked"},
        chunks,
    )

    assert status == 411
    assert json.loads(body)["error"]["code"] == "length_required"
    listed = gunicorn_server.client(token).get(f"{gunicorn_server.url}/api/customers", params={"search": name})
    assert listed.json()["meta"]["count"] == 0


def test_declared_body_over_the_limit_is_413_before_it_is_read(gunicorn_server, token):
    response = gunicorn_server.client(token).post(
        f"{gunicorn_server.url}/api/customers",
        data=b"{" + b" " * (1024 * 1024 + 10) + b"}",
        headers={"Content-Type": "application/json"},
    )

    assert response.status_code == 413
    assert response.json()["error"]["code"] == "request_too_large"


def test_request_id_is_echoed_and_logged_with_user_status_and_duration(gunicorn_server, token):
    request_id = f"trace-{uuid.uuid4().hex}"
    response = gunicorn_server.client(token).get(
        f"{gunicorn_server.url}/api/customers?page_size=1", headers={"X-Request-ID": request_id}
    )

    assert response.headers["X-Request-ID"] == request_id
    [entry] = [e for e in gunicorn_server.access_log() if e["request_id"] == request_id]
    assert entry["method"] == "GET"
    assert entry["path"] == "/api/customers"
    assert entry["status"] == 200
    assert isinstance(entry["user_id"], int)
    assert entry["duration_ms"] >= 0


def test_a_logged_path_with_unicode_line_breaks_is_one_line_of_json(gunicorn_server):
    # U+2028 and U+0085 are line ends to str.splitlines(), not to the log: the line stays whole.
    response = gunicorn_server.client().get(f"{gunicorn_server.url}/api/x%E2%80%A8y%C2%85z")
    request_id = response.headers["X-Request-ID"]
    [entry] = [e for e in gunicorn_server.access_log() if e["request_id"] == request_id]
    assert entry["path"] == "/api/x\u2028y\x85z"
    assert entry["status"] == response.status_code


def test_generated_request_id_when_the_client_sends_none(gunicorn_server):
    response = gunicorn_server.client().get(f"{gunicorn_server.url}/api/health")
    assert len(response.headers["X-Request-ID"]) == 32


def test_static_files_are_served_by_whitenoise_with_long_caching(gunicorn_server):
    docs = gunicorn_server.client().get(f"{gunicorn_server.url}/api/docs/")
    assert docs.status_code == 200
    # The page links the hashed (manifest) name of the bundled Swagger UI.
    static_path = next(
        part.split('"')[0] for part in docs.text.split('src="')[1:] if part.startswith("/static/") and ".js" in part
    )

    asset = gunicorn_server.client().get(f"{gunicorn_server.url}{static_path}", headers={"Accept-Encoding": "gzip"})

    assert asset.status_code == 200
    assert "max-age=315360000" in asset.headers["Cache-Control"]
    assert asset.headers.get("Content-Encoding") == "gzip"


def test_production_sends_security_headers(gunicorn_server):
    response = gunicorn_server.client().get(f"{gunicorn_server.url}/api/health")

    assert response.headers["X-Content-Type-Options"] == "nosniff"
    assert response.headers["X-Frame-Options"] == "DENY"
    assert response.headers["Referrer-Policy"] == "same-origin"


def test_options_with_if_match_describes_the_endpoint(gunicorn_server, token):
    # OPTIONS tries a PUT outside any transaction to list the allowed actions.
    client = gunicorn_server.client(token)
    created = client.post(f"{gunicorn_server.url}/api/customers", json={"name": f"Options {uuid.uuid4().hex}"})

    response = client.options(
        f"{gunicorn_server.url}/api/customers/{created.json()['data']['id']}", headers={"If-Match": '"stale"'}
    )

    assert response.status_code == 200
    assert response.json()["data"]["name"] == "Customer Instance"


def test_behind_a_tls_proxy_https_is_recognised_and_plain_http_redirected(server_factory):
    server = server_factory(workers=1, DJANGO_SECURE_SSL_REDIRECT="true", DJANGO_SECURE_PROXY_SSL_HEADER="true")
    client = server.client()

    proxied = client.get(f"{server.url}/api/customers", headers={"X-Forwarded-Proto": "https"}, allow_redirects=False)
    plain = client.get(f"{server.url}/api/customers", allow_redirects=False)
    probe = client.get(f"{server.url}/api/health", allow_redirects=False)

    assert proxied.status_code == 401  # reached the API over "HTTPS"
    assert proxied.headers["Strict-Transport-Security"].startswith("max-age=31536000")
    assert plain.status_code == 301
    assert plain.headers["Location"].startswith("https://")
    assert probe.status_code == 200  # load balancers probe over plain HTTP
