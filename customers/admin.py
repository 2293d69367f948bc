from django import forms
from django.contrib import admin, messages
from django.contrib.admin import helpers
from django.contrib.auth import get_user_model
from django.template.response import TemplateResponse
from django.utils import timezone
from django.utils.translation import gettext_lazy as _
from django.utils.translation import ngettext
from simple_history.utils import bulk_update_with_history

from companies.admin import ReadOnlyInline, company_inline
from core import access
from core.admin.base import CRMModelAdmin
from core.admin.phones import PhoneCheckMixin, PhoneValidityFilter
from core.admin.tags import TaggedAdminMixin

from .models import Customer
from .resources import CustomerResource
from .services import reassign_customers

# Filled by the apps whose records belong to a customer, from their admin.py.
_INLINES = []
_LIST_FILTERS = []


def customer_inline(inline):
    """Show ``inline`` (an InlineModelAdmin of a model with a ``customer`` foreign key) on the customer page."""
    _INLINES.append(inline)
    return inline


def customer_list_filter(list_filter):
    """Offer ``list_filter`` (a SimpleListFilter over customers) beside the customer list."""
    _LIST_FILTERS.append(list_filter)
    return list_filter


class ReassignForm(forms.Form):
    owner = forms.ModelChoiceField(label=_("New owner"), queryset=get_user_model().objects.filter(is_active=True))


@company_inline
class PeopleInline(ReadOnlyInline):
    model = Customer
    fk_name = "company"
    fields = ["name", "email", "phone", "status", "owner"]
    verbose_name = _("person")
    verbose_name_plural = _("people")
    ordering = ["name", "id"]


@admin.register(Customer)
class CustomerAdmin(TaggedAdminMixin, PhoneCheckMixin, CRMModelAdmin):
    resource_classes = [CustomerResource]
    list_display = [
        "name",
        "company",
        "email",
        "phone",
        "phone_valid",
        "status",
        "interaction_count",
        "open_opportunity_count",
        "open_pipeline_value",
        "last_interaction_at",
        "owner",
        "tag_chips",
    ]
    list_filter = ["status", PhoneValidityFilter, "created_at"]
    list_select_related = ["owner", "company"]
    search_fields = ["name", "company_name", "email", "phone"]
    autocomplete_fields = ["company"]
    date_hierarchy = "created_at"
    owner_field = "owner"
    history_link_text = _("Every change to this customer")
    readonly_fields = ["created_by", "created_at", "updated_at", "history_link"]
    fieldsets = [
        (None, {"fields": ["name", "company", "status", "owner", "tags"]}),
        (_("Contact"), {"fields": ["email", "phone"]}),
        (_("Record"), {"fields": ["external_id", "created_by", "created_at", "updated_at", "history_link"]}),
    ]
    actions = ["reassign_customers"]

    def get_inlines(self, request, obj):
        return [*super().get_inlines(request, obj), *_INLINES]

    def get_list_filter(self, request):
        return [*super().get_list_filter(request), *_LIST_FILTERS]

    def get_queryset(self, request):
        # The figures of the API's summary, and the count of open opportunities beside them.
        return super().get_queryset(request).with_summary("open_opportunity_count")

    @admin.display(description=_("interactions"), ordering="interaction_count")
    def interaction_count(self, obj):
        return obj.interaction_count

    @admin.display(description=_("open opportunities"), ordering="open_opportunity_count")
    def open_opportunity_count(self, obj):
        return obj.open_opportunity_count

    @admin.display(description=_("open pipeline value"), ordering="open_pipeline_value")
    def open_pipeline_value(self, obj):
        return obj.open_pipeline_value

    @admin.display(description=_("last interaction"), ordering="last_interaction_at", empty_value="—")
    def last_interaction_at(self, obj):
        return obj.last_interaction_at

    def save_formset(self, request, form, formset, change):
        for inline_form in formset.forms:
            if inline_form.instance.pk is None:
                inline_form.instance.created_by = request.user
        super().save_formset(request, form, formset, change)

    def get_actions(self, request):
        actions = super().get_actions(request)
        if self.has_change_permission(request):
            # Built per request, so that the descriptions are in the user's language.
            for status in Customer.Status:
                name = f"set_status_{status.value}"
                description = _("Set status of selected customers to “%(status)s”") % {"status": status.label}
                actions[name] = (self._status_action(status), name, description)
        if not access.is_manager(request.user):
            actions.pop("reassign_customers", None)
        return actions

    @admin.action(description=_("Reassign to…"))
    def reassign_customers(self, request, queryset):
        """Managers: give the selected customers (and their open opportunities) to another owner."""
        form = ReassignForm(request.POST if "confirm" in request.POST else None)
        if form.is_valid():
            counts = reassign_customers(queryset, form.cleaned_data["owner"])
            self.message_user(
                request,
                _("%(customers)d customer(s) given to %(owner)s, with %(opportunities)d open opportunities.")
                % {
                    "customers": counts["customers"],
                    "owner": form.cleaned_data["owner"],
                    "opportunities": counts["open_opportunities"],
                },
                messages.SUCCESS,
            )
            return None
        return TemplateResponse(
            request,
            "admin/customers/customer/reassign.html",
            {
                **self.admin_site.each_context(request),
                "title": _("Reassign customers"),
                "opts": self.opts,
                "form": form,
                "customers": list(queryset.select_related("owner")),
                "action_checkbox_name": helpers.ACTION_CHECKBOX_NAME,
            },
        )

    @staticmethod
    def _status_action(status):
        def set_status(modeladmin, request, queryset):
            # Saved in bulk with history, so that each change is recorded like any other.
            now = timezone.now()
            customers = [c for c in queryset if c.status != status]
            for customer in customers:
                customer.status = status
                customer.updated_at = now
            bulk_update_with_history(customers, Customer, ["status", "updated_at"], default_user=request.user)
            modeladmin.message_user(
                request,
                ngettext(
                    "%(count)d customer set to “%(status)s”.",
                    "%(count)d customers set to “%(status)s”.",
                    len(customers),
                )
                % {"count": len(customers), "status": status.label},
                messages.SUCCESS,
            )

        return set_status
