import secrets

from django.conf import settings
from django.db import models
from django.utils.translation import gettext_lazy as _


def new_token():
    # 256 random bits, URL-safe: the feed's URL is its only credential.
    return secrets.token_urlsafe(32)


# The characters new_token() writes (URL-safe base64): a feed URL of any other is no feed's, not looked up.
TOKEN_PATTERN = r"[A-Za-z0-9_-]{1,64}"


class CalendarFeed(models.Model):
    """A user's private iCalendar feed of their open tasks, at an unguessable URL.

    Calendar apps cannot send a bearer header, so the token in the URL is the
    credential; it grants read access to this one feed and nothing else. It is
    kept in the clear (the user can see their URL again in ``/api/auth/me``);
    resetting it replaces it, and it stops working when the user is deactivated.
    """

    user = models.OneToOneField(
        settings.AUTH_USER_MODEL, verbose_name=_("user"), on_delete=models.CASCADE, related_name="calendar_feed"
    )
    token = models.CharField(_("token"), max_length=64, unique=True, default=new_token, editable=False)
    created_at = models.DateTimeField(_("created at"), auto_now_add=True)

    class Meta:
        verbose_name = _("calendar feed")
        verbose_name_plural = _("calendar feeds")

    def __str__(self):
        return f"{self.user_id}"
