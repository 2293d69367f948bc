"""The success half of the response envelope.

Views return their payload as usual; this renderer wraps it as
``{"success": true, "data": ...}``. Bodies that already are the envelope (an
``Envelope``: from the pagination class, the exception handler, or a
``MessageResponse``) pass through. Whether a body is one is decided by its type,
so a payload with a key named ``success`` is data like any other.
"""

import orjson
from rest_framework.renderers import BrowsableAPIRenderer, JSONRenderer
from rest_framework.utils.encoders import JSONEncoder

from .responses import Envelope

# Dates and times go to DRF's encoder, as everything orjson cannot encode itself.
_ORJSON_OPTIONS = orjson.OPT_PASSTHROUGH_DATETIME
_drf_default = JSONEncoder().default


class EnvelopeJSONRenderer(JSONRenderer):
    ensure_ascii = False

    def render(self, data, accepted_media_type=None, renderer_context=None):
        response = (renderer_context or {}).get("response")
        if response is not None and response.status_code in (204, 304):
            return b""
        if not isinstance(data, Envelope):
            data = {"success": True, "data": data}
        if data is None or self.get_indent(accepted_media_type, renderer_context or {}) is not None:
            return super().render(data, accepted_media_type, renderer_context)
        # orjson writes the same compact UTF-8 as DRF's json.dumps, several times faster.
        try:
            rendered = orjson.dumps(data, default=_drf_default, option=_ORJSON_OPTIONS)
        except (TypeError, orjson.JSONEncodeError):
            # Integers beyond 64 bits and the like: DRF's encoder knows what to do.
            return super().render(data, accepted_media_type, renderer_context)
        # As DRF does: keep the output a strict subset of JavaScript.
        if b"\xe2\x80\xa8" in rendered or b"\xe2\x80\xa9" in rendered:
            rendered = rendered.replace(b"\xe2\x80\xa8", b"\\u2028").replace(b"\xe2\x80\xa9", b"\\u2029")
        return rendered


class EnvelopeBrowsableAPIRenderer(BrowsableAPIRenderer):
    """The browsable API for staff logged into the admin, showing the enveloped JSON."""

    def get_default_renderer(self, view):
        return EnvelopeJSONRenderer()
