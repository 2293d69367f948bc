from django.contrib import admin

from .models import Opportunity


@admin.register(Opportunity)
class OpportunityAdmin(admin.ModelAdmin):
    list_display = ["title", "customer", "value", "stage", "probability", "created_at"]
    list_editable = ["stage", "probability"]
    list_filter = ["stage", "created_at"]
    search_fields = ["title", "customer__name", "customer__company"]
    list_select_related = ["customer"]
    autocomplete_fields = ["customer"]
    date_hierarchy = "created_at"
    readonly_fields = ["created_at", "updated_at"]
