"""The review queue of possible duplicates, and "Possible duplicates" on the customer and company pages."""

from django.contrib import admin, messages
from django.core.exceptions import PermissionDenied
from django.db import transaction
from django.db.models import Q
from django.http import Http404, HttpResponseNotAllowed, HttpResponseRedirect
from django.urls import path, reverse
from django.utils.html import format_html, format_html_join
from django.utils.translation import gettext_lazy as _
from django.utils.translation import ngettext

from companies.admin import company_header_item
from core import access
from core.admin.display import UnlinkedLinesMixin
from core.admin.lookups import CheckedChangeList
from core.admin.roles import AnyRoleViews
from core.rowlocks import locking
from customers.admin import customer_header_item

from . import services
from .models import DuplicateCandidate, Kind, models_by_kind

REASONS = {
    "same_email": _("same email"),
    "same_phone": _("same phone"),
    "similar_name_same_company": _("similar name, same company"),
    "similar_name_same_email_local_part": _("similar name, same email name"),
    "same_domain": _("same domain"),
    "similar_name": _("similar name"),
}
# Pairs named on a record's page (the review queue has them all).
ON_RECORD_PAGE = 5


def reasons_text(reasons):
    return ", ".join(str(REASONS.get(reason, reason)) for reason in reasons)


class RecordFilter(admin.SimpleListFilter):
    """The pairs of one record (``?record=<id>``, with the kind): the link from a record's page."""

    title = _("record")
    parameter_name = "record"

    def lookups(self, request, model_admin):
        value = self.value()
        return [(value, f"#{value}")] if value and value.isdecimal() else []

    def queryset(self, request, queryset):
        value = self.value()
        if not value:
            return queryset
        if not value.isdecimal():
            return queryset.none()
        return queryset.filter(Q(a_id=int(value)) | Q(b_id=int(value)))


class PairChangeList(CheckedChangeList):
    """Loads the two records of every pair on the page: one query per kind, not two per row."""

    def get_results(self, request):
        super().get_results(request)
        wanted = {}
        for pair in self.result_list:
            wanted.setdefault(pair.kind, set()).update((pair.a_id, pair.b_id))
        records = {}
        for kind, ids in wanted.items():
            rows = models_by_kind()[kind]._default_manager.filter(pk__in=ids)
            records[kind] = {record.pk: record for record in rows}
        for pair in self.result_list:
            pair.record_a = records[pair.kind].get(pair.a_id)
            pair.record_b = records[pair.kind].get(pair.b_id)


