from collections.abc import Mapping

from django.contrib.auth import get_user_model
from rest_framework import serializers

from companies.models import Company
from companies.names import name_key
from core import access
from core.api.customfields import CustomFieldsField, CustomFieldsMixin
from core.api.fastsql import CachedReadFieldsMixin
from core.api.history import FieldChangeSerializer
from core.api.serializers import (
    DuplicateHintSerializer,
    ExternalIdMixin,
    ScopedPrimaryKeyRelatedField,
    StrictJSONTypesMixin,
    validate_owner,
)
from core.api.tags import TagsField

from .models import Customer, email_in_use


def _active_users():
    return get_user_model().objects.filter(is_active=True)


class CustomerSerializer(
    CustomFieldsMixin, ExternalIdMixin, StrictJSONTypesMixin, CachedReadFieldsMixin, serializers.ModelSerializer
):
    # Tags by name (core/api/tags.py): written through the record's save, so in its history and event.
    tags = TagsField()
    # Summary figures, annotated by ``Customer.objects.with_summary()``; left out when not annotated.
    interaction_count = serializers.IntegerField(read_only=True)
    open_pipeline_value = serializers.DecimalField(max_digits=20, decimal_places=2, read_only=True)
    last_interaction_at = serializers.DateTimeField(read_only=True, allow_null=True)
    # Who owns the customer: the creator unless a manager names another user.
    owner_id = serializers.PrimaryKeyRelatedField(
        source="owner", queryset=_active_users(), required=False, allow_null=True
    )
    created_by_id = serializers.IntegerField(read_only=True, allow_null=True)
    # The company: ``company_id`` links to one the user may see; the ``company`` text (the original
    # API's field) reads as the linked company's name and links by name, creating the company if needed.
    company = serializers.CharField(
        source="company_name",
        allow_null=True,
        allow_blank=True,
        required=False,
        max_length=200,
        help_text="The company's name. Writing it links the customer to the company of that name (ignoring case "
        "and spacing), created if there is none; blank or null unlinks.",
    )
    company_id = ScopedPrimaryKeyRelatedField(
        source="company", queryset=Company.objects.all(), required=False, allow_null=True
    )
    # The values of the custom fields managers define (core/customfields.py).
    custom_fields = CustomFieldsField()

    class Meta:
        model = Customer
        fields = [
            "id",
            "name",
            "company",
            "email",
            "phone",
            "status",
            "created_at",
            "updated_at",
            "interaction_count",
            "open_pipeline_value",
            "last_interaction_at",
            # After the original API's fields, whose order clients may rely on.
            "owner_id",
            "created_by_id",
            "external_id",
            "company_id",
            "phone_e164",
            "custom_fields",
            "tags",
        ]
        read_only_fields = ["id", "created_by_id", "created_at", "updated_at", "phone_e164"]
        extra_kwargs = {
            "phone_e164": {
                "help_text": "The phone number in E.164 (+8613800138000); null when it is not a valid number."
            },
            "email": {"allow_null": True, "allow_blank": True},
            "phone": {"allow_null": True, "allow_blank": True},
        }

    def validate_name(self, value):
        if not value.strip():
            raise serializers.ValidationError("This field may not be blank.")
        return value.strip()

    def validate_owner_id(self, owner):
        return validate_owner(self, owner, "Only a manager may give a customer to another owner.")

    def validate(self, attrs):
        attrs = super().validate(attrs)
        if "company_name" in attrs:
            text = " ".join((attrs.pop("company_name") or "").split())
            if "company" in attrs:
                # Both given: they must name the same company.
                company = attrs["company"]
                if text and (company is None or company.name_key != name_key(text)):
                    raise serializers.ValidationError(
                        {"company": ["Does not match the name of the company given by company_id."]}
                    )
            elif not text:
                attrs["company"] = None
            else:
                current = self.instance.company if self.instance is not None else None
                if current is None or current.name_key != name_key(text):
                    # Linked by name when saved (Customer.link_company), to a new company if need be.
                    attrs["company"], attrs["company_name"] = None, text
        if "company" in attrs and attrs["company"] is None:
            attrs.setdefault("company_name", None)
        return attrs

    def _company_choices(self):
        """The companies the writer sees, for a company named by text; None: every company."""
        request = self.context.get("request")
        if request is None or access.sees_everything(request.user):
            return None
        return access.scope(Company.objects.all(), request.user)

    def parents_named(self, items):
        """The companies ``items`` name by name (``core.api.serializers.parents_named``), found as the save finds
        them (``Customer.link_company``), to be held before the write: one deleted meanwhile is then not found,
        and the name links to a new company, as after the delete."""
        keys = {
            name_key(text)
            for item in items
            if isinstance(item, Mapping) and isinstance(text := item.get("company"), str) and "\x00" not in text
        } - {""}
        if not keys:
            return {}
        choices = self._company_choices()
        return {Company: (Company.objects.all() if choices is None else choices).filter(name_key__in=keys)}

    def create(self, validated_data):
        customer = Customer(**validated_data)
        customer.company_choices = self._company_choices()
        customer.save(force_insert=True)
        return customer

    def update(self, instance, validated_data):
        instance.company_choices = self._company_choices()
        return super().update(instance, validated_data)

    def validate_email(self, value):
        value = (value or "").strip()
        if not value:
            return None
        if email_in_use(value, other_than=None if self.instance is None else self.instance.pk):
            raise serializers.ValidationError("A customer with this email already exists.", code="unique")
        return value


