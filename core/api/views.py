"""Service endpoints: health, the index at ``/``, token login/logout, the schema and its pages."""

from functools import wraps

from django.conf import settings
from django.contrib.auth import authenticate
from django.db import connection, transaction
from django.http import JsonResponse
from django.views.decorators.csrf import csrf_exempt
from drf_spectacular.utils import extend_schema
from drf_spectacular.views import SpectacularAPIView, SpectacularRedocView, SpectacularSwaggerView
from knox.models import get_token_model
from rest_framework import serializers, status
from rest_framework.permissions import AllowAny, IsAuthenticated
from rest_framework.response import Response
from rest_framework.views import APIView

from core.access import role_of
from core.models import MAX_REMINDER_LEAD_MINUTES, UserPreferences, is_time_zone

from .exceptions import error_response
from .renderers import EnvelopeJSONRenderer
from .responses import MessageResponse
from .schema import message_envelope
from .serializers import StrictJSONTypesMixin
from .throttling import AnonThrottle, LoginAddressThrottle, LoginUsernameThrottle, counters_reachable


def method_not_allowed(request, exception=None):
    return error_response(405, "method_not_allowed", f'Method "{request.method}" not allowed.')


def require_safe(view):
    """Like Django's decorator of that name, but answering 405 in the envelope."""

    @csrf_exempt
    @wraps(view)
    def wrapper(request, *args, **kwargs):
        if request.method not in ("GET", "HEAD"):
            response = method_not_allowed(request)
            response["Allow"] = "GET, HEAD"
            return response
        return view(request, *args, **kwargs)

    return wrapper


@require_safe
def health(request):
    """Liveness, database and cache reachability, without authentication (for load balancers).

    The cache holds the rate-limit counters: while it is unreachable logins are
    refused, so the instance is reported unhealthy.
    """
    try:
        with connection.cursor() as cursor:
            cursor.execute("SELECT 1")
            cursor.fetchone()
    except Exception:  # any failure to reach the database means unhealthy
        return JsonResponse(
            {"status": "unhealthy", "message": "Database is unavailable", "database": "unavailable"},
            status=503,
        )
    if not counters_reachable():
        return JsonResponse(
            {"status": "unhealthy", "message": "Cache is unavailable", "database": "ok", "cache": "down"},
            status=503,
        )
    return JsonResponse({"status": "healthy", "message": "CRM API is running", "database": "ok", "cache": "ok"})


@require_safe
def index(request, resources=()):
    """The service's name and version, and a map of its endpoints: ``resources``, the paths under ``/api``
    of the router's resources and reports (as the URLconf gives them), between the account endpoints and
    the documentation."""
    return JsonResponse(
        {
            "name": "CRM API",
            "message": "CRM API",
            "version": settings.VERSION,
            "endpoints": {
                "health": "/api/health",
                "token": "/api/auth/token",
                "logout": "/api/auth/logout",
                "me": "/api/auth/me",
                **{path: f"/api/{path}" for path in resources},
                "docs": "/api/docs/",
                "redoc": "/api/redoc/",
                "schema": "/api/schema/",
                "admin": "/admin/",
            },
        },
        json_dumps_params={"ensure_ascii": False},
    )


class TokenRequestSerializer(StrictJSONTypesMixin, serializers.Serializer):
    username = serializers.CharField(max_length=150, trim_whitespace=False)
    password = serializers.CharField(max_length=1024, trim_whitespace=False, style={"input_type": "password"})

    def validate(self, attrs):
        user = authenticate(self.context["request"], username=attrs["username"], password=attrs["password"])
        if user is None or not user.is_active:
            raise serializers.ValidationError(
                "Unable to log in with the provided username and password.", code="invalid_credentials"
            )
        attrs["user"] = user
        return attrs


class TokenResponseSerializer(serializers.Serializer):
    token = serializers.CharField(help_text="Send as `Authorization: Bearer <token>`.")
    expires_at = serializers.DateTimeField(allow_null=True)


class TokenView(APIView):
    """``POST /api/auth/token`` with ``{"username", "password"}`` -> a bearer token."""

    authentication_classes = []
    permission_classes = [AllowAny]
    throttle_classes = [AnonThrottle, LoginAddressThrottle, LoginUsernameThrottle]

    @extend_schema(request=TokenRequestSerializer, responses={200: TokenResponseSerializer}, tags=["auth"])
    def post(self, request):
        serializer = TokenRequestSerializer(data=request.data, context={"request": request})
        serializer.is_valid(raise_exception=True)
        instance, token = get_token_model().objects.create(serializer.validated_data["user"])
        return Response({"token": token, "expires_at": instance.expiry}, status=status.HTTP_200_OK)


class LogoutView(APIView):
    """``POST /api/auth/logout``: revokes the bearer token the request was made with."""

    permission_classes = [IsAuthenticated]

    @extend_schema(
        request=None,
        responses={
            200: message_envelope(
                {"type": "object", "nullable": True, "description": "Always null: nothing to return."}
            )
        },
        tags=["auth"],
    )
    def post(self, request):
        if isinstance(request.auth, get_token_model()):
            request.auth.delete()
        # Shaped as a delete's answer: a message, and (here) no data.
        return MessageResponse("Logged out.")


