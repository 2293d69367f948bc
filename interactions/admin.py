from django.contrib import admin

from .models import Interaction


@admin.register(Interaction)
class InteractionAdmin(admin.ModelAdmin):
    list_display = ["customer", "interaction_type", "short_notes", "created_at"]
    list_filter = ["interaction_type", "created_at"]
    search_fields = ["notes", "customer__name", "customer__company"]
    list_select_related = ["customer"]
    autocomplete_fields = ["customer"]
    date_hierarchy = "created_at"
    readonly_fields = ["created_at"]

    @admin.display(description="notes")
    def short_notes(self, obj):
        notes = obj.notes or ""
        return notes if len(notes) <= 80 else notes[:77] + "…"
