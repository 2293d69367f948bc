"""Serializer behaviour shared by the apps: strict JSON types, and related ids narrowed to what the
user may see. (Read fields built once per class, a fast path, are in ``fastsql.py``.)"""

import functools
import operator
from collections.abc import Mapping
from decimal import Decimal

from django.db.models import Q
from rest_framework import serializers

from core.access import is_manager, scope

from .fastsql import url_pk


def _is_integer(value):
    return (isinstance(value, int) and not isinstance(value, bool)) or (isinstance(value, float) and value.is_integer())


def _json_type_error(field, value):
    """The message for a JSON value of the wrong type for ``field``, or None when it is acceptable; for a list or
    an object, the messages of its items of the wrong type by index or key, as DRF nests a list's errors."""
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
    if isinstance(field, serializers.BooleanField):
        # Not "yes", "true", 1 or 0: imports give their cells as true or false (``core.resources.json_value``).
        return None if isinstance(value, bool) else field.error_messages["invalid"]
    if isinstance(field, (serializers.CharField, serializers.ChoiceField)):
        return None if isinstance(value, str) else serializers.CharField.default_error_messages["invalid"]
    if isinstance(field, serializers.ListField) and isinstance(value, list):
        return _item_errors(field, enumerate(value))
    if isinstance(field, serializers.DictField) and isinstance(value, Mapping):
        return _item_errors(field, value.items())
    return None


def _item_errors(field, items):
    """The errors of the ``(key, item)`` of a list or dict ``field``'s value whose JSON type is wrong, or None."""
    errors = {}
    for key, item in items:
        message = None if item is None else _json_type_error(field.child, item)
        if message:
            errors[key] = _detail(message)
    if not errors:
        return None
    # A field that answers any wrong item with one message of its own (``invalid_item``) does so here too.
    return field.error_messages.get("invalid_item", errors)


def _detail(message):
    return message if isinstance(message, dict) else [message]


# Refuse JSON values of the wrong type instead of converting them: DRF turns
# {"name": 12} into the text "12", {"probability": "40"} into 40 and
# {"daily_digest": "yes"} into true, where the schema promises a string, an
# integer and a boolean, so those are 400s here, as are such items of a list or
# an object ({"merged_ids": ["7"]}). null is left to each field's allow_null.
# Every body of the API is read through a serializer with this mixin. (A
# comment, not a docstring: the OpenAPI schema would show a docstring as every
# serializer's description.)
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
                    errors[field.field_name] = _detail(message)
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


def parents_named(serializer, items):
    """The parents that ``items``, bodies of writes through ``serializer``, point their records at, as querysets
    in the order to hold them (``rowlocks.lock_keys``): the parent before the records that point at it.

    The parents are the records named by id in the serializer's ``ScopedPrimaryKeyRelatedField`` fields (an
    interaction's or deal's customer, a customer's company), among those the writer sees, as the fields resolve
    them; with them, the records those parents point at that the record may point at too (a deal created
    without a company takes its customer's; a task's deal belongs to the task's customer); and those the
    serializer's own ``parents_named(items)`` adds (``{model: queryset}``, models of those fields: a customer's
    company named by name). A value that names no record is left to the field's error. Nothing is read.
    """
    parents = _parent_fields(type(serializer))
    named = {}
    for item in items:
        if isinstance(item, Mapping):
            for name, model in parents.fields:
                value = item.get(name)
                pk = url_pk(model, int(value)) if _is_integer(value) else None
                if pk is not None:
                    named.setdefault(name, set()).add(pk)
    wanted = {}
    for name, model in parents.fields:
        if name in named:
            chosen = serializer.fields[name].get_queryset().filter(pk__in=sorted(named[name]))
            wanted.setdefault(model, []).append(Q(pk__in=chosen.values("pk")))
            for attname, parent in parents.through.get(model, ()):
                wanted.setdefault(parent, []).append(Q(pk__in=chosen.values(attname)))
    extra = getattr(serializer, "parents_named", None)
    for model, queryset in (extra(items) if extra is not None else {}).items():
        wanted.setdefault(model, []).append(Q(pk__in=queryset.values("pk")))
    return [
        model._base_manager.filter(functools.reduce(operator.or_, wanted[model]))
        for model in parents.order
        if model in wanted
    ]


class _ParentFields:
    """A serializer class's parent fields (``parents_named``): ``fields`` (field name, model), ``through``
    (model -> [(its foreign key's attname, the parent model it points at)]) and ``order`` (highest parent first)."""

    def __init__(self, serializer_class):
        self.fields = [
            (name, field.queryset.model)
            for name, field in serializer_class().fields.items()
            if isinstance(field, ScopedPrimaryKeyRelatedField) and not field.read_only
        ]
        models = list(dict.fromkeys(model for _name, model in self.fields))
        self.through = {
            model: [
                (field.attname, field.related_model)
                for field in model._meta.concrete_fields
                if field.many_to_one and field.related_model in models and field.related_model is not model
            ]
            for model in models
        }
        # A parent comes before the parents that point at it (a company before a customer), as their deletes
        # lock them; among equals, in the serializer's order.
        self.order = []
        while models:
            top = next(
                (model for model in models if not any(parent in models for _a, parent in self.through[model])),
                models[0],
            )
            self.order.append(top)
            models.remove(top)


@functools.cache
def _parent_fields(serializer_class):
    return _ParentFields(serializer_class)


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
