"""Serializer behaviour shared by the apps: strict JSON types, the API's hot paths, and related ids
narrowed to what the user may see."""

import copy
from collections.abc import Mapping

from rest_framework import serializers

from core.access import scope


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
        numeric = isinstance(value, (int, float)) and not isinstance(value, bool)
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


# Reuse one set of bound fields, per serializer class, to represent instances.
#
# A ModelSerializer builds (and deep-copies) all its fields from the model's
# metadata for every instance it creates: on a detail request that costs more
# than the database read. Representing an instance needs no per-request state in
# the fields of a serializer whose fields do not depend on its context, so the
# readable fields are built once per class and shared. Validation (writes) still
# uses the serializer's own fields. Only for serializers whose fields are fixed.
# (A comment, not a docstring: the OpenAPI schema would show it as every serializer's description.)
class CachedReadFieldsMixin:
    _read_fields_cache = None
    _unbound_fields_cache = None

    def get_fields(self):
        # Writes bind fresh fields to each serializer; copying the fields built once
        # per class costs a third of building them again from the model's metadata.
        cls = type(self)
        unbound = cls.__dict__.get("_unbound_fields_cache")
        if unbound is None:
            unbound = super().get_fields()
            cls._unbound_fields_cache = unbound
        return copy.deepcopy(unbound)

    @classmethod
    def _cached_read_fields(cls):
        # Keyed by class so that subclasses get their own fields.
        cache = cls.__dict__.get("_read_fields_cache")
        if cache is None:
            prototype = cls()
            cache = [field for field in prototype.fields.values() if not field.write_only]
            cls._read_fields_cache = cache
        return cache

    @property
    def _readable_fields(self):
        return iter(self._cached_read_fields())


class ScopedPrimaryKeyRelatedField(serializers.PrimaryKeyRelatedField):
    """A related id that must name a record the requesting user may see.

    A record out of the user's scope is refused with the same message as an id
    that does not exist, so that ids of other books do not leak. The queryset is
    narrowed per call (from the serializer's context), never stored on the field:
    bound read fields are shared between requests (``CachedReadFieldsMixin``).
    """

    def get_queryset(self):
        queryset = super().get_queryset()
        request = self.context.get("request")
        if request is None:
            return queryset
        return scope(queryset, request.user)
