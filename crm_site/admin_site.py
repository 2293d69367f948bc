"""The admin site: Django's, with the sales dashboard on its index page."""

from django.contrib import admin
from django.utils.translation import gettext_lazy as _


class CRMAdminSite(admin.AdminSite):
    site_header = _("CRM administration")
    site_title = _("CRM admin")
    index_title = _("Sales dashboard")

    def index(self, request, extra_context=None):
        # Imported here: the site is built before the apps' models are ready.
        from opportunities.dashboard import dashboard_context

        context = {**dashboard_context(request), **(extra_context or {})}
        return super().index(request, extra_context=context)
