"""Every answer goes through the one renderer: data is wrapped, envelopes built by the API pass as they are."""

import json

import pytest
from django.test import Client
from rest_framework import serializers
from rest_framework.response import Response
from rest_framework.test import APIRequestFactory, force_authenticate
from rest_framework.views import APIView

from core.api.renderers import EnvelopeJSONRenderer
from core.api.responses import MessageResponse
from tests.factories import InteractionFactory


class OutcomeSerializer(serializers.Serializer):
    id = serializers.IntegerField()
    success = serializers.BooleanField()


class OutcomeView(APIView):
    """A resource whose representation has a top-level field named ``success``."""

    def get(self, request):
        return Response(OutcomeSerializer({"id": 7, "success": False}).data)


class MessageView(APIView):
    def post(self, request):
        return MessageResponse("Done.", {"id": 7})


def call(view, method, user):
    request = getattr(APIRequestFactory(), method)("/anything")
    force_authenticate(request, user=user)
    response = view.as_view()(request)
    response.render()
    return json.loads(response.content)


@pytest.mark.parametrize("success", [True, False])
def test_a_payload_with_a_success_key_is_wrapped_as_data(success):
    body = json.loads(EnvelopeJSONRenderer().render({"success": success, "id": 1}))

    assert body == {"success": True, "data": {"success": success, "id": 1}}


def test_a_resource_field_named_success_is_data_in_the_envelope(user):
    assert call(OutcomeView, "get", user) == {"success": True, "data": {"id": 7, "success": False}}


def test_a_message_response_is_the_envelope_with_its_message(user):
    body = call(MessageView, "post", user)

    assert body == {"success": True, "message": "Done.", "data": {"id": 7}}
    assert list(body) == ["success", "message", "data"]


def test_delete_and_logout_answer_through_the_renderer_in_the_same_shape(api, db):
    interaction = InteractionFactory()

    deleted = api.delete(f"/api/interactions/{interaction.pk}")
    logged_out = api.post("/api/auth/logout")

    assert deleted.json() == {"success": True, "message": "Interaction deleted.", "data": {"id": interaction.pk}}
    assert logged_out.json() == {"success": True, "message": "Logged out.", "data": None}
    assert deleted["Content-Type"] == logged_out["Content-Type"] == "application/json"


@pytest.mark.parametrize("debug", [False, True])
def test_a_host_not_allowed_gets_the_api_400_with_debug_on_or_off(settings, debug):
    """``make run`` serves with DEBUG on: an API client sees the envelope there as in production,
    not Django's debug page; the admin's paths keep the debug page for the developer."""
    settings.DEBUG = debug
    client = Client()  # made after the setting: it loads the middleware (one of them only with DEBUG on)

    response = client.get("/api/customers", HTTP_HOST="evil.example.com")
    admin = client.get("/admin/", HTTP_HOST="evil.example.com")

    assert response.status_code == 400
    assert response["Content-Type"] == "application/json"
    assert json.loads(response.content) == {
        "success": False,
        "error": {"code": "bad_request", "message": "Bad request."},
    }
    assert response["X-Request-ID"]
    assert admin.status_code == 400
    assert admin["Content-Type"].startswith("text/html" if debug else "application/json")
