from datetime import timedelta

from django.contrib import admin
from django.db.models import Exists, OuterRef
from django.utils import timezone
from django.utils.translation import gettext_lazy as _

from core.admin.base import CRMModelAdmin, CRMModelForm
from customers.admin import customer_inline, customer_list_filter

from .models import Interaction
from .resources import InteractionResource

RECENT_DAYS = 30


@customer_inline
class InteractionInline(admin.TabularInline):
    model = Interaction
    form = CRMModelForm
    extra = 0
    fields = ["occurred_at", "interaction_type", "notes", "created_at"]
    readonly_fields = ["created_at"]
    ordering = ["-occurred_at", "-id"]
    show_change_link = True


@customer_list_filter
class InteractionRecencyFilter(admin.SimpleListFilter):
    title = _("last interaction")
    parameter_name = "contacted"

    def lookups(self, request, model_admin):
        return [
            ("recent", _("In the last %(days)d days") % {"days": RECENT_DAYS}),
            ("stale", _("No interaction in %(days)d days") % {"days": RECENT_DAYS}),
        ]

    def queryset(self, request, queryset):
        since = timezone.now() - timedelta(days=RECENT_DAYS)
        recent = Exists(Interaction.objects.filter(customer=OuterRef("pk"), occurred_at__gte=since))
        if self.value() == "recent":
            return queryset.filter(recent)
        if self.value() == "stale":
            return queryset.filter(~recent)
        return queryset


@admin.register(Interaction)
class InteractionAdmin(CRMModelAdmin):
    resource_classes = [InteractionResource]
    list_display = ["occurred_at", "customer", "interaction_type", "short_notes", "created_at"]
    list_filter = ["interaction_type", "occurred_at"]
    search_fields = ["notes", "customer__name", "customer__company_name"]
    list_select_related = ["customer"]
    autocomplete_fields = ["customer"]
    date_hierarchy = "occurred_at"
    ordering = ["-occurred_at", "-id"]
    readonly_fields = ["created_at"]

    @admin.display(description=_("notes"))
    def short_notes(self, obj):
        notes = obj.notes or ""
        return notes if len(notes) <= 80 else notes[:77] + "…"
