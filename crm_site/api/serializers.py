"""Serializer helpers: the API's hot paths, and related ids narrowed to what the user may see."""

from rest_framework import serializers

from crm_site.access import scope


class CachedReadFieldsMixin:
    """Reuse one set of bound fields, per serializer class, to represent instances.

    A ModelSerializer builds (and deep-copies) all its fields from the model's
    metadata for every instance it creates: on a detail request that costs more
    than the database read. Representing an instance needs no per-request state in
    the fields of a serializer whose fields do not depend on its context, so the
    readable fields are built once per class and shared. Validation (writes) still
    uses the serializer's own fields. Only for serializers whose fields are fixed.
    """

    _read_fields_cache = None

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
