from decimal import Decimal

from rest_framework import serializers

from crm_site.api.fields import RoundingDecimalField
from crm_site.api.serializers import StrictJSONTypesMixin
from customers.models import Customer

from .models import Opportunity


class OpportunitySerializer(StrictJSONTypesMixin, serializers.ModelSerializer):
    customer_id = serializers.PrimaryKeyRelatedField(source="customer", queryset=Customer.objects.all())
    value = RoundingDecimalField(max_digits=14, decimal_places=2, min_value=Decimal("0"), required=False)
    probability = serializers.IntegerField(min_value=0, max_value=100, required=False)

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
            "created_at",
            "updated_at",
        ]
        read_only_fields = ["id", "closed_at", "created_at", "updated_at"]

    def validate_title(self, value):
        if not value.strip():
            raise serializers.ValidationError("This field may not be blank.")
        return value.strip()

    def validate(self, attrs):
        # A stage implies a default probability unless the client gives one: on
        # create, and when an update moves the opportunity to another stage.
        stage = attrs.get("stage")
        if "probability" not in attrs:
            if self.instance is None:
                attrs["probability"] = Opportunity.DEFAULT_PROBABILITY[stage or Opportunity.Stage.LEAD]
            elif stage is not None and stage != self.instance.stage:
                attrs["probability"] = Opportunity.DEFAULT_PROBABILITY[stage]
        return attrs
