from rest_framework import serializers

from core import events
from core.api.serializers import StrictJSONTypesMixin

from . import net
from .models import Delivery, Endpoint


class EventTypesField(serializers.ListField):
    # One message for the field, as the error envelope lists them, not one per list index (an item of the
    # wrong JSON type too: ``StrictJSONTypesMixin``).
    default_error_messages = {"invalid_item": "Give a list of event types, each a text of up to 64 characters."}

    def run_child_validation(self, data):
        try:
            return super().run_child_validation(data)
        except serializers.ValidationError:
            raise serializers.ValidationError(self.error_messages["invalid_item"], code="invalid_item") from None


class EndpointSerializer(StrictJSONTypesMixin, serializers.ModelSerializer):
    event_types = EventTypesField(
        child=serializers.CharField(max_length=64),
        required=False,
        max_length=100,
        help_text="Event types to send (e.g. customer.created); empty or absent: every type.",
    )

    class Meta:
        model = Endpoint
        fields = [
            "id",
            "url",
            "description",
            "event_types",
            "is_active",
            "disabled_reason",
            "failing_since",
            "created_by_id",
            "created_at",
        ]
        read_only_fields = ["id", "disabled_reason", "failing_since", "created_by_id", "created_at"]

    def validate_url(self, value):
        try:
            net.check_url(value)
        except net.Refused as refused:
            raise serializers.ValidationError(str(refused)) from None
        return value

    def validate_event_types(self, value):
        known = set(events.event_types())
        unknown = sorted(set(value) - known)
        if unknown:
            raise serializers.ValidationError(f"Unknown event types: {', '.join(unknown)}.")
        return sorted(set(value))

    def update(self, instance, validated_data):
        # Turning an endpoint back on clears why it was turned off, and its failure streak.
        if validated_data.get("is_active") and not instance.is_active:
            instance.disabled_reason, instance.failing_since = "", None
        return super().update(instance, validated_data)


class EndpointWithSecretSerializer(EndpointSerializer):
    secret = serializers.CharField(
        read_only=True, help_text="The signing secret (whsec_...): shown only now, on creation or rotation."
    )

    class Meta(EndpointSerializer.Meta):
        fields = [*EndpointSerializer.Meta.fields, "secret"]
        read_only_fields = [*EndpointSerializer.Meta.read_only_fields, "secret"]


class DeliverySerializer(serializers.ModelSerializer):
    event_id = serializers.IntegerField(read_only=True, allow_null=True, help_text="null for a test event")

    class Meta:
        model = Delivery
        fields = [
            "id",
            "message_id",
            "event_id",
            "event_type",
            "status",
            "attempts",
            "response_status",
            "response_body",
            "error",
            "duration_ms",
            "last_attempt_at",
            "next_attempt_at",
            "created_at",
        ]
        read_only_fields = fields


class ReplaySerializer(StrictJSONTypesMixin, serializers.Serializer):
    since = serializers.DateTimeField(help_text="Replay the failed deliveries created since then.")
