from decimal import Decimal

from drf_spectacular.utils import extend_schema_field
from rest_framework import serializers

from companies.models import Company
from core.api.customfields import CustomFieldsField, CustomFieldsMixin
from core.api.fastsql import CachedReadFieldsMixin
from core.api.fields import RoundingDecimalField
from core.api.query import QueryDateField, QuerySerializer
from core.api.serializers import ExternalIdMixin, ScopedPrimaryKeyRelatedField, StrictJSONTypesMixin
from core.api.tags import TagsField
from core.dates import FIRST_YEAR, LAST_YEAR, day_bounds
from customers.models import Customer
from customers.serializers import CustomerIdField

from .models import Opportunity
from .services import check_lost_reason, opportunity_set_stage


class NextTaskSerializer(serializers.Serializer):
    id = serializers.IntegerField()
    title = serializers.CharField()
    due_at = serializers.DateTimeField(allow_null=True)


@extend_schema_field(NextTaskSerializer(allow_null=True))
class NextTaskField(serializers.Field):
    """The earliest open task of the opportunity ({id, title, due_at}), or null; from ``opportunities.parts``."""

    def __init__(self, **kwargs):
        kwargs.setdefault("source", "*")
        kwargs.setdefault("read_only", True)
        kwargs.setdefault("allow_null", True)
        super().__init__(**kwargs)

    def get_attribute(self, instance):
        return instance

    def to_representation(self, instance):
        task_id = getattr(instance, "next_task_id", None)
        if task_id is None:
            return None
        due_at = getattr(instance, "next_task_due_at", None)
        return {
            "id": task_id,
            "title": getattr(instance, "next_task_title", None),
            "due_at": None if due_at is None else serializers.DateTimeField().to_representation(due_at),
        }


class OpportunitySerializer(
    CustomFieldsMixin, ExternalIdMixin, StrictJSONTypesMixin, CachedReadFieldsMixin, serializers.ModelSerializer
):
    # Tags by name (core/api/tags.py): written through the record's save, so in its history and event.
    tags = TagsField()
    customer_id = ScopedPrimaryKeyRelatedField(source="customer", queryset=Customer.objects.all())
    company_id = ScopedPrimaryKeyRelatedField(
        source="company",
        queryset=Company.objects.all(),
        required=False,
        allow_null=True,
        help_text="The company the deal is with; when created without one, the customer's company.",
    )
    created_by_id = serializers.IntegerField(read_only=True, allow_null=True)
    value = RoundingDecimalField(max_digits=14, decimal_places=2, min_value=Decimal("0"), required=False)
    probability = serializers.IntegerField(min_value=0, max_value=100, required=False)
    next_task = NextTaskField(help_text="The earliest open task (id, title, due_at), or null.")
    # The values of the custom fields managers define (core/customfields.py).
    custom_fields = CustomFieldsField()

    class Meta:
        model = Opportunity
        fields = [
            "id",
            "customer_id",
            "title",
            "value",
            "stage",
            "probability",
            "expected_close_date",
            "closed_at",
            "lost_reason",
            "created_at",
            "updated_at",
            "created_by_id",
            "external_id",
            "next_task",
            "company_id",
            "custom_fields",
            "tags",
        ]
        read_only_fields = ["id", "closed_at", "created_by_id", "created_at", "updated_at"]
        extra_kwargs = {
            "expected_close_date": {"help_text": f"In the years {FIRST_YEAR}-{LAST_YEAR}."},
            "lost_reason": {
                "help_text": "Why the deal was lost: only for a deal that is lost or moved to lost (else 400); "
                "cleared when it is reopened or won."
            },
        }

    def validate_title(self, value):
        if not value.strip():
            raise serializers.ValidationError("This field may not be blank.")
        return value.strip()

    def validate(self, attrs):
        attrs = super().validate(attrs)
        if "lost_reason" in attrs:
            # Written to survive a partial update: the stage sent, else the deal's own.
            opportunity = self.instance if self.instance is not None else Opportunity()
            check_lost_reason(
                opportunity=opportunity, stage=attrs.get("stage", opportunity.stage), lost_reason=attrs["lost_reason"]
            )
        return attrs

    def create(self, validated_data):
        opportunity = Opportunity()
        set_stage_from(opportunity, validated_data)
        for attribute, value in validated_data.items():
            setattr(opportunity, attribute, value)
        opportunity.save(force_insert=True)
        return opportunity

    def update(self, instance, validated_data):
        set_stage_from(instance, validated_data)
        return super().update(instance, validated_data)


def set_stage_from(opportunity, validated_data):
    """Apply the stage rules for the ``stage``, ``probability`` and ``lost_reason`` of ``validated_data`` (taken
    out of it)."""
    opportunity_set_stage(
        opportunity=opportunity,
        stage=validated_data.pop("stage", opportunity.stage),
        probability=validated_data.pop("probability", None),
        lost_reason=validated_data.pop("lost_reason", None),
    )


class PipelineQuerySerializer(QuerySerializer):
    """Filters of ``GET /api/reports/pipeline``; the date ranges are whole days, both ends included."""

    customer_id = CustomerIdField(required=False)
    group_by = serializers.ChoiceField(
        choices=["company", "owner", "stage"],
        required=False,
        help_text="Add ``groups``: the open, won and lost figures per company, owner (of the customer) or stage.",
    )
    group_limit = serializers.IntegerField(
        min_value=1, max_value=500, default=50, help_text="At most this many groups, largest open pipeline first."
    )
    created_from = QueryDateField(required=False)
    created_to = QueryDateField(required=False)
    closed_from = QueryDateField(required=False)
    closed_to = QueryDateField(required=False)

    date_ranges = (("created_from", "created_to"), ("closed_from", "closed_to"))

    def filter_queryset(self, queryset):
        data = self.validated_data
        if "customer_id" in data:
            queryset = queryset.filter(customer_id=data["customer_id"])
        for field, prefix in (("created_at", "created"), ("closed_at", "closed")):
            since, until = day_bounds(data.get(f"{prefix}_from"), data.get(f"{prefix}_to"))
            if since:
                queryset = queryset.filter(**{f"{field}__gte": since})
            if until:
                queryset = queryset.filter(**{f"{field}__lt": until})
        return queryset


class ForecastQuerySerializer(QuerySerializer):
    months = serializers.IntegerField(min_value=1, max_value=36, default=3)
    customer_id = CustomerIdField(required=False)

    def filter_queryset(self, queryset):
        if "customer_id" in self.validated_data:
            queryset = queryset.filter(customer_id=self.validated_data["customer_id"])
        return queryset
