"""The filters typed into a list's address, checked before the list reads a row, and the date
hierarchy's steps turned into bounds that cannot fail."""

import datetime

from django.conf import settings
from django.contrib import messages
from django.contrib.admin import helpers
from django.contrib.admin.options import IncorrectLookupParameters
from django.contrib.admin.views.autocomplete import AutocompleteJsonView
from django.contrib.admin.views.main import ChangeList
from django.core.exceptions import FieldDoesNotExist, ValidationError
from django.db import models
from django.utils import timezone
from django.utils.translation import gettext

# The widest whole number a list's filter may compare a column with (64-bit integers).
LOOKUP_INTEGER_RANGE = range(-(2**63), 2**63)


def comparable(field, value):
    """Whether the text ``value`` (posted, or in the address) can be compared with ``field`` by the database:
    no NUL (PostgreSQL cannot compare text with one), of the field's type, a whole number within 64 bits
    for an integer column (SQLite cannot bind a wider one)."""
    text = str(value)
    if "\x00" in text:
        return False
    try:
        python = field.to_python(text)
    except ValidationError:
        return False
    return not isinstance(field, models.IntegerField) or python in LOOKUP_INTEGER_RANGE


def _lookup_field(model, key):
    """The field that the filter ``key`` (``customer__owner__in``, ``tag_set``) compares with, or None."""
    field = None
    for part in key.split("__"):
        if model is None:
            break
        try:
            field = model._meta.get_field(part)
        except FieldDoesNotExist:
            break
        model = field.related_model
    if field is not None and field.is_relation:
        field = field.target_field if hasattr(field, "target_field") else field.related_model._meta.pk
    return field


def check_lookup_params(model, params):
    """Refuse a list's filter (``?<lookup>=<value>`` in the address) that no row can match and the
    database would fail on, as an ``IncorrectLookupParameters`` (the list answers ``?e=1``): a NUL
    character (PostgreSQL cannot compare text with one), a whole number beyond 64 bits compared with an
    integer column or a record's id (SQLite cannot bind it).
    """
    for key, values in params.items():
        field = None
        for value in values if isinstance(values, list) else [values]:
            if "\x00" in key or "\x00" in value:
                raise IncorrectLookupParameters(f"a NUL character in the filter {key!r}")
            field = field or _lookup_field(model, key)
            if not isinstance(field, models.IntegerField):
                continue
            for number in value.split(","):
                try:
                    out_of_range = int(number) not in LOOKUP_INTEGER_RANGE
                except ValueError:
                    continue
                if out_of_range:
                    raise IncorrectLookupParameters(f"a number beyond 64 bits in the filter {key!r}")


def _storable(moment):
    """``moment`` (naive) as the changelist compares it; None when the database could not hold it in UTC."""
    if not settings.USE_TZ:
        return moment
    moment = timezone.make_aware(moment)
    try:
        moment.astimezone(datetime.UTC)
    except OverflowError:
        return None
    return moment


def hierarchy_bounds(year, month=None, day=None):
    """``[since, until)`` of a date-hierarchy step (``?<field>__year=&__month=&__day=``).

    A step that is no date is an ``IncorrectLookupParameters`` (the changelist
    answers it with ``?e=1``, as for any bad filter). Either bound is None where it
    would lie beyond the dates that can be stored, such as the end of year 9999:
    nothing lies beyond it, so the step needs no bound on that side.
    """
    try:
        since = datetime.datetime(int(year), 1 if month is None else int(month), 1 if day is None else int(day))
    except (TypeError, ValueError, OverflowError) as exc:
        raise IncorrectLookupParameters(exc) from exc
    try:
        if day is not None:
            until = since + datetime.timedelta(days=1)
        elif month is not None:
            until = (since + datetime.timedelta(days=32)).replace(day=1)
        else:
            until = since.replace(year=since.year + 1)
    except (ValueError, OverflowError):
        until = None
    return _storable(since), None if until is None else _storable(until)


class HierarchyDates:
    """A changelist's queryset, for the date hierarchy once the page's rows are read.

    Django's drill-down lists the years (months, days) that have rows with a
    ``DISTINCT`` over every row of the list; here it offers each period between
    the first and the last date of the step shown, which two index lookups find.
    The rest is the queryset's.
    """

    def __init__(self, queryset, bounds):
        self._queryset, self._bounds = queryset, bounds

    def __getattr__(self, name):
        return getattr(self._queryset, name)

    def aggregate(self, *args, **kwargs):
        return self._bounds.aggregate(*args, **kwargs)

    def datetimes(self, field_name, kind, *args, **kwargs):
        return self.dates(field_name, kind)

    def dates(self, field_name, kind, *args, **kwargs):
        span = self._bounds.aggregate(first=models.Min(field_name), last=models.Max(field_name))
        first, last = span["first"], span["last"]
        if first is None or last is None:
            return []
        if isinstance(first, datetime.datetime):
            first, last = (timezone.localtime(v).date() if timezone.is_aware(v) else v.date() for v in (first, last))
        return list(_periods(first, last, kind))


