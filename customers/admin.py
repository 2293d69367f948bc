from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from django import forms
from django.contrib import admin, messages
from django.contrib.admin import helpers
from django.contrib.admin.utils import unquote
from django.contrib.auth import get_user_model
from django.core.exceptions import FieldDoesNotExist, PermissionDenied
from django.db import transaction
from django.http import Http404, HttpResponseRedirect
from django.template.response import TemplateResponse
from django.urls import path, reverse
from django.utils import timezone
from django.utils.translation import gettext_lazy as _
from django.utils.translation import ngettext
from rest_framework import serializers
from simple_history.utils import bulk_update_with_history

from companies.admin import ReadOnlyInline, company_inline
from companies.models import Company
from core import access
from core.admin.base import CRMModelAdmin
from core.admin.display import cut_column
from core.admin.merges import MergeAdminMixin
from core.admin.owners import owner_filter
from core.admin.phones import PhoneCheckMixin, PhoneValidityFilter
from core.admin.previews import changes_data
from core.admin.tags import TaggedAdminMixin
from core.money import format_money
from core.rowlocks import lock_keys

from .models import Customer
from .resources import CustomerResource
from .search import SEARCH
from .services import MERGE_FIELDS, merge_customers, reassign_customers
from .timeline import timeline_entries, timeline_queryset

# Filled by the apps whose records belong to a customer, from their admin.py.
_INLINES = []
_LIST_FILTERS = []
_HEADER_ITEMS = []
_LISTS = []
_QUICK_ACTIONS = {}

TIMELINE_PAGE = 20


@dataclass(frozen=True)
class CustomerList:
    """A compact, read-only list of a customer's records on its page (newest first, paged), each linking to
    its own page: ``rows(request, customer)`` is the queryset, ``columns`` (label, value of a row) its cells."""

    name: str  # the list's id, and the prefix of its page parameter (``<name>_page``)
    title: Any
    rows: Callable
    columns: list
    per_page: int = 10


@dataclass(frozen=True)
class QuickAction:
    """A small form on the customer's page that adds one record to the customer.

    ``form(data, customer=, user=)`` is a Django form; ``save(request, customer, cleaned_data)`` writes
    the record through the API's serializer (its validation, history and event) and returns it, or
    raises the serializer's ``ValidationError``, whose messages are put on the form. ``model`` is the
    record's model: the user needs its admin's add permission.
    """

    name: str
    label: Any
    model: type
    form: type
    save: Callable
    done: Any = field(default=_("Added."))  # the message; "%(record)s" names the record


class QuickForm(forms.Form):
    """The base of a quick action's form: it knows the customer and the user it is shown to."""

    def __init__(self, data=None, *, customer, user, prefix=None):
        self.customer, self.user = customer, user
        super().__init__(data, prefix=prefix)


def date_input():
    return forms.DateInput(attrs={"type": "date"}, format="%Y-%m-%d")


def customer_header_item(label):
    """Show ``function(request, customer)`` (text or HTML, None for "—") in the customer page's header."""

    def register(function):
        _HEADER_ITEMS.append((label, function))
        return function

    return register


def customer_list(customer_list_):
    """Show a :class:`CustomerList` on the customer's page."""
    _LISTS.append(customer_list_)
    return customer_list_


def customer_quick_action(action):
    """Offer a :class:`QuickAction` on the customer's page."""
    _QUICK_ACTIONS[action.name] = action
    return action


def _page_number(request, name):
    value = request.GET.get(name, "1")
    return int(value) if value.isdecimal() and 0 < int(value) < 100_000 else 1


def _page_of(rows, number, per_page):
    """One page of ``rows`` in one query (one row past the page tells whether there is a next)."""
    start = (number - 1) * per_page
    items = list(rows[start : start + per_page + 1])
    return items[:per_page], len(items) > per_page


def _labels(app_model, field_name):
    from django.apps import apps

    try:
        model = apps.get_model(app_model)
    except LookupError:
        return {}
    return dict(model._meta.get_field(field_name).flatchoices)


