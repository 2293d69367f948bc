from django.contrib import admin, messages
from django.urls import reverse
from django.utils.translation import gettext_lazy as _
from django.utils.translation import ngettext

from core import access
from core.admin.roles import AnyRoleViews

from .models import Notification


@admin.register(Notification)
class NotificationAdmin(AnyRoleViews, admin.ModelAdmin):
    """Each user's own notifications, newest first; they are created by the CRM, never by hand."""

    list_display = ["title", "kind", "created_at", "read_at"]
    list_filter = [("read_at", admin.EmptyFieldListFilter), "kind"]
    search_fields = ["title", "body"]
    fields = ["kind", "title", "body", "url", "created_at", "read_at"]
    readonly_fields = fields
    actions = ["mark_read"]

    def get_queryset(self, request):
        return super().get_queryset(request).for_user(request.user)

    def has_change_permission(self, request, obj=None):
        return False

    def has_delete_permission(self, request, obj=None):
        return False

    def get_actions(self, request):
        # Marking one's own notifications read is open to every role (change permission is not needed).
        actions = super().get_actions(request)
        if access.role_of(request.user) is None:
            return {}
        return actions

    @admin.action(description=_("Mark as read"))
    def mark_read(self, request, queryset):
        marked = queryset.for_user(request.user).mark_read()
        messages.success(
            request,
            ngettext("%(count)d notification marked read.", "%(count)d notifications marked read.", marked)
            % {"count": marked},
        )


def unread_count_context(request):
    """The admin header's unread count: counted (one query) only when a page shows it."""
    user = getattr(request, "user", None)
    if access.role_of(user) is None:
        return {}
    return {
        # A callable: the template calls it once where it shows the count.
        "unread_notifications": lambda: Notification.objects.for_user(user).unread().count(),
        "unread_notifications_url": reverse("admin:notifications_notification_changelist"),
    }
