"""The filters typed into a list's address, checked before the list reads a row."""

from django.contrib.admin.options import IncorrectLookupParameters
from django.contrib.admin.views.main import ChangeList
from django.core.exceptions import FieldDoesNotExist
from django.db import models

# The widest whole number a list's filter may compare a column with (64-bit integers).
LOOKUP_INTEGER_RANGE = range(-(2**63), 2**63)


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


class CheckedChangeList(ChangeList):
    """Django's changelist, whose filters in the address are checked first (``check_lookup_params``).

    Every list of the site is one (``CRMAdminSite.register``)."""

    def get_filters_params(self, params=None):
        lookup_params = super().get_filters_params(params)
        check_lookup_params(self.model, lookup_params)
        return lookup_params


class CheckedLookups:
    """A model admin whose list is a ``CheckedChangeList`` (mixed in by ``CRMAdminSite.register``)."""

    def get_changelist(self, request, **kwargs):
        return CheckedChangeList
