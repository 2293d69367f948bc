"""The success half of the response envelope.

Views return their payload as usual; this renderer wraps it as
``{"success": true, "data": ...}``. Payloads that already are an envelope (from
the pagination class, the exception handler or a delete) pass through.
"""

from rest_framework.renderers import BrowsableAPIRenderer, JSONRenderer


def is_envelope(data):
    return isinstance(data, dict) and isinstance(data.get("success"), bool)


class EnvelopeJSONRenderer(JSONRenderer):
    ensure_ascii = False

    def render(self, data, accepted_media_type=None, renderer_context=None):
        response = (renderer_context or {}).get("response")
        if response is not None and response.status_code in (204, 304):
            return b""
        if not is_envelope(data):
            data = {"success": True, "data": data}
        return super().render(data, accepted_media_type, renderer_context)


class EnvelopeBrowsableAPIRenderer(BrowsableAPIRenderer):
    """The browsable API for staff logged into the admin, showing the enveloped JSON."""

    def get_default_renderer(self, view):
        return EnvelopeJSONRenderer()
