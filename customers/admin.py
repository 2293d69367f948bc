from django.contrib import admin
from django.utils.translation import gettext_lazy as _

from interactions.models import Interaction
from opportunities.models import Opportunity

from .models import Customer


class InteractionInline(admin.TabularInline):
    model = Interaction
    extra = 0
    fields = ["interaction_type", "notes", "created_at"]
    readonly_fields = ["created_at"]
    ordering = ["-created_at", "-id"]
    show_change_link = True


class OpportunityInline(admin.TabularInline):
    model = Opportunity
    extra = 0
    fields = ["title", "value", "stage", "probability", "created_at"]
    readonly_fields = ["created_at"]
    ordering = ["-created_at", "-id"]
    show_change_link = True


@admin.register(Customer)
class CustomerAdmin(admin.ModelAdmin):
    list_display = ["name", "company", "email", "phone", "status", "created_at"]
    list_filter = ["status", "created_at"]
    search_fields = ["name", "company", "email", "phone"]
    date_hierarchy = "created_at"
    readonly_fields = ["created_at", "updated_at"]
    fieldsets = [
        (None, {"fields": ["name", "company", "status"]}),
        (_("Contact"), {"fields": ["email", "phone"]}),
        (_("Record"), {"fields": ["created_at", "updated_at"]}),
    ]
    inlines = [InteractionInline, OpportunityInline]
    list_per_page = 50
