from django import forms
from django_filters import rest_framework as filters

MAX_ID = 2**63 - 1


class IdFilter(filters.NumberFilter):
    """A positive integer id: ``1.5``, ``abc`` or an out-of-range number is a 400, not a miss."""

    field_class = forms.IntegerField

    def __init__(self, *args, **kwargs):
        kwargs.setdefault("min_value", 1)
        kwargs.setdefault("max_value", MAX_ID)
        super().__init__(*args, **kwargs)
