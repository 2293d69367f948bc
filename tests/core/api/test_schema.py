"""The OpenAPI contract: committed, served, and describing the envelope, errors and headers."""

from pathlib import Path

import pytest
import yaml
from django.conf import settings
from django.core.management import call_command

from core.api.exports import XLSX_CONTENT_TYPE as XLSX
from tests.factories import CustomerFactory

pytestmark = pytest.mark.django_db

COMMITTED = Path(settings.BASE_DIR) / "docs" / "openapi.yaml"


@pytest.fixture(scope="module")
def schema():
    return yaml.safe_load(COMMITTED.read_text())


def test_committed_schema_matches_the_code(tmp_path):
    generated = tmp_path / "openapi.yaml"
    call_command("spectacular", file=str(generated), validate=True, fail_on_warn=True)

    assert generated.read_text() == COMMITTED.read_text(), (
        "docs/openapi.yaml is out of date with the code: run `make schema` and commit the result."
    )


def test_schema_is_served_as_yaml_and_json_to_anyone(anon_client, schema):
    as_yaml = anon_client.get("/api/schema/")
    as_json = anon_client.get("/api/schema/?format=json")
    negotiated = anon_client.get("/api/schema", HTTP_ACCEPT="application/vnd.oai.openapi+json")

    assert as_yaml.status_code == as_json.status_code == negotiated.status_code == 200
    assert as_yaml["Content-Type"].startswith("application/vnd.oai.openapi")
    assert yaml.safe_load(as_yaml.content) == schema
    assert as_json.json() == negotiated.json() == schema  # served twice: generation has no leftovers


@pytest.mark.parametrize(("path", "marker"), [("/api/docs/", b"swagger-ui"), ("/api/redoc/", b"redoc")])
def test_documentation_pages_render_without_a_cdn(anon_client, path, marker):
    response = anon_client.get(path)

    assert response.status_code == 200
    assert marker in response.content.lower()
    assert b"cdn.jsdelivr" not in response.content


def test_bearer_scheme_is_described(schema):
    assert schema["components"]["securitySchemes"]["bearerAuth"]["scheme"] == "bearer"
    assert {"bearerAuth": []} in schema["paths"]["/api/customers"]["get"]["security"]


def _operations(schema):
    for path, item in schema["paths"].items():
        for method, operation in item.items():
            yield path, method, operation


def test_every_success_body_is_enveloped_and_every_error_uses_the_error_envelope(schema):
    error_ref = "#/components/schemas/ErrorEnvelope"
    for path, method, operation in _operations(schema):
        for code, response in operation["responses"].items():
            content = response.get("content", {}).get("application/json")
            if code.startswith("2") and path.endswith("/export"):
                # Files, not JSON: CSV or XLSX.
                assert set(response["content"]) == {"text/csv", XLSX}, path
            elif code.startswith("2"):
                body = content["schema"]
                if "$ref" in body:
                    body = schema["components"]["schemas"][body["$ref"].rsplit("/", 1)[1]]
                assert {"success", "data"} <= set(body["required"]), (path, method, code)
            elif code != "304":
                assert content["schema"] == {"$ref": error_ref}, (path, method, code)
            assert response["headers"]["X-Request-ID"]["required"] is True


@pytest.mark.parametrize(
    ("path", "method", "statuses"),
    [
        ("/api/customers", "get", {"200", "406", "400", "401", "403", "404", "429"}),
        ("/api/customers", "post", {"201", "406", "400", "401", "403", "409", "411", "413", "415", "422", "429"}),
        ("/api/customers/{id}", "get", {"200", "406", "304", "401", "403", "404", "429"}),
        # 409: a record it deletes given a record of its own meanwhile, a user it names deleted, a deadlock.
        (
            "/api/customers/{id}",
            "put",
            {"200", "406", "400", "401", "403", "404", "409", "411", "412", "413", "415", "429"},
        ),
        (
            "/api/opportunities/{id}",
            "patch",
            {"200", "406", "400", "401", "403", "404", "409", "411", "412", "413", "415", "429"},
        ),
        ("/api/interactions/{id}", "delete", {"200", "406", "401", "403", "404", "409", "412", "429"}),
        ("/api/auth/token", "post", {"200", "406", "400", "411", "413", "415", "429", "503"}),
    ],
)
def test_operations_list_every_status_they_can_return(schema, path, method, statuses):
    assert set(schema["paths"][path][method]["responses"]) == statuses


