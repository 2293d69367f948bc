"""The pipeline board: one column per stage, a card per opportunity, moved by drag and drop or by a form.

``PipelineBoard`` adds two URLs to the opportunity admin: the board (``board``)
and the move it posts (``board_move``). The column figures (count, value,
weighted value) are those of ``reports.pipeline_summary``, one aggregate query;
each open column then reads its first cards (``CARDS_PER_COLUMN``, more on
demand) in one query, with the annotations other apps register in
``opportunities.parts`` (the next task, the stale mark). "Won" and "lost" are
folded unless asked for: their cards are not read.

A move goes through the stage rules of every writer (``services.opportunity_set_stage``)
and the model's save (stage-change log, history, event), on the row locked.
Each card carries its ``updated_at`` as shown: a card changed since is left
where it is and the user is told to look again (no lost update).

A move to "Lost" may give the deal's lost reason (``lost_reason``, optional), under the rule of every
writer (``services.check_lost_reason``): with another stage it is refused; a card already lost takes it.

Without JavaScript each card has a "move to" form (with the lost reason in a fold of it);
``static/opportunities/board.js`` adds drag and drop and posts the same form, asking for JSON, then
refreshes the board; a move to "Lost" first asks for the reason in a dialog.
"""

import calendar
import datetime
import re

from django import forms
from django.contrib import messages
from django.contrib.admin.widgets import AutocompleteSelect
from django.core.exceptions import PermissionDenied, ValidationError
from django.db import transaction
from django.db.models import F
from django.http import HttpResponseRedirect, JsonResponse, QueryDict
from django.template.response import TemplateResponse
from django.urls import path, reverse
from django.utils import timezone
from django.utils.translation import gettext_lazy as _
from django.views.decorators.http import require_POST, require_safe

from core import access
from core.admin.owners import owners
from core.dates import FIRST_YEAR, LAST_YEAR
from core.rowlocks import locking
from customers.models import Customer
from customers.search import search_customers as customer_search

from . import parts
from .models import Opportunity
from .reports import EVERYONE, pipeline_summary
from .services import check_lost_reason, lost_reason_text, opportunity_set_stage

CARDS_PER_COLUMN = 50
MAX_CARDS_PER_COLUMN = 1000
FOLDED_BY_DEFAULT = (Opportunity.Stage.CLOSED, Opportunity.Stage.LOST)
MONTH = re.compile(r"^(\d{4})-(\d{2})$")


def version_of(opportunity):
    """What a card carries to say which version of the opportunity it shows."""
    return opportunity.updated_at.isoformat()


class LostReasonField(forms.CharField):
    """The lost reason a move posts: optional, as long as the model takes, no NUL; one line, as kept."""

    def __init__(self):
        super().__init__(required=False, max_length=Opportunity._meta.get_field("lost_reason").max_length)

    def to_python(self, value):
        return lost_reason_text(super().to_python(value))


def show_field(stage):
    return f"show_{stage}"


