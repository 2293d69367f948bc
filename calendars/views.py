from django.db import transaction
from django.http import Http404, HttpResponse, HttpResponseNotModified
from django.urls import reverse
from django.views.decorators.http import require_safe
from drf_spectacular.utils import extend_schema, inline_serializer
from rest_framework import serializers
from rest_framework.permissions import BasePermission
from rest_framework.response import Response
from rest_framework.views import APIView

from core.access import role_of
from core.api.permissions import HasRole
from core.api.responses import MessageResponse
from core.api.schema import message_envelope

from .feeds import build_calendar, etag_of, feed_path, feed_tasks
from .models import CalendarFeed, new_token

FEED_URL = inline_serializer("CalendarFeedURL", fields={"url": serializers.URLField()})


class AnyRole(BasePermission):
    """Signed in with a role, read-only included: the feed is the user's own, not CRM data they change."""

    message = HasRole.message

    def has_permission(self, request, view):
        return role_of(request.user) is not None


class CalendarFeedView(APIView):
    """``/api/auth/calendar-feed``: turn on (or reset) and turn off the user's private task calendar."""

    permission_classes = [AnyRole]

    @extend_schema(request=None, responses={200: FEED_URL}, tags=["auth"])
    def post(self, request):
        """A new secret URL for the feed; the previous one, if any, stops working."""
        with transaction.atomic():
            feed, _ = CalendarFeed.objects.update_or_create(user=request.user, defaults={"token": new_token()})
        return Response({"url": request.build_absolute_uri(feed_path(feed))})

    @extend_schema(
        request=None,
        responses={200: message_envelope({"type": "object", "nullable": True, "description": "Always null."})},
        tags=["auth"],
    )
    def delete(self, request):
        """Turn the feed off: its URL stops working."""
        CalendarFeed.objects.filter(user=request.user).delete()
        return MessageResponse("Calendar feed turned off.")


@require_safe
def feed(request, token):
    """The feed itself: the token in the URL is the only credential, and opens this feed only."""
    request.log_path = request.path.replace(token, "[token]")  # the access log keeps no credential
    found = CalendarFeed.objects.select_related("user").filter(token=token).first()
    if found is None or role_of(found.user) is None:  # unknown, reset, or the user deactivated
        raise Http404("No such calendar.")
    user = found.user
    body = build_calendar(
        user,
        feed_tasks(user),
        link_for=lambda task: request.build_absolute_uri(reverse("admin:tasks_task_change", args=[task.pk])),
    )
    etag = etag_of(body)
    if etag in request.headers.get("If-None-Match", ""):
        response = HttpResponseNotModified()
    else:
        response = HttpResponse(body, content_type="text/calendar; charset=utf-8")
        response["Content-Disposition"] = 'inline; filename="tasks.ics"'
    response["ETag"] = etag
    # A secret URL: no caches in between, no referrer leaking it, not for search engines.
    response["Cache-Control"] = "private, max-age=300"
    response["Referrer-Policy"] = "no-referrer"
    response["X-Robots-Tag"] = "noindex, nofollow"
    return response
