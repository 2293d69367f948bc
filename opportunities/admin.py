from decimal import Decimal, InvalidOperation

from django import forms
from django.contrib import admin, messages
from django.contrib.admin import helpers
from django.db import transaction
from django.db.models import Exists, OuterRef
from django.template.response import TemplateResponse
from django.utils.translation import gettext_lazy as _
from django.utils.translation import ngettext

from companies.admin import ReadOnlyInline, company_inline
from core.admin.base import CRMModelAdmin, CRMModelForm
from core.admin.display import cut_column
from core.admin.inlines import CRMTabularInline
from core.admin.owners import owner_filter
from core.admin.previews import changes_data
from core.admin.tags import TaggedAdminMixin
from core.money import format_money
from customers.admin import (
    QuickAction,
    QuickForm,
    customer_inline,
    customer_list_filter,
    customer_quick_action,
    date_input,
)
from customers.search import SEARCH as CUSTOMER_SEARCH

from .board import PipelineBoard
from .models import Opportunity
from .reports import value_totals
from .resources import OpportunityResource
from .search import SEARCH
from .serializers import OpportunitySerializer
from .services import check_lost_reason, move_to_stage, opportunity_set_stage

_INVALID = object()
_INLINES = []


def opportunity_inline(inline):
    """Show ``inline`` (an InlineModelAdmin of a model with an ``opportunity`` foreign key) on the opportunity page.

    The apps built on opportunities (tasks) add theirs from their ``admin.py``.
    """
    _INLINES.append(inline)
    return inline


def _parse_amount(text):
    """A typed amount as a Decimal; None when empty, ``_INVALID`` when not a finite number."""
    text = (text or "").strip().replace(",", "")
    if not text:
        return None
    try:
        amount = Decimal(text)
    except InvalidOperation:
        return _INVALID
    return amount if amount.is_finite() else _INVALID


class ValueRangeFilter(admin.SimpleListFilter):
    """Value between ``value_min`` and ``value_max`` (either may be left out), typed or picked."""

    title = _("value")
    parameter_name = "value_range"
    template = "admin/opportunities/value_range_filter.html"
    min_param = "value_min"
    max_param = "value_max"
    # Ready-made brackets: (label, min, max).
    BRACKETS = [
        (_("Under 1,000"), None, "999.99"),
        (_("1,000 to 10,000"), "1000", "10000"),
        (_("10,000 to 100,000"), "10000", "100000"),
        (_("Over 100,000"), "100000", None),
    ]

    def __init__(self, request, params, model, model_admin):
        # Claim both bounds as this filter's parameters, so the changelist does not
        # treat them as field lookups.
        self.bounds = {}
        for name in (self.min_param, self.max_param):
            if name in params:
                value = params.pop(name)
                self.bounds[name] = value[-1] if isinstance(value, list) else value
        super().__init__(request, params, model, model_admin)
        self.used_parameters.update(self.bounds)
        # The rest of the query string, carried by the filter's own little form.
        self.other_params = [
            (key, value)
            for key, values in request.GET.lists()
            if key not in (self.min_param, self.max_param, "p")
            for value in values
        ]

    def has_output(self):
        return True

    def expected_parameters(self):
        return [self.min_param, self.max_param]

    def value(self):
        return self.bounds.get(self.min_param, ""), self.bounds.get(self.max_param, "")

    def lookups(self, request, model_admin):
        return []

    def choices(self, changelist):
        current = self.value()
        yield {
            "selected": current == ("", ""),
            "query_string": changelist.get_query_string(remove=[self.min_param, self.max_param]),
            "display": _("All"),
        }
        for label, low, high in self.BRACKETS:
            new = {}
            remove = []
            for name, bound in ((self.min_param, low), (self.max_param, high)):
                if bound is None:
                    remove.append(name)
                else:
                    new[name] = bound
            yield {
                "selected": current == (low or "", high or ""),
                "query_string": changelist.get_query_string(new, remove),
                "display": label,
            }

    def queryset(self, request, queryset):
        low, high = (_parse_amount(bound) for bound in self.value())
        if low is _INVALID or high is _INVALID:
            messages.warning(request, _("The value range needs numbers, such as 1000 or 2500.50."))
            return queryset
        if low is not None:
            queryset = queryset.filter(value__gte=low)
        if high is not None:
            queryset = queryset.filter(value__lte=high)
        return queryset