class BoardFilters(forms.Form):
    """The board's query string: whose deals, which close month, which customer, what is unfolded and shown."""

    owner = forms.ChoiceField(label=_("Owner"), required=False)
    month = forms.CharField(
        label=_("Close month"),
        required=False,
        widget=forms.TextInput(attrs={"type": "month", "placeholder": "YYYY-MM", "size": 8}),
    )
    customer = forms.ModelChoiceField(label=_("Customer"), queryset=Customer.objects.none(), required=False)
    # The same filter without JavaScript (the autocomplete above needs it): typed text, sent with the form,
    # matched as the customer search matches (name, company, email or phone number; customers/search.py).
    customer_text = forms.CharField(label=_("or customer name contains"), required=False, max_length=200)
    unfold = forms.MultipleChoiceField(
        required=False,
        choices=[(stage.value, stage.label) for stage in FOLDED_BY_DEFAULT],
        widget=forms.MultipleHiddenInput,
    )

    def __init__(self, data, *, user, admin_site):
        super().__init__(data)
        self.user = user
        self.everyone = access.sees_everything(user)
        if self.everyone:
            choices = [("all", _("Everyone")), ("mine", _("Mine")), ("none", _("No owner"))]
            choices += [(str(pk), name) for pk, name in owners().values_list("pk", "username")]
        else:
            # A rep's book is their own deals: nothing else to choose.
            choices = [("mine", _("Mine"))]
        self.fields["owner"].choices = choices
        customer = self.fields["customer"]
        customer.widget = AutocompleteSelect(Opportunity._meta.get_field("customer"), admin_site)
        # Set after the widget: the queryset gives the widget its choices.
        customer.queryset = access.scope(Customer.objects.all(), user)
        for stage in Opportunity.Stage:
            self.fields[show_field(stage.value)] = forms.IntegerField(
                required=False, min_value=1, max_value=MAX_CARDS_PER_COLUMN, widget=forms.HiddenInput
            )

    def full_clean(self):
        super().full_clean()
        if "customer" in self._errors:
            # Not shown again: the autocomplete widget would look the bad value up.
            self.data = self.data.copy()
            self.data.pop("customer", None)

    def clean_owner(self):
        return self.cleaned_data["owner"] or ("all" if self.everyone else "mine")

    def clean_month(self):
        text = self.cleaned_data["month"].strip()
        if not text:
            return None
        match = MONTH.match(text)
        if not match or not 1 <= int(match[2]) <= 12 or not FIRST_YEAR <= int(match[1]) <= LAST_YEAR:
            raise forms.ValidationError(
                _("A month such as 2026-03, in the years %(first)d-%(last)d.")
                % {"first": FIRST_YEAR, "last": LAST_YEAR}
            )
        return datetime.date(int(match[1]), int(match[2]), 1)

    def filter(self, queryset):
        """``queryset`` narrowed by the valid filters (an invalid one is left out, and shown as an error)."""
        data = self.cleaned_data if self.is_bound else {}
        owner = data.get("owner") or ("all" if self.everyone else "mine")
        if owner == "mine":
            queryset = queryset.filter(customer__owner=self.user)
        elif owner == "none":
            queryset = queryset.filter(customer__owner__isnull=True)
        elif owner != "all":
            queryset = queryset.filter(customer__owner_id=int(owner))
        month = data.get("month")
        if month is not None:
            last = month.replace(day=calendar.monthrange(month.year, month.month)[1])
            queryset = queryset.filter(expected_close_date__gte=month, expected_close_date__lte=last)
        if data.get("customer") is not None:
            queryset = queryset.filter(customer=data["customer"])
        text = (data.get("customer_text") or "").strip()
        if text:
            queryset = queryset.filter(
                customer__in=customer_search(access.scope(Customer.objects.all(), self.user), text)
            )
        return queryset

    def book(self):
        """``{"owner": ..., "close_month": ...}`` of ``reports.pipeline_summary`` when the valid filters
        choose deals by owner and close month alone, the deals the user sees; else ``None``."""
        data = self.cleaned_data if self.is_bound else {}
        if data.get("customer") is not None or (data.get("customer_text") or "").strip():
            return None
        owner = data.get("owner") or ("all" if self.everyone else "mine")
        if not self.everyone and owner != "mine":
            return None
        if not self.everyone and (
            access.role_of(self.user) != access.REP or access.owner_path(Opportunity) != "customer__owner"
        ):
            # A rep's own deals are their customers' deals, whatever else their scope lets them see.
            return None
        if owner == "mine":
            owner = self.user.pk
        elif owner == "none":
            owner = None
        elif owner == "all":
            owner = EVERYONE
        else:
            owner = int(owner)
        return {"owner": owner, "close_month": data.get("month")}

    def unfolded(self):
        return set(self.cleaned_data.get("unfold") or ()) if self.is_bound else set()

    def shown(self, stage):
        return self.cleaned_data.get(show_field(stage)) or CARDS_PER_COLUMN


def _query(params, **changes):
    """``params`` (a QueryDict) with ``changes`` (a list to set several values, None to remove), as ``?...``."""
    query = params.copy()
    for key, value in changes.items():
        if value is None:
            query.pop(key, None)
        elif isinstance(value, list | tuple | set):
            query.setlist(key, sorted(value))
        else:
            query[key] = str(value)
    encoded = query.urlencode()
    return f"?{encoded}" if encoded else "?"