def _periods(first, last, kind):
    """The first day of each year, month or day (``kind``) from ``first`` to ``last``."""
    if kind == "year":
        yield from (datetime.date(year, 1, 1) for year in range(first.year, last.year + 1))
    elif kind == "month":
        for index in range(first.year * 12 + first.month - 1, last.year * 12 + last.month):
            yield datetime.date(index // 12, index % 12 + 1, 1)
    else:
        yield from (first + datetime.timedelta(days=n) for n in range((last - first).days + 1))


class CheckedChangeList(ChangeList):
    """Django's changelist, whose filters in the address are checked first (``check_lookup_params``), with
    date-hierarchy bounds that stay within the dates Python can hold.

    Every list of the site is one (``CRMAdminSite.register``). Django computes the end of a year, month or
    day by adding to its start, which fails with a server error on the last ones (a record dated
    9999-12-31), and on a year no date can hold (``?created_at__year=99999999999999999999``). Its
    drill-down reads two index entries, not every row (``HierarchyDates``).
    """

    def get_filters_params(self, params=None):
        lookup_params = super().get_filters_params(params)
        check_lookup_params(self.model, lookup_params)
        return lookup_params

    def get_results(self, request):
        super().get_results(request)
        if self.date_hierarchy:
            bounds = self.root_queryset.order_by()
            since, until = getattr(self, "_hierarchy_step", (None, None))
            if since is not None:
                bounds = bounds.filter(**{f"{self.date_hierarchy}__gte": since})
            if until is not None:
                bounds = bounds.filter(**{f"{self.date_hierarchy}__lt": until})
            self.queryset = HierarchyDates(self.queryset, bounds)

    def get_filters(self, request):
        field = self.date_hierarchy
        if not field:
            return super().get_filters(request)
        # Django's own handling of the hierarchy is skipped; its parameters are turned into bounds here.
        self.date_hierarchy = None
        try:
            filter_specs, has_filters, lookup_params, may_have_duplicates, has_active_filters = super().get_filters(
                request
            )
        finally:
            self.date_hierarchy = field
        year = lookup_params.pop(f"{field}__year", None)
        if year is not None:
            month = lookup_params.pop(f"{field}__month", None)
            day = lookup_params.pop(f"{field}__day", None)
            since, until = hierarchy_bounds(year[-1], month and month[-1], day and day[-1])
            self._hierarchy_step = (since, until)
            if since is not None:
                lookup_params[f"{field}__gte"] = [since]
            if until is not None:
                lookup_params[f"{field}__lt"] = [until]
        return filter_specs, has_filters, lookup_params, may_have_duplicates, has_active_filters


class CheckedSelection:
    """A model admin whose actions refuse a selection the database cannot compare with its ids (mixed in
    by ``CRMAdminSite.register``, ahead of every admin class of the site).

    Django filters the list by the posted ``_selected_action`` values as they come: a tampered one
    (``abc``, ``1.5``, a NUL, beyond 64 bits) fails with a server error. It is answered as Django answers
    no selection: nothing is changed, and the list says so.
    """

    def response_action(self, request, queryset):
        selected = request.POST.getlist(helpers.ACTION_CHECKBOX_NAME)
        if all(comparable(self.opts.pk, pk) for pk in selected):
            return super().response_action(request, queryset)
        self.message_user(
            request,
            gettext("Items must be selected in order to perform actions on them. No items have been changed."),
            messages.WARNING,
        )
        return None


class CheckedAutocompleteJsonView(AutocompleteJsonView):
    """Django's answer to a record picker's search (``/admin/autocomplete/?term=``), for a term with a NUL
    character too: no stored text holds one, and PostgreSQL fails on comparing text with one. The site's
    ``autocomplete_view``."""

    def get_queryset(self):
        if "\x00" in self.term:
            return self.model_admin.get_queryset(self.request).none()
        return super().get_queryset()


class CheckedLookups:
    """A model admin whose list is a ``CheckedChangeList`` (mixed in by ``CRMAdminSite.register``)."""

    def get_changelist(self, request, **kwargs):
        return CheckedChangeList
