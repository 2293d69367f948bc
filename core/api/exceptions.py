"""The error half of the response envelope.

Every error the API returns, whether raised in a DRF view, by Django's URL
resolver (404), or by middleware (413), goes through :func:`error_response` so
that clients always see::

    {"success": false, "error": {"code": "...", "message": "...", "fields": {...}}}
"""

from django.core.exceptions import PermissionDenied
from django.http import Http404, JsonResponse
from django.utils.translation import gettext_lazy as _
from rest_framework import exceptions, status
from rest_framework.response import Response
from rest_framework.views import exception_handler as drf_exception_handler

from .responses import Envelope

# DRF's default codes, renamed where a client-facing name reads better.
_CODE_NAMES = {
    "invalid": "validation_error",
    "parse_error": "malformed_request",
    "error": "server_error",
}

# The one wording of a 404, whether the record or the route is unknown: a client tells the two
# apart by its URL, and another rep's record reads as one that does not exist.
NOT_FOUND = _("Not found.")


def _printable(text):
    """Text that can be encoded as UTF-8: a lone surrogate echoed from the input is escaped."""
    return text.encode("utf-8", "backslashreplace").decode("utf-8")


def error_body(code, message, fields=None):
    error = {"code": code, "message": _printable(message)}
    if fields:
        error["fields"] = fields
    return Envelope(success=False, error=error)


def error_response(status_code, code, message, fields=None):
    """A plain Django response in the envelope, for code outside DRF views."""
    return JsonResponse(
        error_body(code, message, fields),
        status=status_code,
        json_dumps_params={"ensure_ascii": False},
    )


def _flatten(detail):
    """Turn DRF's nested ErrorDetail structures into plain lists of strings."""
    if isinstance(detail, dict):
        return {_printable(str(key)): _messages(value) for key, value in detail.items()}
    return _messages(detail)


def _messages(detail, path=""):
    """A field's errors as a list of strings, as the error envelope's schema has them: the errors of a
    list's or a dict's items (DRF nests them by index or key) each named by where they are (``0: ...``)."""
    if isinstance(detail, dict):
        return [text for key, value in detail.items() for text in _messages(value, f"{path}{_printable(str(key))}.")]
    if isinstance(detail, list):
        return [text for item in detail for text in _messages(item, path)]
    text = _printable(str(detail))
    return [f"{path[:-1]}: {text}" if path else text]


def _validation_body(exc):
    detail = exc.detail
    if isinstance(detail, dict):
        fields = _flatten(detail)
        non_field = fields.pop("non_field_errors", None)
        if non_field:
            message = " ".join(non_field)
        else:
            first_field = next(iter(fields), None)
            first = fields.get(first_field) if first_field else None
            text = first[0] if first else "is invalid."
            message = f"Invalid input: {first_field}: {text}" if first_field else "Invalid input."
        return error_body("validation_error", message, fields or None)
    messages = _flatten(detail)
    return error_body("validation_error", " ".join(messages) or "Invalid input.")


def _api_exception(exc):
    if isinstance(exc, Http404):
        return exceptions.NotFound(NOT_FOUND)
    if isinstance(exc, PermissionDenied):
        return exceptions.PermissionDenied()
    return exc


def _body(exc):
    if isinstance(exc, exceptions.ValidationError):
        return _validation_body(exc)
    detail = exc.detail
    message = str(detail) if not isinstance(detail, (dict, list)) else "Request failed."
    code = getattr(detail, "code", None) or exc.default_code
    body = error_body(_CODE_NAMES.get(code, code), message)
    merged_into = getattr(exc, "merged_into", None)
    if merged_into is not None:
        # The id was merged into another record (core/merges.py): integrations follow it there.
        body["error"]["merged_into"] = merged_into
    return body


def error_of(exc):
    """(status, the envelope's ``error``) for an API exception, 404 or 403: one item of a batch."""
    exc = _api_exception(exc)
    return exc.status_code, _body(exc)["error"]


def envelope_exception_handler(exc, context):
    exc = _api_exception(exc)
    response = drf_exception_handler(exc, context)
    if response is None:
        # Not an API exception: let Django's 500 handler (also enveloped) deal with it.
        return None
    return Response(_body(exc), status=response.status_code, headers=dict(response.items()))


def bad_request(request, exception=None):
    return error_response(status.HTTP_400_BAD_REQUEST, "bad_request", "Bad request.")


def permission_denied(request, exception=None):
    return error_response(
        status.HTTP_403_FORBIDDEN, "permission_denied", "You do not have permission to perform this action."
    )


def not_found(request, exception=None):
    return error_response(status.HTTP_404_NOT_FOUND, "not_found", str(NOT_FOUND))


def server_error(request):
    return error_response(status.HTTP_500_INTERNAL_SERVER_ERROR, "server_error", "Internal server error.")


def csrf_failure(request, reason=""):
    return error_response(status.HTTP_403_FORBIDDEN, "csrf_failed", f"CSRF verification failed: {reason}")
