"""The admin's login form under the same login limits as the API (``core.api.throttling``)."""

from django.contrib.admin.forms import AdminAuthenticationForm
from django.core.exceptions import ValidationError
from django.utils.translation import gettext as _
from django.utils.translation import ngettext

from core.api.throttling import LoginUnavailable, login_attempt_wait


def count_login_attempt(request):
    """Count a POST to the login form; the HTTP status to refuse it with (429, 503), or None to go on.

    A refused attempt is never checked against the password: the form shows why
    it was refused (``request.login_refusal``) and, for 429, when to come back
    (``request.login_retry_after``, seconds).
    """
    if request.method != "POST":
        return None
    try:
        wait = login_attempt_wait(request=request, username=request.POST.get("username"))
    except LoginUnavailable:
        request.login_refusal = _(
            "Logging in is unavailable for the moment: the login limits cannot be checked. Try again shortly."
        )
        return 503
    if wait is None:
        return None
    request.login_refusal = ngettext(
        "Too many login attempts. Try again in %(seconds)d second.",
        "Too many login attempts. Try again in %(seconds)d seconds.",
        wait,
    ) % {"seconds": wait}
    request.login_retry_after = wait
    return 429


class RateLimitedAuthenticationForm(AdminAuthenticationForm):
    """Django's admin login form, refusing an attempt that ``count_login_attempt`` refused."""

    def clean(self):
        refusal = getattr(self.request, "login_refusal", None)
        if refusal is not None:
            raise ValidationError(refusal, code="throttled")
        return super().clean()
