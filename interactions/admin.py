from datetime import timedelta

from django import forms
from django.contrib import admin
from django.db.models import Exists, OuterRef
from django.utils import timezone
from django.utils.translation import gettext_lazy as _

from core.admin.base import CRMModelAdmin
from core.admin.display import cut_column, cut_text
from core.admin.inlines import CRMTabularInline
from core.admin.owners import owner_filter
from customers.admin import (
    CustomerList,
    QuickAction,
    QuickForm,
    customer_inline,
    customer_list,
    customer_list_filter,
    customer_quick_action,
)
from customers.search import SEARCH as CUSTOMER_SEARCH

from .models import Interaction
from .resources import InteractionResource
from .search import SEARCH
from .serializers import NOTES_MAX_LENGTH, InteractionSerializer

RECENT_DAYS = 30


@customer_inline
class InteractionInline(CRMTabularInline):
    model = Interaction
    extra = 0
    fields = ["occurred_at", "interaction_type", "notes", "created_at"]
    readonly_fields = ["created_at"]
    ordering = ["-occurred_at", "-id"]
    show_change_link = True
    # A new customer's first interactions; an existing customer's page lists them (below) instead.
    only_when_adding = True


def _short(text, length=80):
    text = text or ""
    return text if len(text) <= length else text[: length - 1] + "…"


customer_list(
    CustomerList(
        name="interactions",
        title=_("Interactions"),
        rows=lambda request, customer: Interaction.objects.filter(customer=customer).order_by("-occurred_at", "-id"),
        columns=[
            (_("occurred at"), lambda row: row.occurred_at),
            (_("type"), lambda row: row.get_interaction_type_display()),
            (_("notes"), lambda row: _short(row.notes)),
        ],
    )
)


class LogInteractionForm(QuickForm):
    interaction_type = forms.ChoiceField(label=_("type"), choices=Interaction.Type.choices, initial="call")
    occurred_at = forms.DateTimeField(
        label=_("occurred at"),
        required=False,
        help_text=_("Empty: now."),
        widget=forms.DateTimeInput(attrs={"type": "datetime-local"}, format="%Y-%m-%dT%H:%M"),
    )
    notes = forms.CharField(
        label=_("notes"), required=False, max_length=NOTES_MAX_LENGTH, widget=forms.Textarea(attrs={"rows": 3})
    )


def log_interaction(request, customer, cleaned):
    """The interactions API's create: its serializer, with the writer as creator."""
    data = {"customer_id": customer.pk, "interaction_type": cleaned["interaction_type"], "notes": cleaned["notes"]}
    if cleaned.get("occurred_at") is not None:
        data["occurred_at"] = cleaned["occurred_at"]
    serializer = InteractionSerializer(data=data, context={"request": request})
    serializer.is_valid(raise_exception=True)
    return serializer.save(created_by=request.user)


customer_quick_action(
    QuickAction(
        name="interaction",
        label=_("Log a call, email or meeting"),
        model=Interaction,
        form=LogInteractionForm,
        save=log_interaction,
        done=_("Interaction logged."),
    )
)


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
    list_display = ["occurred_at", "customer_cut", "interaction_type", "short_notes"]
    customer_cut = cut_column("customer.name", _("customer"), "customer__name")
    # By the customer's owner, as the rep's book and the dashboard's "activities" count them.
    list_filter = [owner_filter("customer__owner"), "interaction_type", "occurred_at"]
    # Each word in the notes, the customer's name or company: through the indexes of the interactions'
    # and the customers' own search (core/search.py).
    search_fields = ["notes", "customer__name", "customer__company_name"]
    text_search = SEARCH
    text_search_related = [("customer", CUSTOMER_SEARCH, ["name", "company_name"])]
    list_select_related = ["customer"]
    autocomplete_fields = ["customer"]
    # Locked before the interaction when its page is posted, as its delete locks them (``CRMModelAdmin.lock_parents``).
    parents_locked_first = ["customer"]
    date_hierarchy = "occurred_at"
    ordering = ["-occurred_at", "-id"]
    readonly_fields = ["created_at"]

    @admin.display(description=_("notes"))
    def short_notes(self, obj):
        # Cut by the stylesheet, whole on hover (the first 1,000 characters of a long note).
        notes = obj.notes or ""
        return cut_text(notes if len(notes) <= 1000 else notes[:999] + "…", "wide")