class OpportunityForm(CRMModelForm):
    """An opportunity's form, saved under the stage rules of the API (``opportunity_set_stage``):
    a stage changed without touching the probability takes the new stage's default."""

    def save(self, commit=True):
        chosen = self.instance.probability if "probability" in self.changed_data else None
        opportunity_set_stage(opportunity=self.instance, stage=self.instance.stage, probability=chosen)
        return super().save(commit)


class StageActionForm(forms.Form):
    stage = forms.ChoiceField(label=_("stage"), choices=Opportunity.Stage.choices)
    lost_reason = forms.CharField(
        label=_("lost reason"),
        required=False,
        max_length=Opportunity._meta.get_field("lost_reason").max_length,
        help_text=_("Only with “Lost”: why these deals were lost (optional). Deals already lost keep their own."),
    )

    def clean(self):
        cleaned = super().clean()
        if "stage" in cleaned:
            # The rule of every writer, for a deal that had no reason: only a move to "Lost" takes one.
            check_lost_reason(opportunity=Opportunity(), stage=cleaned["stage"], lost_reason=cleaned.get("lost_reason"))
        return cleaned


@customer_inline
class OpportunityInline(CRMTabularInline):
    model = Opportunity
    form = OpportunityForm
    extra = 0
    fields = ["title", "value", "stage", "probability", "expected_close_date", "created_at"]
    readonly_fields = ["created_at"]
    ordering = ["-created_at", "-id"]
    show_change_link = True


class AddOpportunityForm(QuickForm):
    title = forms.CharField(label=_("title"), max_length=200)
    value = forms.DecimalField(label=_("value"), required=False, min_value=0, max_digits=14, decimal_places=2)
    stage = forms.ChoiceField(label=_("stage"), choices=Opportunity.Stage.choices, initial=Opportunity.Stage.LEAD)
    expected_close_date = forms.DateField(label=_("expected close date"), required=False, widget=date_input())


def add_opportunity(request, customer, cleaned):
    """The opportunities API's create: its serializer (stage rules, the customer's company), the writer as creator."""
    data = {"customer_id": customer.pk, "title": cleaned["title"], "stage": cleaned["stage"]}
    for name in ("value", "expected_close_date"):
        if cleaned.get(name) is not None:
            data[name] = cleaned[name]
    serializer = OpportunitySerializer(data=data, context={"request": request})
    serializer.is_valid(raise_exception=True)
    return serializer.save(created_by=request.user)


customer_quick_action(
    QuickAction(
        name="opportunity",
        label=_("Add an opportunity"),
        model=Opportunity,
        form=AddOpportunityForm,
        save=add_opportunity,
        done=_("Opportunity “%(record)s” added."),
    )
)


@company_inline
class CompanyOpportunityInline(ReadOnlyInline):
    model = Opportunity
    fk_name = "company"
    fields = ["title", "customer", "value_display", "stage", "expected_close_date"]
    ordering = ["-created_at", "-id"]

    @admin.display(description=_("value"))
    def value_display(self, obj):
        return format_money(obj.value)


@customer_list_filter
class HasOpenOpportunitiesFilter(admin.SimpleListFilter):
    title = _("open opportunities")
    parameter_name = "has_open"

    def lookups(self, request, model_admin):
        return [("yes", _("Has open opportunities")), ("no", _("No open opportunities"))]

    def queryset(self, request, queryset):
        has_open = Exists(Opportunity.objects.filter(customer=OuterRef("pk"), stage__in=Opportunity.OPEN_STAGES))
        if self.value() == "yes":
            return queryset.filter(has_open)
        if self.value() == "no":
            return queryset.filter(~has_open)
        return queryset


class LostReasonFilter(admin.SimpleListFilter):
    """The lost deals with a reason, or without one (open and won deals have none to give)."""

    title = _("lost reason")
    parameter_name = "lost_reason"

    def lookups(self, request, model_admin):
        return [("given", _("Lost, with a reason")), ("missing", _("Lost, without a reason"))]

    def queryset(self, request, queryset):
        lost = queryset.filter(stage=Opportunity.Stage.LOST)
        if self.value() == "given":
            return lost.exclude(lost_reason="")
        if self.value() == "missing":
            return lost.filter(lost_reason="")
        return queryset


