"""``X-Request-ID`` on every request and one JSON access-log line per request.

The id is the client's (or the proxy's) when it looks like an id, so a request
can be followed from the load balancer to the logs; otherwise a new one is made.
The line goes to the ``crm.access`` logger, e.g.::

    {"event": "request", "request_id": "...", "method": "GET", "path": "/api/customers",
     "status": 200, "duration_ms": 4.1, "user_id": 3, "remote_addr": "10.0.0.2", "pid": 1234}
"""

import json
import logging
import os
import re
import time

HEADER = "X-Request-ID"
_SANE_ID = re.compile(r"^[A-Za-z0-9._:@+=/-]{1,128}$")

logger = logging.getLogger("crm.access")

# ``json.dumps(line, ensure_ascii=False)``: the same encoder, made once instead of on each call.
_encode_line = json.JSONEncoder(ensure_ascii=False).encode

# uuid.uuid4() sets these bits of its 128 random ones: the version (4) and the RFC 4122 variant.
_UUID4_CLEARED = ~((0xF000 << 64) | (0xC000 << 48))
_UUID4_SET = (4 << 76) | (0x8000 << 48)


def new_request_id():
    """``uuid.uuid4().hex``, made without the ``UUID`` object: 16 random bytes, the version and variant bits set."""
    return "%032x" % (int.from_bytes(os.urandom(16)) & _UUID4_CLEARED | _UUID4_SET)


def request_id_from(request):
    # From META, as the header is sent: building ``request.headers`` for it would cost more than the rest.
    candidate = request.META.get("HTTP_X_REQUEST_ID", "")
    return candidate if _SANE_ID.match(candidate) else new_request_id()


def _user_id(request):
    # DRF writes the user it authenticated back onto the Django request.
    user = getattr(request, "user", None)
    return user.pk if user is not None and user.is_authenticated else None


class RequestIDMiddleware:
    """Outermost middleware: every response, errors included, carries the id and is logged."""

    def __init__(self, get_response):
        self.get_response = get_response

    def __call__(self, request):
        started = time.perf_counter()
        request.request_id = request_id_from(request)
        response = self.get_response(request)
        response[HEADER] = request.request_id
        if logger.isEnabledFor(logging.INFO):
            logger.info(
                _encode_line(
                    {
                        "event": "request",
                        "request_id": request.request_id,
                        "method": request.method,
                        # A view whose URL holds a secret (a calendar feed's) logs a redacted path.
                        "path": getattr(request, "log_path", request.path),
                        "status": response.status_code,
                        "duration_ms": round((time.perf_counter() - started) * 1000, 1),
                        "user_id": _user_id(request),
                        "remote_addr": request.META.get("REMOTE_ADDR"),
                        "pid": os.getpid(),
                    }
                )
            )
        return response
