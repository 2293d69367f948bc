from django.contrib import admin, messages
from django.db import transaction
from django.utils.translation import gettext_lazy as _

from core import access
from core.admin.base import CRMModelAdmin
from core.admin.display import cut_column, unlinked_lines
from core.admin.inlines import CRMTabularInline
from core.admin.merges import MergeAdminMixin
from core.admin.phones import PhoneCheckMixin, PhoneValidityFilter
from core.admin.tags import TaggedAdminMixin
from core.history import batched_delete_history
from core.money import format_money

from .models import Company
from .resources import CompanyResource
from .search import SEARCH
from .services import MERGE_FIELDS, delete_company, merge_companies

# Filled by the apps whose records belong to a company (its people, its opportunities), from their admin.py.
_INLINES = []
_HEADER_ITEMS = []


def company_header_item(label):
    """Show ``function(request, company)`` (text or HTML; None leaves it out) above the company's form."""

    def register(function):
        _HEADER_ITEMS.append((label, function))
        return function

    return register


def company_inline(inline):
    """Show ``inline`` (an InlineModelAdmin of a model with a ``company`` foreign key) on the company page."""
    _INLINES.append(inline)
    return inline


class ReadOnlyInline(CRMTabularInline):
    """A compact list of a company's records, each a link to its own page: changed there, not here."""

    extra = 0
    can_delete = False
    show_change_link = True

    def get_readonly_fields(self, request, obj=None):
        # A user (the people's owner) named without a link where the users' pages are not this user's.
        unlinked = unlinked_lines(self, request, self.fields)
        return [unlinked.get(name, name) for name in self.fields]

    def get_fields(self, request, obj=None):
        return self.get_readonly_fields(request, obj)

    def has_add_permission(self, request, obj=None):
        return False

    def has_change_permission(self, request, obj=None):
        return False

    def get_queryset(self, request):
        return access.scope(super().get_queryset(request), request.user)


@admin.register(Company)
class CompanyAdmin(MergeAdminMixin, TaggedAdminMixin, PhoneCheckMixin, CRMModelAdmin):
    resource_classes = [CompanyResource]
    actions = ["merge_selected"]
    merge_service = staticmethod(merge_companies)
    merge_fields = MERGE_FIELDS
    list_display = [
        "name_cut",
        "domain_cut",
        "industry",
        "size",
        "phone",
        "phone_valid",
        "people_count",
        "open_pipeline_value",
        "last_interaction_at",
        "owner",
        "tag_chips",
    ]
    name_cut = cut_column("name", _("name"), "name", size="wide")
    domain_cut = cut_column("domain", _("domain"), "domain", size="narrow")
    list_filter = ["size", "industry", PhoneValidityFilter, "created_at"]
    list_select_related = ["owner"]
    search_fields = ["name", "domain"]
    text_search = SEARCH
    date_hierarchy = "created_at"
    owner_field = "owner"
    history_link_text = _("Every change to this company")
    readonly_fields = ["created_by", "created_at", "updated_at", "history_link"]
    fieldsets = [
        (None, {"fields": ["name", "domain", "industry", "size", "owner", "tags"]}),
        (_("Contact"), {"fields": ["website", "phone", "address"]}),
        (None, {"fields": ["notes"]}),
        (_("Record"), {"fields": ["external_id", "created_by", "created_at", "updated_at", "history_link"]}),
    ]

    change_form_template = "admin/companies/company/change_form.html"

    def get_inlines(self, request, obj):
        return [*super().get_inlines(request, obj), *_INLINES] if obj is not None else []

    def render_change_form(self, request, context, add=False, change=False, form_url="", obj=None):
        if obj is not None and obj.pk is not None and not add:
            items = [(label, function(request, obj)) for label, function in _HEADER_ITEMS]
            context["company_header"] = [(label, value) for label, value in items if value not in (None, "")]
        return super().render_change_form(request, context, add, change, form_url, obj)

    def get_queryset(self, request):
        return super().get_queryset(request).with_summary(seen_by=request.user)

    def delete_model(self, request, obj):
        self._report_unlinked(request, [obj])

    def delete_queryset(self, request, queryset):
        self._report_unlinked(request, list(queryset))

    def _report_unlinked(self, request, companies):
        # Their people and opportunities stay, without a company; the message says how many.
        people = opportunities = 0
        with transaction.atomic(), batched_delete_history():
            for company in companies:
                unlinked = delete_company(company)["unlinked"]
                people += unlinked.get("people", 0)
                opportunities += unlinked.get("opportunities", 0)
        if people or opportunities:
            self.message_user(
                request,
                _("%(people)d people and %(opportunities)d opportunities no longer have a company.")
                % {"people": people, "opportunities": opportunities},
                messages.INFO,
            )

    # Computed for the page's rows only, so not sortable (sorting would compute them for every company).
    @admin.display(description=_("people"))
    def people_count(self, obj):
        return obj.people_count

    @admin.display(description=_("open pipeline value"))
    def open_pipeline_value(self, obj):
        return format_money(obj.open_pipeline_value)

    @admin.display(description=_("last interaction"), empty_value="—")
    def last_interaction_at(self, obj):
        return obj.last_interaction_at
