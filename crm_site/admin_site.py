"""The admin site: Django's, with the sales dashboard on its index page and the API's login limits.

Reps land on their day ("My day", the task admin's page) after signing in; managers and read-only
users on the dashboard, which links to it.
"""

from django.contrib import admin
from django.db import router, transaction
from django.urls import reverse
from django.utils.translation import gettext_lazy as _

from core import access
from core.admin.deadlocks import answering_deadlocks

# The technical screens (accounts, groups, API tokens): for superusers, never for a sales role,
# whatever permissions a user was granted one by one.
TECHNICAL_MODELS = frozenset({"auth.user", "auth.group", "knox.authtoken"})


class SuperusersOnly:
    """A model admin whose every page and write is a superuser's (mixed in by ``CRMAdminSite.register``)."""

    @staticmethod
    def _superuser(request):
        return request.user.is_active and request.user.is_superuser

    def has_module_permission(self, request):
        return self._superuser(request) and super().has_module_permission(request)

    def has_view_permission(self, request, obj=None):
        return self._superuser(request) and super().has_view_permission(request, obj)

    def has_add_permission(self, request):
        return self._superuser(request) and super().has_add_permission(request)

    def has_change_permission(self, request, obj=None):
        return self._superuser(request) and super().has_change_permission(request, obj)

    def has_delete_permission(self, request, obj=None):
        return self._superuser(request) and super().has_delete_permission(request, obj)


class WholeActions:
    """A model admin whose actions each run in one transaction (mixed in by ``CRMAdminSite.register``).

    Django runs an action in none: "Delete selected" writes its log entries, then deletes in a
    transaction of its own, so a delete the database aborts (a deadlock, answered 409 by the site)
    would leave the entries of deletions that never happened. ``CRMModelAdmin`` runs each action in
    the transaction of its changeset already.
    """

    def response_action(self, request, queryset):
        with transaction.atomic(using=router.db_for_write(self.model)):
            return super().response_action(request, queryset)


class CRMAdminSite(admin.AdminSite):
    site_header = _("CRM administration")
    site_title = _("CRM admin")
    index_title = _("Sales dashboard")

    def register(self, model_or_iterable, admin_class=None, **options):
        models = [model_or_iterable] if isinstance(model_or_iterable, type) else list(model_or_iterable)
        technical = [model for model in models if model._meta.label_lower in TECHNICAL_MODELS]
        # Imported here: the site is built before the apps' models are ready.
        from core.admin.lookups import CheckedLookups, CheckedSelection

        for model in models:
            cls = admin_class or admin.ModelAdmin
            if model in technical and not issubclass(cls, SuperusersOnly):
                cls = type(cls.__name__, (SuperusersOnly, cls), {"__module__": cls.__module__})
            if cls.response_action is admin.ModelAdmin.response_action:
                # Each action in one transaction (``WholeActions``), as ``CRMModelAdmin``'s are.
                cls = type(cls.__name__, (WholeActions, cls), {"__module__": cls.__module__})
            if cls.get_changelist is admin.ModelAdmin.get_changelist:
                # Every list checks the filters in its address (``core.admin.lookups.CheckedChangeList``).
                cls = type(cls.__name__, (CheckedLookups, cls), {"__module__": cls.__module__})
            # Every action refuses a selection that names no id (``core.admin.lookups.CheckedSelection``).
            cls = type(cls.__name__, (CheckedSelection, cls), {"__module__": cls.__module__})
            super().register(model, cls, **options)

    def autocomplete_view(self, request):
        # Imported here: the site is built before the apps' models are ready.
        from core.admin.lookups import CheckedAutocompleteJsonView

        return CheckedAutocompleteJsonView.as_view(admin_site=self)(request)

    def admin_view(self, view, cacheable=False):
        # Every page of the site: a change PostgreSQL aborted in a deadlock is answered as a conflict (409),
        # in the admin's look, not as a server error (core/admin/deadlocks.py).
        return super().admin_view(answering_deadlocks(view, self), cacheable)

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