class CreatedCustomerSerializer(CustomerSerializer):
    """The answer to a create: the record, and the records it probably duplicates when there are any."""

    duplicates = DuplicateHintSerializer(
        many=True,
        read_only=True,
        required=False,
        help_text="Records (among those you see) that this one probably duplicates, best first; empty when none.",
    )

    class Meta(CustomerSerializer.Meta):
        fields = [*CustomerSerializer.Meta.fields, "duplicates"]


class CustomerIdField(serializers.IntegerField):
    """The id of an existing customer (one query), for query strings and other non-model input."""

    default_error_messages = {"does_not_exist": "No customer with id {value}."}

    def __init__(self, **kwargs):
        kwargs.setdefault("min_value", 1)
        kwargs.setdefault("max_value", 2**63 - 1)
        super().__init__(**kwargs)

    def to_internal_value(self, data):
        value = super().to_internal_value(data)
        customers = Customer.objects.all()
        request = self.context.get("request")
        if request is not None:
            # Another rep's customer is answered like a missing one.
            customers = access.scope(customers, request.user)
        if not customers.filter(pk=value).exists():
            self.fail("does_not_exist", value=value)
        return value


class TimelineEntrySerializer(serializers.Serializer):
    """One event of a customer's timeline (for the schema: entries are built in customers/timeline.py)."""

    type = serializers.ChoiceField(
        choices=[
            "interaction",
            "opportunity_created",
            "opportunity_stage_changed",
            "opportunity_won",
            "opportunity_lost",
            "opportunity_reopened",
            "task_created",
            "task_completed",
            "customer_created",
            "customer_changed",
        ]
    )
    at = serializers.DateTimeField()
    interaction = serializers.DictField(required=False, help_text="id, interaction_type, notes (interactions)")
    opportunity = serializers.DictField(required=False, help_text="id, title (opportunity events)")
    task = serializers.DictField(required=False, help_text="id, title, kind; outcome when completed (task events)")
    history = serializers.DictField(
        required=False,
        help_text="id of the history entry, user_id of who made the change, null outside a request "
        "(customer_created, customer_changed)",
    )
    from_stage = serializers.CharField(required=False, allow_null=True)
    to_stage = serializers.CharField(required=False)
    changes = FieldChangeSerializer(
        many=True,
        required=False,
        help_text="The fields that changed, with their values before and after, as in the record's history "
        "(customer_changed)",
    )


class ReassignSerializer(StrictJSONTypesMixin, serializers.Serializer):
    """Body of ``POST /api/customers/<id>/reassign``."""

    owner_id = serializers.PrimaryKeyRelatedField(queryset=_active_users())


class BulkReassignSerializer(StrictJSONTypesMixin, serializers.Serializer):
    """Body of ``POST /api/customers/reassign``: every customer of ``from_owner_id`` (null: unowned ones)."""

    from_owner_id = serializers.PrimaryKeyRelatedField(queryset=get_user_model().objects.all(), allow_null=True)
    to_owner_id = serializers.PrimaryKeyRelatedField(queryset=_active_users())
