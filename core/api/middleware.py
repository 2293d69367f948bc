from django.conf import settings

from .exceptions import error_response


class RequestBodyLimitMiddleware:
    """Answer 413 for bodies over ``MAX_REQUEST_BODY_BYTES`` before reading them.

    DRF's parsers read the WSGI stream directly, so Django's own
    ``DATA_UPLOAD_MAX_MEMORY_SIZE`` does not guard JSON bodies.
    """

    def __init__(self, get_response):
        self.get_response = get_response

    def __call__(self, request):
        limit = settings.MAX_REQUEST_BODY_BYTES
        if not request.META.get("CONTENT_LENGTH") and request.META.get("HTTP_TRANSFER_ENCODING"):
            # Django reads no body without a length: refuse rather than silently see an empty one.
            # gunicorn leaves CONTENT_LENGTH out; the development server (wsgiref) sets it to "".
            return error_response(411, "length_required", "Send the request body with a Content-Length header.")
        try:
            length = int(request.META.get("CONTENT_LENGTH") or 0)
        except ValueError:
            return error_response(400, "bad_request", "Content-Length must be an integer.")
        if limit and length > limit:
            return error_response(
                413, "request_too_large", f"Request body is {length} bytes; the limit is {limit} bytes."
            )
        return self.get_response(request)
