"""Serializer behaviour shared by the apps: strict JSON types, and related ids narrowed to what the
user may see. (Read fields built once per class, a fast path, are in ``fastsql.py``.)"""

from collections.abc import Mapping
from decimal import Decimal

from rest_framework import serializers

from core.access import is_manager, scope


def _is_integer(value):
    return (isinstance(value, int) and not isinstance(value, bool)) or (isinstance(value, float) and value.is_integer())


def _json_type_error(field, value):
    """The message for a JSON value of the wrong type for ``field``, or None when it is acceptable."""
    if isinstance(field, serializers.PrimaryKeyRelatedField):
        return (
            None
            if _is_integer(value)
            else field.error_messages["incorrect_type"].format(data_type=type(value).__name__)
        )
    if isinstance(field, serializers.IntegerField):
        return None if _is_integer(value) else field.error_messages["invalid"]
    if isinstance(field, (serializers.DecimalField, serializers.FloatField)):
        # A Decimal comes from Python callers (the admin's quick forms), never from JSON.
        numeric = isinstance(value, (int, float, Decimal)) and not isinstance(value, bool)
        return None if numeric else field.error_messages["invalid"]
    if isinstance(field, (serializers.CharField, serializers.ChoiceField)):
        return None if isinstance(value, str) else serializers.CharField.default_error_messages["invalid"]
    return None


# Refuse JSON values of the wrong type instead of converting them: DRF turns
# {"name": 12} into the text "12" and {"probability": "40"} into 40, where the
# schema promises a string and an integer, so those are 400s here. null is left
# to each field's allow_null. (A comment, not a docstring: the OpenAPI schema
# would show a docstring as every serializer's description.)
class StrictJSONTypesMixin:
    def to_internal_value(self, data):
        if isinstance(data, Mapping):
            errors = {}
            for field in self._writable_fields:
                value = data.get(field.field_name)
                if value is None:
                    continue
                message = _json_type_error(field, value)
                if message:
                    errors[field.field_name] = [message]
            if errors:
                raise serializers.ValidationError(errors)
        return super().to_internal_value(data)


class ScopedPrimaryKeyRelatedField(serializers.PrimaryKeyRelatedField):
    """A related id that must name a record the requesting user may see.

    A record out of the user's scope is refused with the same message as an id
    that does not exist, so that ids of other books do not leak. The queryset is
    narrowed per call (from the serializer's context), never stored on the field:
    bound read fields are shared between requests (``fastsql.CachedReadFieldsMixin``).
    """

    def get_queryset(self):
        queryset = super().get_queryset()
        request = self.context.get("request")
        if request is None:
            return queryset
        return scope(queryset, request.user)


class ExternalIdMixin:
    """``external_id``: another system's id for the record, unique when set; blank is none.

    The clash is checked here for a clear 400; the model's unique constraint
    settles a race with a concurrent writer (``unique_constraint_fields``).
    """

    def get_extra_kwargs(self):
        kwargs = super().get_extra_kwargs()
        # The unique check is validate_external_id's (after trimming), not a second generic one.
        kwargs["external_id"] = {
            "allow_null": True,
            "allow_blank": True,
            "validators": [],
            **kwargs.get("external_id", {}),
        }
        return kwargs

    def validate_external_id(self, value):
        value = (value or "").strip()
        if not value:
            return None
        clash = self.Meta.model._default_manager.filter(external_id=value)
        if self.instance is not None:
            clash = clash.exclude(pk=self.instance.pk)
        if clash.exists():
            raise serializers.ValidationError("A record with this external_id already exists.", code="unique")
        return value


def validate_owner(serializer, owner, message):
    """An owner a request may set: anyone for a manager, only themselves for others (``message`` otherwise)."""
    request = serializer.context.get("request")
    if request is None or is_manager(request.user):
        return owner
    if owner is None or owner.pk != request.user.pk:
        raise serializers.ValidationError(message, code="forbidden")
    return owner


class DuplicateHintSerializer(serializers.Serializer):
    """One record that a record just created probably duplicates (the ``duplicates`` of a create's answer)."""

    id = serializers.IntegerField()
    score = serializers.FloatField(help_text="How alike the two records are, 0..1.")
    reasons = serializers.ListField(
        child=serializers.CharField(),
        help_text="same_email, same_phone, similar_name_same_company, similar_name_same_email_local_part "
        "(customers); same_domain, similar_name (companies).",
    )
