from django.contrib import admin
from django.urls import include, path, re_path
from django.views.decorators.csrf import csrf_exempt

from calendars import views as calendars
from calendars.models import TOKEN_PATTERN
from core.api import exceptions, views
from crm_site import api_router

api_patterns = [
    # The resources first: nearly every API request is to one of them, and the resolver tries patterns in order.
    path("", include("crm_site.api_router")),
    re_path(r"^health/?$", views.health, name="health"),
    re_path(r"^auth/token/?$", views.TokenView.as_view(), name="auth-token"),
    re_path(r"^auth/logout/?$", views.LogoutView.as_view(), name="auth-logout"),
    re_path(r"^auth/me/?$", views.MeView.as_view(), name="auth-me"),
    re_path(r"^auth/calendar-feed/?$", calendars.CalendarFeedView.as_view(), name="auth-calendar-feed"),
    re_path(r"^schema/?$", views.SchemaView.as_view(), name="schema"),
    re_path(r"^docs/?$", views.SwaggerView.as_view(url_name="schema"), name="swagger-ui"),
    re_path(r"^redoc/?$", views.RedocView.as_view(url_name="schema"), name="redoc"),
]

urlpatterns = [
    path("", views.index, {"resources": api_router.INDEX}, name="index"),
    path("admin/", admin.site.urls),
    path("api/", include(api_patterns)),
    # A user's private task calendar: the token in the URL is its only credential (calendars/views.py).
    re_path(rf"^calendar/(?P<token>{TOKEN_PATTERN})\.ics$", calendars.feed, name="calendar-feed"),
    # Anything else under /api answers the enveloped JSON 404, with DEBUG on or off.
    re_path(r"^api(/.*)?$", csrf_exempt(exceptions.not_found)),
]

handler400 = "core.api.exceptions.bad_request"
handler403 = "core.api.exceptions.permission_denied"
handler404 = "core.api.exceptions.not_found"
handler500 = "core.api.exceptions.server_error"
