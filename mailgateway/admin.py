from django import forms
from django.contrib import admin, messages
from django.core.exceptions import ValidationError
from django.utils.translation import gettext_lazy as _

from core import access
from core.admin.display import UnlinkedLinesMixin
from core.admin.roles import AnyRoleViews
from customers.models import Customer

from . import services
from .models import InboundEmail


class AssignForm(forms.ModelForm):
    customer = forms.ModelChoiceField(
        queryset=Customer.objects.none(),
        required=False,
        label=_("Log on customer"),
        help_text=_("Log this email as an interaction on this customer."),
    )

    class Meta:
        model = InboundEmail
        fields = []


@admin.register(InboundEmail)
class InboundEmailAdmin(AnyRoleViews, UnlinkedLinesMixin, admin.ModelAdmin):
    """Mail received by the gateway: what was logged, and what waits to be assigned to a customer."""

    form = AssignForm
    list_display = ["subject", "from_address", "status", "received_at", "user"]
    list_filter = ["status"]
    search_fields = ["subject", "from_address"]
    readonly_fields = ["status", "user", "from_address", "to_addresses", "subject", "sent_at", "received_at", "body"]
    fieldsets = [
        (None, {"fields": ["customer"]}),
        (_("Email"), {"fields": readonly_fields}),
    ]

    def get_queryset(self, request):
        return access.scope(super().get_queryset(request), request.user).select_related("user")

    def get_form(self, request, obj=None, change=False, **kwargs):
        form = super().get_form(request, obj, change=change, **kwargs)
        form.base_fields["customer"].queryset = access.scope(Customer.objects.order_by("name"), request.user)
        return form

    def get_fieldsets(self, request, obj=None):
        if self.has_change_permission(request, obj):
            return self.unlinked_fieldsets(request, obj, self.fieldsets)
        return self.unlinked_fieldsets(request, obj, [(None, {"fields": self.readonly_fields})])

    def has_change_permission(self, request, obj=None):
        return access.can_write(request.user)

    def has_delete_permission(self, request, obj=None):
        return access.can_write(request.user)

    def save_model(self, request, obj, form, change):
        customer = form.cleaned_data.get("customer")
        if customer is None:
            return
        try:
            services.assign(inbound=obj, customer=customer, user=request.user)
        except ValidationError as error:
            messages.error(request, " ".join(error.messages))
            return
        messages.success(request, _("Logged on %(customer)s.") % {"customer": customer})

    def log_change(self, request, obj, message):
        # The admin log records an assignment only (a save without one changed nothing).
        if message:
            super().log_change(request, obj, message)

    def construct_change_message(self, request, form, formsets, add=False):
        customer = form.cleaned_data.get("customer")
        return [{"changed": {"fields": ["customer"]}}] if customer else []
