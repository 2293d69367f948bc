"""Filtering shared by the list endpoints.

The filter backend every list endpoint uses is django-filter's, with date-times made safe.

A date-time filter value may carry any UTC offset that Python accepts (up to
±23:59), but PostgreSQL refuses offsets past ±15:59 and dates outside its range
once shifted. Values are therefore converted to UTC while the form is cleaned,
and one that cannot be is a 400 on that parameter instead of a database error. A date alone is a day of the
requesting user's, 00:00 in their time zone.
"""

import functools
from datetime import UTC, date, datetime, time

from django import forms
from django.core.exceptions import ValidationError
from django_filters import fields
from django_filters import rest_framework as filters
from django_filters.rest_framework import DjangoFilterBackend, IsoDateTimeFilter

from core.fields import EXTERNAL_ID_MAX_LENGTH
from core.models import UserPreferences


class UTCIsoDateTimeField(fields.IsoDateTimeField):
    """A date-time bound in UTC; a date alone (``2026-03-10``) is 00:00 of that day in ``day_zone()`` (the user's
    zone: their days, as the reports count them), so that a date-only task due on the 10th is due on or after
    the 10th, and not before it."""

    default_error_messages = {"out_of_range": "Date and time out of range."}

    def __init__(self, *args, day_zone=None, **kwargs):
        super().__init__(*args, **kwargs)
        self.day_zone = day_zone

    def to_python(self, value):
        day = self.day_of(value)
        value = super().to_python(value)
        if value is None:
            return value
        if day is not None and self.day_zone is not None:
            value = datetime.combine(day, time.min, tzinfo=self.day_zone())
        try:
            return value.astimezone(UTC)
        except OverflowError:
            raise ValidationError(self.error_messages["out_of_range"], code="out_of_range") from None

    @staticmethod
    def day_of(value):
        """The date ``value`` is when it is a date alone, else None."""
        if not isinstance(value, str):
            return None
        try:
            return date.fromisoformat(value.strip())
        except ValueError:
            return None


def user_zone(user):
    return UserPreferences.for_user(user).zone


# Query parameters that page a list and filter nothing (``core.api.pagination``).
PAGING_PARAMETERS = frozenset({"page", "page_size", "cursor"})


class FilterBackend(DjangoFilterBackend):
    def filter_queryset(self, request, queryset, view):
        # A filterset given no filtering parameter leaves the rows as they are (every filter's
        # empty value is no filter: ``tests/core/api/test_filters_unasked.py`` compares the SQL of
        # every list with and without it), but building it (its filters copied, its form bound and
        # cleaned) costs as much as reading a page's rows: the first page of a list asks nothing.
        if PAGING_PARAMETERS.issuperset(request.query_params.keys()):
            return queryset
        return super().filter_queryset(request, queryset, view)

    def get_filterset(self, request, queryset, view):
        filterset = super().get_filterset(request, queryset, view)
        if filterset is not None:
            for declared in filterset.filters.values():
                # Each filterset holds its own copies of the filters, so this changes no class.
                if isinstance(declared, IsoDateTimeFilter):
                    declared.field_class = UTCIsoDateTimeField
                    declared.extra["day_zone"] = functools.partial(user_zone, request.user)
        return filterset


MAX_ID = 2**63 - 1


class IdFilter(filters.NumberFilter):
    """A positive integer id: ``1.5``, ``abc`` or an out-of-range number is a 400, not a miss."""

    field_class = forms.IntegerField

    def __init__(self, *args, **kwargs):
        kwargs.setdefault("min_value", 1)
        kwargs.setdefault("max_value", MAX_ID)
        super().__init__(*args, **kwargs)


class OwnerField(forms.Field):
    """``me`` or a user id."""

    default_error_messages = {"invalid": 'Enter "me" or a user id.'}

    def to_python(self, value):
        value = (value or "").strip()
        if not value:
            return None
        if value == "me":
            return value
        # isdigit() alone lets in digits int() cannot read ("²").
        if not (value.isascii() and value.isdigit()) or not 1 <= int(value) <= MAX_ID:
            raise forms.ValidationError(self.error_messages["invalid"], code="invalid")
        return int(value)


class OwnerFilter(filters.Filter):
    """``?owner=me`` (the requesting user's records) or ``?owner=<user id>``, along ``field_name``."""

    field_class = OwnerField

    def filter(self, qs, value):
        if value is None:
            return qs
        if value == "me":
            user = getattr(self.parent.request, "user", None)
            value = user.pk if user is not None and user.is_authenticated else None
            if value is None:
                return qs.none()
        return qs.filter(**{self.field_name: value})


class ExternalIdFilter(filters.CharFilter):
    """``?external_id=``: the record with that id in another system (exact)."""

    def __init__(self, **kwargs):
        kwargs.setdefault("field_name", "external_id")
        kwargs.setdefault("max_length", EXTERNAL_ID_MAX_LENGTH)
        kwargs.setdefault("label", "Id in another system (exact)")
        super().__init__(**kwargs)