@admin.register(DuplicateCandidate)
class DuplicateCandidateAdmin(AnyRoleViews, UnlinkedLinesMixin, admin.ModelAdmin):
    """Pairs of records that are probably one, best first: merge them, or say they are not a duplicate
    (remembered: later rebuilds do not offer the pair again). Each user sees the pairs whose two records
    they see; deciding needs a role that writes."""

    list_display = ["score_shown", "reasons_shown", "first_record", "second_record", "status", "decide"]
    list_filter = ["status", "kind", RecordFilter]
    list_per_page = 50
    actions = ["mark_not_duplicate"]
    fields = ["kind", "a_id", "b_id", "score", "reasons", "status", "decided_by", "decided_at", "found_at"]
    readonly_fields = fields

    def get_changelist(self, request, **kwargs):
        return PairChangeList

    def get_queryset(self, request):
        return super().get_queryset(request).visible_to(request.user)

    def changelist_view(self, request, extra_context=None):
        # The queue opens on the open pairs.
        if request.method == "GET" and "status__exact" not in request.GET and "status" not in request.GET:
            query = request.GET.copy()
            query["status__exact"] = DuplicateCandidate.Status.OPEN
            return HttpResponseRedirect(f"{request.path}?{query.urlencode()}")
        return super().changelist_view(request, extra_context)

    def has_change_permission(self, request, obj=None):
        return False

    def has_delete_permission(self, request, obj=None):
        return False

    def get_actions(self, request):
        return super().get_actions(request) if access.can_write(request.user) else {}

    def get_urls(self):
        return [
            path(
                "<int:pair_id>/not-duplicate/",
                self.admin_site.admin_view(self.not_duplicate_view),
                name="duplicates_duplicatecandidate_not_duplicate",
            ),
            *super().get_urls(),
        ]

    @admin.display(description=_("score"), ordering="score")
    def score_shown(self, pair):
        return f"{pair.score:.2f}"

    @admin.display(description=_("why"))
    def reasons_shown(self, pair):
        return reasons_text(pair.reasons)

    def _record(self, pair, record):
        if record is None:
            return "—"
        opts = record._meta
        url = reverse(f"{self.admin_site.name}:{opts.app_label}_{opts.model_name}_change", args=[record.pk])
        details = (
            [record.email, record.phone, record.company_name]
            if pair.kind == Kind.CUSTOMER
            else [record.domain, record.website, record.phone]
        )
        return format_html(
            '<a href="{}">{}</a> <small>#{}</small><br><small>{}</small>',
            url,
            record.name,
            record.pk,
            " · ".join(detail for detail in details if detail) or "—",
        )

    @admin.display(description=_("first record"))
    def first_record(self, pair):
        return self._record(pair, getattr(pair, "record_a", None))

    @admin.display(description=_("second record"))
    def second_record(self, pair):
        return self._record(pair, getattr(pair, "record_b", None))

    def get_list_display(self, request):
        # Who may not decide (read-only users) sees who decided, without buttons that would answer 403.
        if access.can_write(request.user):
            return self.list_display
        return [*self.list_display[:-1], "decided"]

    @admin.display(description=_("decided by"))
    def decided(self, pair):
        return pair.decided_by.get_username() if pair.decided_by_id else "—"

    @admin.display(description=_("decide"))
    def decide(self, pair):
        if pair.status != DuplicateCandidate.Status.OPEN:
            return self.decided(pair)
        merge = format_html(
            '<a class="button" href="{}">{}</a>',
            services.merge_url(pair.kind, [pair.a_id, pair.b_id], self.admin_site.name),
            _("Merge…"),
        )
        # A submit button of the list's own form (which carries the CSRF token), posted to the pair's URL.
        dismiss = format_html(
            '<button type="submit" class="button" formaction="{}" formmethod="post" name="_not_duplicate">{}</button>',
            reverse(f"{self.admin_site.name}:duplicates_duplicatecandidate_not_duplicate", args=[pair.pk]),
            _("Not a duplicate"),
        )
        return format_html("{} {}", merge, dismiss)

    def not_duplicate_view(self, request, pair_id):
        if request.method != "POST":
            return HttpResponseNotAllowed(["POST"])
        if not access.can_write(request.user):
            raise PermissionDenied
        with transaction.atomic():
            pair = locking(self.get_queryset(request).filter(pk=pair_id)).first()
            if pair is None:
                raise Http404
            if pair.status == DuplicateCandidate.Status.OPEN:
                services.dismiss(pair, user=request.user)
        messages.success(request, _("Marked as not a duplicate; it will not be offered again."))
        changelist = reverse(f"{self.admin_site.name}:duplicates_duplicatecandidate_changelist")
        back = request.META.get("HTTP_REFERER") or ""
        return HttpResponseRedirect(back if back.startswith(request.build_absolute_uri(changelist)) else changelist)

    @admin.action(description=_("Not a duplicate"))
    def mark_not_duplicate(self, request, queryset):
        if not access.can_write(request.user):
            raise PermissionDenied
        count = 0
        with transaction.atomic():
            # Locked as read: a pair merged or removed meanwhile is left as it is now.
            for pair in locking(queryset.visible_to(request.user).filter(status=DuplicateCandidate.Status.OPEN)):
                services.dismiss(pair, user=request.user)
                count += 1
        messages.success(
            request,
            ngettext("%(count)d pair marked as not a duplicate.", "%(count)d pairs marked as not a duplicate.", count)
            % {"count": count},
        )


def _possible_duplicates(request, kind, record):
    """Links to the records ``record`` probably duplicates (best first), and to its pairs in the queue."""
    pairs = list(services.open_candidates_of(kind, record.pk, request.user)[: ON_RECORD_PAGE + 1])
    if not pairs:
        return None
    model = models_by_kind()[kind]
    others = {pair.other(record.pk): pair for pair in pairs[:ON_RECORD_PAGE]}
    names = dict(model._default_manager.filter(pk__in=others).values_list("pk", "name"))
    opts = model._meta
    links = format_html_join(
        ", ",
        '<a href="{}" title="{}">{}</a> ({})',
        (
            (
                reverse(f"admin:{opts.app_label}_{opts.model_name}_change", args=[pk]),
                reasons_text(pair.reasons),
                names.get(pk, pk),
                f"{pair.score:.2f}",
            )
            for pk, pair in others.items()
        ),
    )
    queue = reverse("admin:duplicates_duplicatecandidate_changelist")
    more = "…" if len(pairs) > ON_RECORD_PAGE else ""
    return format_html(
        '{}{} · <a href="{}?kind__exact={}&amp;status__exact=open&amp;record={}">{}</a>',
        links,
        more,
        queue,
        kind,
        record.pk,
        _("Review"),
    )


@customer_header_item(_("Possible duplicates"))
def customer_duplicates(request, customer):
    return _possible_duplicates(request, Kind.CUSTOMER, customer)


@company_header_item(_("Possible duplicates"))
def company_duplicates(request, company):
    return _possible_duplicates(request, Kind.COMPANY, company)
