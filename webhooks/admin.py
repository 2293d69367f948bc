from django.contrib import admin, messages
from django.utils.translation import gettext_lazy as _

from core import access
from core.admin.base import CRMModelAdmin
from core.rowlocks import lock_keys

from . import delivery as service
from .models import Delivery, Endpoint


class ManagersOnly:
    """Webhooks reach outside the CRM: only managers see or change them (the role decides, not the
    model permissions). No import or export: an endpoint carries its secret."""

    def get_queryset(self, request):
        # Endpoints belong to no one's book: a manager sees them all (``scope()`` leaves them as they are).
        if not access.is_manager(request.user):
            return self.model._default_manager.none()
        return super().get_queryset(request)

    def has_import_permission(self, request):
        return False

    def has_export_permission(self, request):
        return False

    def has_module_permission(self, request):
        return access.is_manager(request.user)

    def has_view_permission(self, request, obj=None):
        return access.is_manager(request.user)

    def has_add_permission(self, request, *args):
        return access.is_manager(request.user)

    def has_change_permission(self, request, obj=None):
        return access.is_manager(request.user)

    def has_delete_permission(self, request, obj=None):
        return access.is_manager(request.user)


@admin.register(Endpoint)
class EndpointAdmin(ManagersOnly, CRMModelAdmin):
    list_display = ["url", "description", "is_active", "failing_since", "disabled_reason", "created_at"]
    list_filter = ["is_active"]
    fields = ["url", "description", "event_types", "is_active", "disabled_reason", "failing_since", "created_at"]
    readonly_fields = ["disabled_reason", "failing_since", "created_at"]
    actions = ["send_test_event", "rotate_secret"]

    def get_form(self, request, obj=None, **kwargs):
        form = super().get_form(request, obj, **kwargs)

        def clean_url(self):
            return _checked_url(self.cleaned_data["url"])

        form.clean_url = clean_url
        return form

    def save_model(self, request, obj, form, change):
        # CRMModelAdmin sets created_by, and writes nothing for a form saved unchanged.
        super().save_model(request, obj, form, change)
        if not change:
            messages.warning(request, _("Signing secret (shown only now): %(secret)s") % {"secret": obj.secret})

    def changelist_view(self, request, extra_context=None):
        for endpoint in Endpoint.objects.filter(is_active=False).exclude(disabled_reason=""):
            messages.error(
                request,
                _("%(url)s was disabled: %(reason)s") % {"url": endpoint.url, "reason": endpoint.disabled_reason},
            )
        return super().changelist_view(request, extra_context)

    @admin.action(description=_("Send a test event"))
    def send_test_event(self, request, queryset):
        # Held as each test delivery's foreign key check holds its endpoint, before they are read: one being deleted
        # is waited for, then not among them (its delivery was an error at COMMIT).
        lock_keys(queryset)
        for endpoint in queryset:
            service.send_test_event(endpoint=endpoint, user=request.user)
        messages.success(request, _("Test events queued; see the deliveries."))

    @admin.action(description=_("Rotate the signing secret"))
    def rotate_secret(self, request, queryset):
        for endpoint in queryset:
            try:
                secret = service.rotate_secret(endpoint=endpoint)
            except Endpoint.DoesNotExist:
                continue  # deleted by someone else meanwhile: not among those rotated
            messages.warning(
                request,
                _("New secret of %(url)s (shown only now): %(secret)s") % {"url": endpoint.url, "secret": secret},
            )


def _checked_url(value):
    from django.core.exceptions import ValidationError

    from . import net

    try:
        net.check_url(value)
    except net.Refused as refused:
        raise ValidationError(str(refused)) from None
    return value


@admin.register(Delivery)
class DeliveryAdmin(ManagersOnly, CRMModelAdmin):
    list_display = [
        "id",
        "endpoint",
        "event_type",
        "status",
        "attempts",
        "response_status",
        "duration_ms",
        "next_attempt_at",
        "created_at",
    ]
    list_filter = ["status", "endpoint"]
    date_hierarchy = "created_at"
    # The log, not the lease a worker holds on a delivery while it sends it (``claimed_until``).
    readonly_fields = [field.name for field in Delivery._meta.fields if field.name != "claimed_until"]
    actions = ["replay"]

    def has_add_permission(self, request, *args):
        return False

    def has_change_permission(self, request, obj=None):
        return False

    def history_view(self, request, object_id, extra_context=None):
        # A delivery is itself a log entry, with no change history: the admin's own log of it.
        return admin.ModelAdmin.history_view(self, request, object_id, extra_context)

    @admin.action(description=_("Replay the selected deliveries"))
    def replay(self, request, queryset):
        count = service.replay(deliveries=queryset)
        messages.success(request, _("%(count)d deliveries queued again.") % {"count": count})