class PipelineBoard:
    """The board's two views, for ``OpportunityAdmin``."""

    def get_urls(self):
        prefix = f"{self.opts.app_label}_{self.opts.model_name}"
        return [
            path("board/", self.admin_site.admin_view(require_safe(self.board_view)), name=f"{prefix}_board"),
            path(
                "board/move/",
                self.admin_site.admin_view(require_POST(self.board_move_view)),
                name=f"{prefix}_board_move",
            ),
            *super().get_urls(),
        ]

    def board_url(self):
        return reverse(f"{self.admin_site.name}:{self.opts.app_label}_{self.opts.model_name}_board")

    def board_view(self, request, params=None, status=200):
        if not self.has_view_permission(request):
            raise PermissionDenied
        params = request.GET if params is None else params
        filters = BoardFilters(params, user=request.user, admin_site=self.admin_site)
        if not filters.is_valid() and status < 400:
            # Shown with the errors, the invalid filters left out; a refused move keeps its own status.
            status = 400
        deals = filters.filter(self.get_queryset(request))
        book = filters.book()
        # The figures the database keeps when the filters are by owner and month (opportunities/figures.py).
        summary = pipeline_summary(deals) if book is None else pipeline_summary(None, **book)
        unfolded = filters.unfolded()
        now = timezone.now()
        columns = []
        for figures in summary["stages"]:
            stage = figures["stage"]
            folded = stage in FOLDED_BY_DEFAULT and stage not in unfolded
            limit = filters.shown(stage)
            cards = []
            if not folded and figures["count"]:
                cards = list(
                    parts.annotate_cards(deals.filter(stage=stage), now)
                    .select_related("customer__owner")
                    .order_by(F("expected_close_date").asc(nulls_last=True), "id")[:limit]
                )
            foldable = stage in FOLDED_BY_DEFAULT
            columns.append(
                {
                    **figures,
                    "folded": folded,
                    "foldable": foldable,
                    "toggle_url": _query(params, unfold=unfolded ^ {stage}) if foldable else None,
                    "cards": [{"opportunity": card, "version": version_of(card)} for card in cards],
                    "more_url": (
                        _query(params, **{show_field(stage): min(limit + CARDS_PER_COLUMN, MAX_CARDS_PER_COLUMN)})
                        if not folded and figures["count"] > len(cards) and limit < MAX_CARDS_PER_COLUMN
                        else None
                    ),
                }
            )
        context = {
            **self.admin_site.each_context(request),
            "title": _("Pipeline board"),
            "opts": self.opts,
            "filters": filters,
            "media": self.media + filters.media,
            "columns": columns,
            "stages": Opportunity.Stage.choices,
            "can_move": self.has_change_permission(request),
            "board_url": self.board_url(),
            "move_url": reverse(f"{self.admin_site.name}:{self.opts.app_label}_{self.opts.model_name}_board_move"),
            "query": params.urlencode(),
            "reset_url": _query(QueryDict()),
        }
        return TemplateResponse(request, "admin/opportunities/opportunity/board.html", context, status=status)

    def board_move_view(self, request):
        wants_json = "application/json" in request.headers.get("Accept", "")
        params = QueryDict(request.POST.get("filters", ""))

        def answer(status, level, message):
            messages.add_message(request, level, message)
            if wants_json:
                return JsonResponse({"success": status < 400, "message": str(message)}, status=status)
            if status < 400:
                return HttpResponseRedirect(f"{self.board_url()}{_query(params)}", status=303)
            return self.board_view(request, params=params, status=status)

        def refused(error):
            text = " ".join(error.messages)
            return answer(400, messages.ERROR, _("Nothing was moved: %(reason)s") % {"reason": text})

        opportunity_id = request.POST.get("opportunity", "")
        stage = request.POST.get("stage", "")
        version = request.POST.get("version", "")
        if not opportunity_id.isdecimal() or stage not in Opportunity.Stage.values or not version:
            return answer(400, messages.ERROR, _("Nothing was moved: the request was incomplete."))
        target = Opportunity.Stage(stage)
        reason_field = LostReasonField()
        try:
            reason = reason_field.clean(request.POST.get("lost_reason", ""))
        except ValidationError as exc:
            return refused(exc)
        with transaction.atomic():
            # As its save takes it (``FOR NO KEY UPDATE``): the tasks being added to it meanwhile go on.
            opportunity = locking(self.get_queryset(request).filter(pk=int(opportunity_id))).first()
            if opportunity is None:
                return answer(404, messages.ERROR, _("That opportunity no longer exists, or is not in your book."))
            if not self.has_change_permission(request, opportunity):
                return answer(403, messages.ERROR, _("You may not move “%(title)s”.") % {"title": opportunity.title})
            if version != version_of(opportunity):
                return answer(
                    409,
                    messages.WARNING,
                    _(
                        "“%(title)s” was changed by someone else meanwhile (it is now at “%(stage)s”): it was not "
                        "moved. The board shows it as it is now."
                    )
                    % {"title": opportunity.title, "stage": opportunity.get_stage_display()},
                )
            try:
                # The rule of every writer: only a move to "Lost" takes a reason (a lost card's form sends back
                # the one it shows: with a move away, no new reason).
                check_lost_reason(opportunity=opportunity, stage=target, lost_reason=reason)
            except ValidationError as exc:
                return refused(exc)
            staying = opportunity.stage == target
            if staying and (not reason or reason == opportunity.lost_reason):
                return answer(
                    200,
                    messages.INFO,
                    _("“%(title)s” is already at “%(stage)s”.") % {"title": opportunity.title, "stage": target.label},
                )
            # The stage rules of every writer (default probability, closed_at, the lost reason); the save
            # writes the stage-change log (for a move), the history entry and the event.
            reason_before = opportunity.lost_reason
            opportunity_set_stage(opportunity=opportunity, stage=target, lost_reason=reason or None)
            opportunity.save()
            names = [] if staying else ["stage", "probability"]
            if opportunity.lost_reason != reason_before:
                names.append("lost_reason")
            changed = [str(Opportunity._meta.get_field(name).verbose_name) for name in names]
            self.log_change(request, opportunity, [{"changed": {"fields": changed}}])
        if staying:
            message = _("The lost reason of “%(title)s” is now “%(reason)s”.")
        elif opportunity.lost_reason:
            message = _("“%(title)s” moved to “%(stage)s”: “%(reason)s”.")
        else:
            message = _("“%(title)s” moved to “%(stage)s”.")
        return answer(
            200, messages.SUCCESS, message % {"title": opportunity.title, "stage": target.label, "reason": reason}
        )