def _related_names(entries):
    """``{(field name, id): name}`` of the users and companies the page's changes name: one query per model."""
    wanted = {}
    for entry in entries:
        for change in entry.get("changes", []):
            try:
                field = Customer._meta.get_field(change["field"])
            except FieldDoesNotExist:
                continue
            if field.is_relation:
                ids = wanted.setdefault(field.name, set())
                ids.update(value for value in (change["old"], change["new"]) if value is not None)
    names = {}
    for name, ids in wanted.items():
        for record in Customer._meta.get_field(name).related_model._default_manager.filter(pk__in=ids):
            names[name, record.pk] = str(record)
    return names


def _shown(field, value, names):
    if value is None or value == "" or value == []:
        return "—"
    if field.is_relation:
        return names.get((field.name, value), f"#{value}")
    if field.choices:
        return str(dict(field.flatchoices).get(value, value))
    if isinstance(value, list):
        return ", ".join(str(item) for item in value)
    return str(value)


def change_text(changes, names):
    """``[{field, old, new}]`` as one line: "status: Lead → Active; owner: — → alice"."""
    pieces = []
    for change in changes:
        try:
            field = Customer._meta.get_field(change["field"])
        except FieldDoesNotExist:
            pieces.append(f"{change['field']}: {change['old']} → {change['new']}")
            continue
        old, new = _shown(field, change["old"], names), _shown(field, change["new"], names)
        pieces.append(_("%(field)s: %(old)s → %(new)s") % {"field": field.verbose_name, "old": old, "new": new})
    return str(_("; ")).join(pieces)


