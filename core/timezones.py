"""The admin's dates and times in each user's own time zone (``core.UserPreferences.time_zone``)."""

from django.urls import reverse
from django.utils import timezone

from core.models import UserPreferences


class UserTimeZoneMiddleware:
    """Activate the signed-in user's time zone for the admin's pages.

    No query of its own: the session's user comes with their preferences (``core.auth``).

    The API keeps answering in UTC with offsets (``2026-03-01T09:00:00Z``): its clients convert.
    """

    def __init__(self, get_response):
        self.get_response = get_response
        self.prefix = None

    def __call__(self, request):
        if self.prefix is None:
            self.prefix = reverse("admin:index")
        user = getattr(request, "user", None)
        if request.path.startswith(self.prefix) and user is not None and user.is_authenticated:
            timezone.activate(UserPreferences.for_user(user).zone)
            try:
                return self.get_response(request)
            finally:
                timezone.deactivate()
        return self.get_response(request)
