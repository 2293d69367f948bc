"""The admin site: Django's, with the sales dashboard on its index page and the API's login limits.

Reps land on their day ("My day", the task admin's page) after signing in; managers and read-only
users on the dashboard, which links to it.
"""

from django.contrib import admin
from django.urls import reverse
from django.utils.translation import gettext_lazy as _

from core import access


class CRMAdminSite(admin.AdminSite):
    site_header = _("CRM administration")
    site_title = _("CRM admin")
    index_title = _("Sales dashboard")

    def each_context(self, request):
        context = super().each_context(request)
        # Imported here: the site is built before the apps' models are ready.
        from notifications.admin import unread_count_context

        context.update(unread_count_context(request))
        return context

    def index(self, request, extra_context=None):
        # Imported here: the site is built before the apps' models are ready.
        from opportunities.dashboard import dashboard_context

        context = {**dashboard_context(request), **(extra_context or {})}
        return super().index(request, extra_context=context)

    @property
    def login_form(self):
        # Imported here: the form module imports the user model.
        from core.admin.login import RateLimitedAuthenticationForm

        return RateLimitedAuthenticationForm

    def login(self, request, extra_context=None):
        from core.admin.login import count_login_attempt

        # Counted before the password is checked, with the counters of the API's token login.
        refused_with = count_login_attempt(request)
        response = super().login(request, extra_context)
        if refused_with is not None:
            response.status_code = refused_with
            if hasattr(request, "login_retry_after"):
                response["Retry-After"] = str(request.login_retry_after)
        elif (
            request.method == "POST"
            and response.status_code == 302
            and request.POST.get("next", "") in ("", reverse("admin:index", current_app=self.name))
            and access.role_of(request.user) == access.REP
        ):
            # Signed in without asking for a page: a rep starts with their day.
            response["Location"] = reverse("admin:tasks_task_my_day", current_app=self.name)
        return response
