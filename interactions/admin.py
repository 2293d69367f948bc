from django.contrib import admin
from django.utils.translation import gettext_lazy as _

from core.admin.base import CRMModelAdmin

from .models import Interaction
from .resources import InteractionResource


@admin.register(Interaction)
class InteractionAdmin(CRMModelAdmin):
    resource_classes = [InteractionResource]
    list_display = ["occurred_at", "customer", "interaction_type", "short_notes", "created_at"]
    list_filter = ["interaction_type", "occurred_at"]
    search_fields = ["notes", "customer__name", "customer__company"]
    list_select_related = ["customer"]
    autocomplete_fields = ["customer"]
    date_hierarchy = "occurred_at"
    ordering = ["-occurred_at", "-id"]
    readonly_fields = ["created_at"]

    @admin.display(description=_("notes"))
    def short_notes(self, obj):
        notes = obj.notes or ""
        return notes if len(notes) <= 80 else notes[:77] + "…"