@admin.register(Opportunity)
class OpportunityAdmin(TaggedAdminMixin, PipelineBoard, CRMModelAdmin):
    resource_classes = [OpportunityResource]
    change_list_template = "admin/opportunities/opportunity/change_list_totals.html"
    list_display = [
        "title_cut",
        "customer_cut",
        "value_display",
        "stage",
        "probability",
        "expected_close_date",
        "tag_chips",
    ]
    title_cut = cut_column("title", _("title"), "title", size="wide")
    customer_cut = cut_column("customer.name", _("customer"), "customer__name")
    list_editable = ["stage", "probability"]
    list_filter = [
        owner_filter("customer__owner"),
        "stage",
        LostReasonFilter,
        ValueRangeFilter,
        "expected_close_date",
        "created_at",
    ]
    # Each word in the title, the customer's name or company: through the indexes of the opportunities'
    # and the customers' own search (core/search.py).
    search_fields = ["title", "customer__name", "customer__company_name"]
    text_search = SEARCH
    text_search_related = [("customer", CUSTOMER_SEARCH, ["name", "company_name"])]
    list_select_related = ["customer"]
    autocomplete_fields = ["customer", "company"]
    # Locked before the deal when its page is posted, as their deletes lock them (``CRMModelAdmin.lock_parents``).
    parents_locked_first = ["company", "customer"]
    date_hierarchy = "created_at"
    readonly_fields = ["closed_at", "created_at", "updated_at"]
    form = OpportunityForm
    actions = ["set_stage"]

    @changes_data
    @admin.action(description=_("Set stage…"), permissions=["change"])
    def set_stage(self, request, queryset):
        """Move the selected opportunities to the stage chosen on the intermediate page (``move_to_stage``),
        those moved to "Lost" with the reason given there."""
        form = StageActionForm(request.POST if "confirm" in request.POST else None)
        if form.is_valid():
            stage = Opportunity.Stage(form.cleaned_data["stage"])
            with transaction.atomic():
                moved, reasoned = move_to_stage(
                    queryset.order_by("pk"), stage, lost_reason=form.cleaned_data["lost_reason"]
                )
            message = ngettext(
                "%(count)d opportunity moved to “%(stage)s”.",
                "%(count)d opportunities moved to “%(stage)s”.",
                len(moved),
            ) % {"count": len(moved), "stage": stage.label}
            if reasoned:
                message += " " + ngettext(
                    "%(count)d lost already without a reason was given this one.",
                    "%(count)d lost already without a reason were given this one.",
                    len(reasoned),
                ) % {"count": len(reasoned)}
            self.message_user(request, message, messages.SUCCESS)
            return None
        return TemplateResponse(
            request,
            "admin/core/tag_action.html",
            {
                **self.admin_site.each_context(request),
                "title": _("Set stage"),
                "opts": self.opts,
                "form": form,
                "records": list(queryset[:200]),
                "record_count": queryset.count(),
                "selected": list(queryset.values_list("pk", flat=True)),
                "action": "set_stage",
                "action_checkbox_name": helpers.ACTION_CHECKBOX_NAME,
                "media": self.media + form.media,
            },
        )

    def get_inlines(self, request, obj):
        return [*super().get_inlines(request, obj), *_INLINES]

    @admin.display(description=_("value"), ordering="value")
    def value_display(self, obj):
        return format_money(obj.value)

    def get_changelist_form(self, request, **kwargs):
        # The list's editable stage and probability are saved under the same rules.
        return super().get_changelist_form(request, form=OpportunityForm, **kwargs)

    def changelist_view(self, request, extra_context=None):
        response = super().changelist_view(request, extra_context)
        changelist = getattr(response, "context_data", {}).get("cl")
        if changelist is not None:
            # The figures of the whole filtered list, not only of the page shown; a list longer than the
            # count's cap (core.paging) is not summed: the note asks for a filter.
            paginator = getattr(changelist, "paginator", None)
            if paginator is not None and paginator.capped:
                response.context_data["totals_capped"] = paginator.count
            else:
                response.context_data["totals"] = value_totals(changelist.queryset)
        return response
