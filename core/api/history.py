"""``GET /api/<resource>/<id>/history``: who changed what and when, newest first.

One mixin for every resource viewset. The record is fetched with the viewset's
own ``get_object()``, so the history is visible exactly to those who may see the
record. Each entry lists its changes against the entry before it.
"""

from django.db.models import Q
from drf_spectacular.utils import extend_schema, extend_schema_field
from rest_framework import serializers
from rest_framework.decorators import action

HISTORY_TYPES = {"+": "created", "~": "changed", "-": "deleted"}


class HistoryUserSerializer(serializers.Serializer):
    id = serializers.IntegerField()
    username = serializers.CharField()


class FieldChangeSerializer(serializers.Serializer):
    field = serializers.CharField()
    old = serializers.JSONField(allow_null=True)
    new = serializers.JSONField(allow_null=True)


class HistoryEntrySerializer(serializers.Serializer):
    history_id = serializers.IntegerField()
    history_date = serializers.DateTimeField()
    history_type = serializers.SerializerMethodField()
    user = HistoryUserSerializer(source="history_user", allow_null=True)
    changes = FieldChangeSerializer(many=True)

    @extend_schema_field({"type": "string", "enum": sorted(set(HISTORY_TYPES.values()))})
    def get_history_type(self, record):
        return HISTORY_TYPES[record.history_type]


def _api_name(field):
    return field.attname if field.is_relation else field.name


def _value(field, record):
    return getattr(record, field.attname)


def field_changes(record, previous):
    """``[{field, old, new}]`` from ``previous`` to ``record`` (every tracked field for a creation)."""
    tracked = type(record).tracked_fields
    if record.history_type == "-":
        return []
    changes = []
    for field in tracked:
        new = _value(field, record)
        old = None if previous is None or record.history_type == "+" else _value(field, previous)
        if record.history_type == "+" or old != new:
            if record.history_type == "+" and new in (None, ""):
                continue
            changes.append({"field": _api_name(field), "old": old, "new": new})
    return changes


class HistoryMixin:
    """Adds the ``history`` action to a model viewset whose model has ``HistoricalRecords``."""

    @extend_schema(responses=HistoryEntrySerializer(many=True))
    @action(detail=True, methods=["get"], url_path="history", filter_backends=[])
    def history(self, request, *args, **kwargs):
        instance = self.get_object()
        records = instance.history.select_related("history_user").order_by("-history_date", "-history_id")
        page = self.paginate_queryset(records)
        page = list(page)
        if page:
            # The entry just before the page's oldest one, to diff that one against.
            oldest = page[-1]
            before = records.filter(
                Q(history_date__lt=oldest.history_date)
                | Q(history_date=oldest.history_date, history_id__lt=oldest.history_id)
            ).first()
            for record, previous in zip(page, [*page[1:], before], strict=True):
                record.changes = field_changes(record, previous)
        serializer = HistoryEntrySerializer(page, many=True)
        return self.get_paginated_response(serializer.data)
