from rest_framework import serializers

from crm_site.api.serializers import StrictJSONTypesMixin
from customers.models import Customer

from .models import Interaction

NOTES_MAX_LENGTH = 20_000


class InteractionSerializer(StrictJSONTypesMixin, serializers.ModelSerializer):
    customer_id = serializers.PrimaryKeyRelatedField(source="customer", queryset=Customer.objects.all())
    notes = serializers.CharField(allow_null=True, allow_blank=True, required=False, max_length=NOTES_MAX_LENGTH)

    class Meta:
        model = Interaction
        fields = ["id", "customer_id", "interaction_type", "notes", "occurred_at", "created_at"]
        read_only_fields = ["id", "created_at"]