@pytest.mark.parametrize(
    ("method", "path", "authenticated"),
    [
        ("get", "/api/customers", True),
        ("get", "/api/customers/{id}", True),
        ("post", "/api/customers", True),
        ("post", "/api/auth/token", False),
    ],
)
def test_an_accept_header_nothing_answers_is_the_documented_406(api, anon_client, method, path, authenticated):
    client = api if authenticated else anon_client
    path = path.format(id=CustomerFactory().pk)
    response = getattr(client, method)(path, {}, format="json", HTTP_ACCEPT="application/xml")

    assert response.status_code == 406
    assert response["Content-Type"] == "application/json"
    assert response.json()["success"] is False
    assert response.json()["error"]["code"] == "not_acceptable"


def test_conditional_and_idempotency_headers_are_described(schema):
    def params(path, method):
        return {p["name"]: p for p in schema["paths"][path][method].get("parameters", [])}

    assert params("/api/customers", "post")["Idempotency-Key"]["schema"]["pattern"]
    assert "If-Match" in params("/api/customers/{id}", "put")
    assert "If-Match" in params("/api/customers/{id}", "delete")
    assert "If-None-Match" in params("/api/customers/{id}", "get")
    assert params("/api/customers/{id}", "get")["id"]["schema"]["type"] == "integer"
    assert schema["paths"]["/api/customers/{id}"]["get"]["responses"]["200"]["headers"]["ETag"]["required"]
    assert schema["paths"]["/api/customers"]["get"]["responses"]["429"]["headers"]["Retry-After"]["required"]


def test_filters_search_ordering_and_paging_are_typed(schema):
    params = {p["name"]: p["schema"] for p in schema["paths"]["/api/opportunities"]["get"]["parameters"]}

    assert params["page"] == {"type": "integer", "minimum": 1, "maximum": 10**9}
    assert params["page_size"] == {"type": "integer", "minimum": 1, "maximum": 10**9}
    assert params["cursor"] == {"type": "string", "pattern": "^[A-Za-z0-9_-]+$"}
    assert params["stage"]["enum"] == ["closed", "lead", "lost", "negotiation", "proposal"]
    assert params["min_value"]["type"] == "number"
    assert "-value" in params["ordering"]["items"]["enum"]
    customer_params = {p["name"] for p in schema["paths"]["/api/customers"]["get"]["parameters"]}
    assert {"search", "status", "created_after", "created_before", "ordering"} <= customer_params


def test_put_is_documented_as_partial(schema):
    body = schema["paths"]["/api/customers/{id}"]["put"]["requestBody"]["content"]["application/json"]["schema"]
    assert body == {"$ref": "#/components/schemas/PatchedCustomerRequest"}
    assert "required" not in schema["components"]["schemas"]["PatchedCustomerRequest"]


def test_extra_actions_get_the_envelope_and_idempotency_but_no_etag_promises():
    from drf_spectacular.generators import SchemaGenerator
    from rest_framework.decorators import action
    from rest_framework.response import Response

    from crm_site.api_router import OptionalSlashRouter
    from customers.views import CustomerViewSet

    class WithAction(CustomerViewSet):
        @action(detail=True, methods=["post"])
        def archive(self, request, pk=None):
            return Response(self.get_serializer(self.get_object()).data)

    router = OptionalSlashRouter()
    router.register("things", WithAction, basename="thing")
    schema = SchemaGenerator(patterns=router.urls).get_schema(request=None, public=True)
    operation = schema["paths"]["/things/{id}/archive"]["post"]

    assert "Idempotency-Key" in {p["name"] for p in operation["parameters"]}
    assert "If-Match" not in {p["name"] for p in operation["parameters"]}
    success = operation["responses"]["200"]
    assert "ETag" not in success["headers"]
    assert set(success["content"]["application/json"]["schema"]["properties"]) == {"success", "data"}
    assert {"400", "409", "422", "429"} <= set(operation["responses"])
