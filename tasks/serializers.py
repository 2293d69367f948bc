import datetime

from django.contrib.auth import get_user_model
from django.utils import timezone
from rest_framework import serializers

from core import access
from core.api.fastsql import CachedReadFieldsMixin
from core.api.serializers import ExternalIdMixin, ScopedPrimaryKeyRelatedField, StrictJSONTypesMixin
from core.dates import FIRST_YEAR, LAST_YEAR, validate_record_date
from core.models import MAX_REMINDER_LEAD_MINUTES, UserPreferences
from customers.models import Customer
from interactions.models import Interaction
from opportunities.models import Opportunity

from .models import Task, date_only_due_at

TEXT_MAX_LENGTH = 20_000


class DueAtField(serializers.DateTimeField):
    """A date and time, or a date alone (``YYYY-MM-DD``: a date-only task)."""

    default_error_messages = {"invalid": "Enter a date (YYYY-MM-DD) or a date and time (ISO 8601)."}

    def to_internal_value(self, value):
        if isinstance(value, str):
            # A date in any of its ISO 8601 forms (20260310, 2026-W11-2 too): read as a date-time, it
            # would be a timed task at 00:00 UTC.
            try:
                return datetime.date.fromisoformat(value.strip())
            except ValueError:
                if len(value.strip()) == 10:
                    self.fail("invalid")
        moment = super().to_internal_value(value)
        try:
            validate_record_date(moment)
        except Exception as exc:  # ValidationError, or OverflowError near the ends of the calendar
            raise serializers.ValidationError(f"Enter a date in the years {FIRST_YEAR} to {LAST_YEAR}.") from exc
        return moment


def assignable_users():
    return get_user_model().objects.filter(is_active=True)


def may_be_assigned(user):
    """An active user whose role changes data: a manager or a rep (read-only users and users without a role not)."""
    return user.is_active and access.can_write(user)


class TaskSerializer(ExternalIdMixin, StrictJSONTypesMixin, CachedReadFieldsMixin, serializers.ModelSerializer):
    customer_id = ScopedPrimaryKeyRelatedField(source="customer", queryset=Customer.objects.all())
    opportunity_id = ScopedPrimaryKeyRelatedField(
        source="opportunity", queryset=Opportunity.objects.all(), required=False, allow_null=True
    )
    assignee_id = serializers.PrimaryKeyRelatedField(
        source="assignee",
        queryset=assignable_users(),
        required=False,
        help_text="An active manager or rep; default: the creator.",
    )
    due_at = DueAtField(
        required=False,
        allow_null=True,
        help_text="A date and time, or a date alone (YYYY-MM-DD) for a date-only task, stored as 00:00 of that day "
        "in the assignee's time zone.",
    )
    due_is_date_only = serializers.BooleanField(
        required=False,
        help_text="Set when due_at was given as a date; set it with a date and time to keep only its day "
        "(in the assignee's time zone).",
    )
    notes = serializers.CharField(allow_blank=True, required=False, max_length=TEXT_MAX_LENGTH)
    outcome = serializers.CharField(allow_blank=True, required=False, max_length=TEXT_MAX_LENGTH)
    reminder_lead_minutes = serializers.IntegerField(
        min_value=0,
        max_value=MAX_REMINDER_LEAD_MINUTES,
        required=False,
        allow_null=True,
        help_text="Minutes before due_at the reminder fires; null: the assignee's preference.",
    )
    created_by_id = serializers.IntegerField(read_only=True, allow_null=True)

    class Meta:
        model = Task
        fields = [
            "id",
            "title",
            "kind",
            "customer_id",
            "opportunity_id",
            "assignee_id",
            "due_at",
            "due_is_date_only",
            "priority",
            "notes",
            "reminder_lead_minutes",
            "done_at",
            "outcome",
            "created_at",
            "updated_at",
            "created_by_id",
            "external_id",
        ]
        read_only_fields = ["id", "done_at", "created_by_id", "created_at", "updated_at"]

    def validate_title(self, value):
        if not value.strip():
            raise serializers.ValidationError("This field may not be blank.")
        return value.strip()

    def validate_assignee_id(self, assignee):
        if not may_be_assigned(assignee):
            raise serializers.ValidationError("A task goes to an active manager or rep.", code="invalid_assignee")
        return assignee

    def validate(self, attrs):
        instance = self.instance
        customer = attrs.get("customer", getattr(instance, "customer", None))
        opportunity = attrs.get("opportunity", getattr(instance, "opportunity", None))
        if opportunity is not None and customer is not None and opportunity.customer_id != customer.pk:
            raise serializers.ValidationError(
                {"opportunity_id": ["The opportunity belongs to another customer."]}, code="invalid"
            )
        request = self.context.get("request")
        assignee = attrs.get("assignee") or getattr(instance, "assignee", None) or getattr(request, "user", None)
        self._normalise_due(attrs, assignee)
        return attrs

    def _normalise_due(self, attrs, assignee):
        """A date becomes 00:00 of that day in the assignee's zone; ``due_is_date_only`` follows the input."""
        if "due_at" not in attrs and "due_is_date_only" not in attrs:
            return
        due = attrs.get("due_at", getattr(self.instance, "due_at", None))
        if "due_at" in attrs and "due_is_date_only" not in attrs:
            attrs["due_is_date_only"] = isinstance(due, datetime.date) and not isinstance(due, datetime.datetime)
        if due is None:
            attrs["due_is_date_only"] = False
            return
        zone = UserPreferences.for_user(assignee).zone if assignee is not None else timezone.get_current_timezone()
        if isinstance(due, datetime.datetime):
            if not attrs["due_is_date_only"]:
                return
            stored = self.instance
            if stored is not None and stored.due_is_date_only and due == stored.due_at:
                # The stored instant sent back as it was read (a full body, an exported row): the task's own
                # date, read in the zone it was stored in, whoever the body now assigns it to.
                due = stored.due_date
            else:
                due = due.astimezone(zone).date()
        try:
            attrs["due_at"] = date_only_due_at(due, zone)
            validate_record_date(attrs["due_at"])
        except Exception as exc:  # out of the calendar once shifted
            raise serializers.ValidationError(
                {"due_at": [f"Enter a date in the years {FIRST_YEAR} to {LAST_YEAR}."]}
            ) from exc


class CompleteSerializer(StrictJSONTypesMixin, serializers.Serializer):
    """Body of ``POST /api/tasks/{id}/complete`` (all optional)."""

    outcome = serializers.CharField(allow_blank=True, required=False, max_length=TEXT_MAX_LENGTH)
    log_interaction = serializers.BooleanField(
        default=False, help_text="Also log an interaction with the customer, the outcome as its notes."
    )
    interaction_type = serializers.ChoiceField(
        choices=Interaction.Type.choices,
        required=False,
        help_text="Default: the task's kind (a to-do logs as other).",
    )
    occurred_at = serializers.DateTimeField(required=False, help_text="When it happened (default: now).")

    def validate(self, attrs):
        unknown = set(getattr(self, "initial_data", {}) or {}) - set(self.fields)
        if unknown:
            raise serializers.ValidationError({name: ["Unknown field."] for name in sorted(unknown)})
        return attrs


class CompletedSerializer(serializers.Serializer):
    """What ``complete`` answers: the task, and the interaction it logged (or null)."""

    task = TaskSerializer()
    interaction = serializers.DictField(allow_null=True, help_text="As GET /api/interactions/{id} shows it.")
