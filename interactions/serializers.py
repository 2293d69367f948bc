import datetime

from django.utils import timezone
from rest_framework import serializers

from core.api.fastsql import CachedReadFieldsMixin
from core.api.query import QueryDateField, QuerySerializer
from core.api.serializers import ExternalIdMixin, ScopedPrimaryKeyRelatedField, StrictJSONTypesMixin
from core.dates import FIRST_YEAR, LAST_YEAR, add_months
from customers.models import Customer

from .models import Interaction

NOTES_MAX_LENGTH = 20_000


class InteractionSerializer(ExternalIdMixin, StrictJSONTypesMixin, CachedReadFieldsMixin, serializers.ModelSerializer):
    customer_id = ScopedPrimaryKeyRelatedField(source="customer", queryset=Customer.objects.all())
    created_by_id = serializers.IntegerField(read_only=True, allow_null=True)
    notes = serializers.CharField(allow_null=True, allow_blank=True, required=False, max_length=NOTES_MAX_LENGTH)

    class Meta:
        model = Interaction
        fields = [
            "id",
            "customer_id",
            "interaction_type",
            "notes",
            "occurred_at",
            "created_at",
            "created_by_id",
            "external_id",
        ]
        read_only_fields = ["id", "created_by_id", "created_at"]
        extra_kwargs = {
            "occurred_at": {"help_text": f"When it happened (default: now); in the years {FIRST_YEAR}-{LAST_YEAR}."},
        }


class ActivityQuerySerializer(QuerySerializer):
    """Parameters of ``GET /api/reports/activity``.

    Without dates the report covers the last 12 weeks (or 12 months) up to today.
    """

    MAX_DAYS = 5 * 366
    DEFAULT_PERIODS = 12

    group_by = serializers.ChoiceField(choices=["week", "month"], default="week")
    date_from = QueryDateField(required=False)
    date_to = QueryDateField(required=False)
    cold_days = serializers.IntegerField(min_value=1, max_value=3650, default=30)
    cold_limit = serializers.IntegerField(min_value=1, max_value=500, default=50)
    status = serializers.ChoiceField(choices=Customer.Status.choices, required=False)

    def validate(self, attrs):
        last = attrs.get("date_to") or timezone.localdate()
        first = attrs.get("date_from")
        if first is None:
            if attrs["group_by"] == "week":
                first = last - datetime.timedelta(weeks=self.DEFAULT_PERIODS) + datetime.timedelta(days=1)
            else:
                first = add_months(last, 1 - self.DEFAULT_PERIODS)
        if first > last:
            raise serializers.ValidationError({"date_to": ["Must not be before date_from."]})
        if (last - first).days > self.MAX_DAYS:
            raise serializers.ValidationError({"date_from": [f"The range may cover at most {self.MAX_DAYS} days."]})
        attrs["date_from"], attrs["date_to"] = first, last
        return attrs