def timeline_item(entry, site_name="admin", customer_id=None, names=None):
    """One entry of ``/api/customers/{id}/timeline`` as the customer page shows it: when, what, a link."""
    kind = entry["type"]
    if kind == "interaction":
        record = entry["interaction"]
        types = _labels("interactions.Interaction", "interaction_type")
        title = types.get(record["interaction_type"], record["interaction_type"])
        return {
            "at": entry["at"],
            "kind": kind,
            "title": title,
            "text": record["notes"] or "",
            "url": reverse(f"{site_name}:interactions_interaction_change", args=[record["id"]]),
        }
    if kind.startswith("opportunity_"):
        record = entry["opportunity"]
        stages = _labels("opportunities.Opportunity", "stage")
        to_stage = stages.get(entry["to_stage"], entry["to_stage"])
        titles = {
            "opportunity_created": _("Opportunity added (%(stage)s)"),
            "opportunity_won": _("Opportunity won"),
            "opportunity_lost": _("Opportunity lost"),
            "opportunity_reopened": _("Opportunity reopened (%(stage)s)"),
            "opportunity_stage_changed": _("Opportunity moved to %(stage)s"),
        }
        return {
            "at": entry["at"],
            "kind": kind,
            "title": titles.get(kind, kind) % {"stage": to_stage},
            "text": record["title"],
            "url": reverse(f"{site_name}:opportunities_opportunity_change", args=[record["id"]]),
        }
    if kind.startswith("task_"):
        record = entry["task"]
        title = _("Task done") if kind == "task_completed" else _("Task added")
        text = record["title"]
        if record.get("outcome"):
            text = f"{text}: {record['outcome']}"
        return {
            "at": entry["at"],
            "kind": kind,
            "title": title,
            "text": text,
            "url": reverse(f"{site_name}:tasks_task_change", args=[record["id"]]),
        }
    if kind in ("customer_created", "customer_changed"):
        title = _("Customer added") if kind == "customer_created" else _("Customer changed")
        url = None
        if customer_id is not None:
            url = reverse(f"{site_name}:customers_customer_history", args=[customer_id])
        text = change_text(entry.get("changes", []), names or {})
        return {"at": entry["at"], "kind": kind, "title": title, "text": text, "url": url}
    return {"at": entry["at"], "kind": kind, "title": kind, "text": "", "url": None}


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
class CustomerAdmin(MergeAdminMixin, TaggedAdminMixin, PhoneCheckMixin, CRMModelAdmin):
    resource_classes = [CustomerResource]
    list_display = [
        "name_cut",
        "company_cut",
        "email_cut",
        "phone",
        "phone_valid",
        "status",
        "interaction_count",
        "open_pipeline_value",
        "last_interaction_at",
        "owner",
        "tag_chips",
    ]
    # Long texts cut to keep the list within 1366 px (core/admin/display.py).
    name_cut = cut_column("name", _("name"), "name", size="wide")
    # Sorted by the name kept beside the link (indexed), not through a join.
    company_cut = cut_column("company", _("company"), "company_name", size="narrow")
    email_cut = cut_column("email", _("email"), "email", size="narrow")
    list_filter = [owner_filter("owner"), "status", PhoneValidityFilter, "created_at"]
    list_select_related = ["owner", "company"]
    # Searched through the indexes of customers/search.py (a whole number finds its customer however written).
    search_fields = ["name", "company_name", "email", "phone"]
    text_search = SEARCH
    # Part of a number ("555-0199"), through its own trigram index (migration 0012).
    text_search_also = ["phone"]
    autocomplete_fields = ["company"]
    # Locked before the customer when its page is posted, as a company's delete or merge locks them.
    parents_locked_first = ["company"]
    date_hierarchy = "created_at"
    owner_field = "owner"
    history_link_text = _("Every change to this customer")
    readonly_fields = ["created_by", "created_at", "updated_at", "history_link"]
    fieldsets = [
        (None, {"fields": ["name", "company", "status", "owner", "tags"]}),
        (_("Contact"), {"fields": ["email", "phone"]}),
        (_("Record"), {"fields": ["external_id", "created_by", "created_at", "updated_at", "history_link"]}),
    ]
    actions = ["reassign_customers", "merge_selected"]
    merge_service = staticmethod(merge_customers)
    merge_fields = MERGE_FIELDS
    change_form_template = "admin/customers/customer/change_form.html"

    def get_inlines(self, request, obj):
        # On an existing customer's page, records shown as compact lists (interactions) are not inlines.
        inlines = [inline for inline in _INLINES if obj is None or not getattr(inline, "only_when_adding", False)]
        return [*super().get_inlines(request, obj), *inlines]

    def get_urls(self):
        prefix = f"{self.opts.app_label}_{self.opts.model_name}"
        return [
            path(
                "<path:object_id>/quick/<str:name>/",
                self.admin_site.admin_view(self.quick_action_view),
                name=f"{prefix}_quick_action",
            ),
            *super().get_urls(),
        ]

    def _quick_action_url(self, customer, name):
        return reverse(f"{self.admin_site.name}:customers_customer_quick_action", args=[customer.pk, name])

    def _may_quick(self, request, action):
        model_admin = self.admin_site._registry.get(action.model)
        return model_admin is not None and model_admin.has_add_permission(request)

    def render_change_form(self, request, context, add=False, change=False, form_url="", obj=None):
        if obj is not None and obj.pk is not None and not add:
            context.update(self.customer_page_context(request, obj))
        return super().render_change_form(request, context, add, change, form_url, obj)

    def customer_page_context(self, request, customer, quick_forms=None):
        """The header, the quick actions, the compact lists and a page of the timeline of ``customer``."""
        header = [
            (_("Owner"), customer.owner.get_username() if customer.owner_id else None),
            (_("Status"), customer.get_status_display()),
            (_("Company"), customer.company_name),
            (_("Open pipeline"), format_money(customer.open_pipeline_value)),
            (_("Last interaction"), customer.last_interaction_at),
        ]
        header += [(label, function(request, customer)) for label, function in _HEADER_ITEMS]
        lists = []
        for entry in _LISTS:
            number = _page_number(request, f"{entry.name}_page")
            rows, has_next = _page_of(entry.rows(request, customer), number, entry.per_page)
            lists.append(
                {
                    "name": entry.name,
                    "title": entry.title,
                    "labels": [label for label, _value in entry.columns],
                    "rows": [
                        {"cells": [value(row) for _label, value in entry.columns], "url": self._row_url(row)}
                        for row in rows
                    ],
                    "page": number,
                    "page_param": f"{entry.name}_page",
                    "has_next": has_next,
                }
            )
        number = _page_number(request, "timeline_page")
        rows, has_next = _page_of(timeline_queryset(customer.pk), number, TIMELINE_PAGE)
        entries = timeline_entries(rows)
        names = _related_names(entries)
        quick = []
        for action in _QUICK_ACTIONS.values():
            if self._may_quick(request, action):
                form = (quick_forms or {}).get(action.name) or action.form(
                    customer=customer, user=request.user, prefix=action.name
                )
                quick.append({"action": action, "form": form, "url": self._quick_action_url(customer, action.name)})
        return {
            "customer_page": True,
            "customer_header": header,
            "customer_lists": lists,
            "quick_actions": quick,
            "timeline": [timeline_item(entry, self.admin_site.name, customer.pk, names) for entry in entries],
            "timeline_page": number,
            "timeline_has_next": has_next,
        }

    def _row_url(self, row):
        opts = row._meta
        return reverse(f"{self.admin_site.name}:{opts.app_label}_{opts.model_name}_change", args=[row.pk])

    def quick_action_view(self, request, object_id, name):
        """A quick action's form: posted from the customer's page, or shown alone again with its errors."""
        action = _QUICK_ACTIONS.get(name)
        if action is None:
            raise Http404
        customer = self.get_object(request, unquote(object_id)) if str(object_id).isdecimal() else None
        if customer is None:
            return self._get_obj_does_not_exist_redirect(request, self.opts, object_id)
        if not self._may_quick(request, action):
            raise PermissionDenied
        page_url = reverse(f"{self.admin_site.name}:customers_customer_change", args=[customer.pk])
        if request.method != "POST":
            form = action.form(customer=customer, user=request.user, prefix=action.name)
        else:
            form = action.form(request.POST, customer=customer, user=request.user, prefix=action.name)
            if form.is_valid() and self._save_quick(request, customer, action, form):
                return HttpResponseRedirect(page_url)
        context = {
            **self.admin_site.each_context(request),
            "title": action.label,
            "subtitle": str(customer),
            "opts": self.opts,
            "original": customer,
            "form": form,
            "action": action,
            "action_url": self._quick_action_url(customer, action.name),
            "page_url": page_url,
        }
        return TemplateResponse(request, "admin/customers/customer/quick_action.html", context)

    def _save_quick(self, request, customer, action, form):
        """Write the quick action's record; False (with the errors on the form) when it is refused."""
        try:
            with transaction.atomic():
                # The record added points at the customer, and a deal at its company too: both are held first, the
                # company before the customer (as a company's delete and merge lock them), with the lock the new
                # record's foreign keys take at COMMIT (``FOR KEY SHARE``, ``rowlocks.lock_keys``), as the API's
                # create holds the parents it names. A delete of either under way is waited for (the company taken
                # only at COMMIT, a company's delete waiting for the customer would deadlock with it); a change of
                # either, or another record being added to them, is not.
                still = access.scope(Customer.objects.filter(pk=customer.pk), request.user)
                lock_keys(Company._base_manager.filter(pk__in=still.values("company")), still)
                # Still in the user's book: moved or deleted since the page was shown, nothing is written.
                if not still.exists():
                    form.add_error(None, _("This customer is no longer among the records you may see."))
                    return False
                record = action.save(request, customer, form.cleaned_data)
        except serializers.ValidationError as exc:
            detail = exc.detail if isinstance(exc.detail, dict) else {None: exc.detail}
            for key, problems in detail.items():
                name = key.removesuffix("_id") if key else None
                target = name if name in form.fields else None
                for problem in problems if isinstance(problems, list) else [problems]:
                    form.add_error(target, str(problem))
            return False
        self.message_user(request, str(action.done) % {"record": record}, messages.SUCCESS)
        return True

    def get_list_filter(self, request):
        return [*super().get_list_filter(request), *_LIST_FILTERS]

    def get_queryset(self, request):
        # The figures of the API's summary, and the count of open opportunities beside them.
        return super().get_queryset(request).with_summary("open_opportunity_count")

    # The summary columns are computed for the page's rows only: sorting by one would compute it for
    # every customer, so they are not sortable (the list filters narrow by them instead).
    @admin.display(description=_("interactions"))
    def interaction_count(self, obj):
        return obj.interaction_count

    @admin.display(description=_("open opportunities"))
    def open_opportunity_count(self, obj):
        return obj.open_opportunity_count

    @admin.display(description=_("open pipeline value"))
    def open_pipeline_value(self, obj):
        return format_money(obj.open_pipeline_value)

    @admin.display(description=_("last interaction"), empty_value="—")
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

    @changes_data
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
        customers = list(queryset.select_related("owner"))
        return TemplateResponse(
            request,
            "admin/customers/customer/reassign.html",
            {
                **self.admin_site.each_context(request),
                "title": _("Reassign customers"),
                "opts": self.opts,
                "form": form,
                "customers": customers,
                "selected": [customer.pk for customer in customers],
                "action": "reassign_customers",
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

        return changes_data(set_status)
