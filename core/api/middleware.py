"""The API's own middleware, and the browser middleware that bearer API requests pass by.

Django's session, authentication and messages middleware serve signed-in
browsers (the admin, the browsable API). A request to ``/api/`` that presents a
bearer token is authenticated by that token alone: the bearer scheme comes
first in DRF's authentication classes and, once its prefix is present, either
signs the user in or refuses the request, so the session is never read. Such a
request passes by those three (subclasses of Django's, which the admin's checks
look for); any other request, a bearer header outside ``/api/`` included, goes
through them as before. CSRF protection, the language, the history's request and
the security headers apply to every request alike.

``LocaleMiddleware`` is Django's, without the work for language-prefixed URLs
when the URLconf has none (``i18n_patterns``): every request pays for it.
``CorsMiddleware`` is django-cors-headers', reading the ``Origin`` header
without building ``request.headers`` when the request has none.
"""

from corsheaders import middleware as cors
from django.conf import settings
from django.conf.urls.i18n import is_language_prefix_patterns_used
from django.contrib.auth import middleware as auth
from django.contrib.messages import middleware as messages
from django.contrib.sessions import middleware as sessions
from django.core.exceptions import DisallowedHost, MiddlewareNotUsed
from django.middleware import locale
from django.utils import translation
from django.utils.cache import patch_vary_headers

from .authentication import authorization_words, is_bearer
from .exceptions import bad_request, error_response

API_PREFIX = "/api/"


def bearer_api_request(request):
    """Whether ``request`` is to the API with a bearer token (as knox reads the header: its first word)."""
    if not request.path_info.startswith(API_PREFIX) or "HTTP_AUTHORIZATION" not in request.META:
        return False
    return is_bearer(authorization_words(request))


class _BrowserOnly:
    """Mixed into a Django middleware: bearer API requests go straight on to the next one."""

    def __call__(self, request):
        if bearer_api_request(request):
            return self.get_response(request)
        return super().__call__(request)


class SessionMiddleware(_BrowserOnly, sessions.SessionMiddleware):
    pass


class AuthenticationMiddleware(_BrowserOnly, auth.AuthenticationMiddleware):
    pass


class MessageMiddleware(_BrowserOnly, messages.MessageMiddleware):
    pass


class LocaleMiddleware(locale.LocaleMiddleware):
    """Django's: the language from the client's cookie or ``Accept-Language``, ``Vary`` and ``Content-Language``.

    Django's reads the language of the URL's prefix twice a request, though it
    only counts under ``i18n_patterns``; without them, this does the rest of
    Django's steps alone, in the same order (``tests/core/api/test_request_path.py``).
    """

    def process_request(self, request):
        if _language_prefixes(request):
            return super().process_request(request)
        translation.activate(translation.get_language_from_request(request, check_path=False))
        request.LANGUAGE_CODE = translation.get_language()
        return None

    def process_response(self, request, response):
        if _language_prefixes(request):
            return super().process_response(request, response)
        patch_vary_headers(response, ("Accept-Language",))
        response.headers.setdefault("Content-Language", translation.get_language())
        return response


class CorsMiddleware(cors.CorsMiddleware):
    """django-cors-headers' middleware, answering the same, with the request's ``Origin`` read from ``META``.

    Without an ``Origin`` header (every request but a browser's from another
    page) corsheaders only adds ``Vary: origin`` where CORS applies, after
    building ``request.headers`` from the whole environ to find that out; this
    does the same from ``META``. A request with the header (or a preflight)
    goes through corsheaders' own code (``tests/core/api/test_request_path.py``).
    """

    def add_response_headers(self, request, response):
        if request.META.get("HTTP_ORIGIN"):
            return super().add_response_headers(request, response)
        enabled = getattr(request, "_cors_enabled", None)
        if enabled is None:
            enabled = self.is_enabled(request)
        if enabled:
            patch_vary_headers(response, ("origin",))
        return response


def _language_prefixes(request):
    """Whether the request's URLconf has language-prefixed URLs (cached by Django per URLconf)."""
    return is_language_prefix_patterns_used(getattr(request, "urlconf", settings.ROOT_URLCONF))[0]


class DebugAPIHostMiddleware:
    """With ``DEBUG`` on, a request to the API from a host not in ``ALLOWED_HOSTS`` answers the API's 400.

    Django answers it with its debug page (HTML, a traceback and the settings) when ``DEBUG`` is on, and
    with ``handler400`` (the envelope) when it is off; an API client tried against ``make run`` gets the
    envelope as in production. Other paths keep Django's debug page. Not loaded when ``DEBUG`` is off.
    """

    def __init__(self, get_response):
        if not settings.DEBUG:
            raise MiddlewareNotUsed
        self.get_response = get_response

    def __call__(self, request):
        if request.path_info.startswith(API_PREFIX):
            try:
                request.get_host()
            except DisallowedHost:
                return bad_request(request)
        return self.get_response(request)


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
