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


class OwnerField(forms.Field):
    """``me`` or a user id."""

    default_error_messages = {"invalid": 'Enter "me" or a user id.'}

    def to_python(self, value):
        value = (value or "").strip()
        if not value:
            return None
        if value == "me":
            return value
        if not value.isdigit() or not 1 <= int(value) <= MAX_ID:
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