ME = {
    "type": "object",
    "required": ["id", "username", "name", "email", "role", "is_superuser", "permissions"],
    "properties": {
        "id": {"type": "integer"},
        "username": {"type": "string"},
        "name": {"type": "string"},
        "email": {"type": "string"},
        "role": {"type": "string", "enum": ["manager", "rep", "read_only"], "nullable": True},
        "is_superuser": {"type": "boolean"},
        "permissions": {"type": "array", "items": {"type": "string"}, "description": "app_label.codename"},
        "time_zone": {"type": "string", "description": "IANA name; your today and overdue are in it."},
        "reminder_lead_minutes": {"type": "integer", "description": "Default minutes before a task's reminder."},
        "daily_digest": {"type": "boolean", "description": "A morning email of today's and overdue tasks."},
    },
}


# Fields that apps add to /api/auth/me: name -> a function of the user and the request (register_me_field).
_ME_FIELDS = {}


def register_me_field(name, schema, value):
    """Add ``name`` to ``GET /api/auth/me``: ``value(user, request)``, described by ``schema`` (OpenAPI).

    Called from an app's ``AppConfig.ready()``, so that the kernel names no domain app.
    """
    _ME_FIELDS[name] = value
    ME["properties"][name] = schema
    ME["required"].append(name)


class PreferencesSerializer(StrictJSONTypesMixin, serializers.ModelSerializer):
    """Body of ``PATCH /api/auth/me``: the user's own preferences (any of them)."""

    time_zone = serializers.CharField(max_length=64, required=False, help_text="An IANA name, e.g. Asia/Shanghai.")
    reminder_lead_minutes = serializers.IntegerField(min_value=0, max_value=MAX_REMINDER_LEAD_MINUTES, required=False)

    class Meta:
        model = UserPreferences
        fields = ["time_zone", "reminder_lead_minutes", "daily_digest"]

    def validate_time_zone(self, value):
        if not is_time_zone(value):
            raise serializers.ValidationError(
                "Not a time zone name (such as Europe/Paris or Asia/Shanghai).", code="invalid_time_zone"
            )
        return value

    def validate(self, attrs):
        unknown = set(getattr(self, "initial_data", {}) or {}) - set(self.fields)
        if unknown:
            raise serializers.ValidationError({name: ["Unknown or read-only field."] for name in sorted(unknown)})
        return attrs


class MeView(APIView):
    """``GET /api/auth/me``: the signed-in user, their role, permissions and preferences.

    ``PATCH`` sets the preferences (``time_zone``, ``reminder_lead_minutes``, ``daily_digest``).
    """

    permission_classes = [IsAuthenticated]

    @extend_schema(responses={200: ME})
    def get(self, request):
        return Response(self.represent(request.user))

    @extend_schema(request=PreferencesSerializer, responses={200: ME})
    def patch(self, request):
        preferences = UserPreferences.for_user(request.user)
        serializer = PreferencesSerializer(preferences, data=request.data, partial=True)
        serializer.is_valid(raise_exception=True)
        with transaction.atomic():
            serializer.save()
        return Response(self.represent(request.user))

    def represent(self, user):
        preferences = UserPreferences.for_user(user)
        return {
            "id": user.pk,
            "username": user.get_username(),
            "name": user.get_full_name(),
            "email": user.email,
            "role": role_of(user),
            "is_superuser": user.is_superuser,
            "permissions": sorted(user.get_all_permissions()),
            "time_zone": preferences.time_zone,
            "reminder_lead_minutes": preferences.reminder_lead_minutes,
            "daily_digest": preferences.daily_digest,
            **{name: getter(user, self.request) for name, getter in _ME_FIELDS.items()},
        }


class EnvelopeErrorsMixin:
    """Errors in the JSON envelope, whatever the view renders when it succeeds.

    The schema (YAML) and its documentation pages (HTML) would otherwise render
    a 405 or a 429 in their own format: a bare HTML error page, or the error
    envelope as YAML.
    """

    def handle_exception(self, exc):
        renderer = EnvelopeJSONRenderer()
        self.request.accepted_renderer, self.request.accepted_media_type = renderer, renderer.media_type
        return super().handle_exception(exc)


class SchemaView(EnvelopeErrorsMixin, SpectacularAPIView):
    """``GET /api/schema``: the OpenAPI schema (YAML, or JSON with ``?format=json``)."""


class SwaggerView(EnvelopeErrorsMixin, SpectacularSwaggerView):
    """``GET /api/docs``: Swagger UI."""

    http_method_names = ["get", "head"]


class RedocView(EnvelopeErrorsMixin, SpectacularRedocView):
    """``GET /api/redoc``: Redoc."""

    http_method_names = ["get", "head"]
