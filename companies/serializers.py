import re

from django.contrib.auth import get_user_model
from rest_framework import serializers

from core.api.customfields import CustomFieldsField, CustomFieldsMixin
from core.api.fastsql import CachedReadFieldsMixin
from core.api.history import FieldChangeSerializer
from core.api.serializers import DuplicateHintSerializer, ExternalIdMixin, StrictJSONTypesMixin, validate_owner
from core.api.tags import TagsField

from .models import Company
from .names import domain_of

# Labels of letters, digits and hyphens (any script: 华为.中国), at least two of them.
_DOMAIN = re.compile(r"^(?!-)[\w-]{1,63}(?<!-)(\.(?!-)[\w-]{1,63}(?<!-))+$")
NOTES_MAX_LENGTH = 20_000


class CompanySerializer(
    CustomFieldsMixin, ExternalIdMixin, StrictJSONTypesMixin, CachedReadFieldsMixin, serializers.ModelSerializer
):
    # Tags by name (core/api/tags.py): written through the record's save, so in its history and event.
    tags = TagsField()
    # Summary figures, annotated by ``Company.objects.with_summary()``; left out when not annotated. Those of the
    # people the user sees (a rep: their own people at the company), and of those people's deals and interactions.
    people_count = serializers.IntegerField(read_only=True, help_text="How many of the company's people you see.")
    open_pipeline_value = serializers.DecimalField(
        max_digits=20,
        decimal_places=2,
        read_only=True,
        help_text="The value of the open opportunities at the company of the people you see.",
    )
    last_interaction_at = serializers.DateTimeField(
        read_only=True, allow_null=True, help_text="The latest interaction with one of the company's people you see."
    )
    owner_id = serializers.PrimaryKeyRelatedField(
        source="owner", queryset=get_user_model().objects.filter(is_active=True), required=False, allow_null=True
    )
    created_by_id = serializers.IntegerField(read_only=True, allow_null=True)
    notes = serializers.CharField(allow_blank=True, required=False, max_length=NOTES_MAX_LENGTH)
    address = serializers.CharField(allow_blank=True, required=False, max_length=2000)
    # The values of the custom fields managers define (core/customfields.py).
    custom_fields = CustomFieldsField()

    class Meta:
        model = Company
        fields = [
            "id",
            "name",
            "domain",
            "website",
            "phone",
            "phone_e164",
            "address",
            "industry",
            "size",
            "notes",
            "owner_id",
            "people_count",
            "open_pipeline_value",
            "last_interaction_at",
            "created_at",
            "updated_at",
            "created_by_id",
            "external_id",
            "custom_fields",
            "tags",
        ]
        read_only_fields = ["id", "created_by_id", "created_at", "updated_at", "phone_e164"]
        extra_kwargs = {
            "phone_e164": {
                "help_text": "The phone number in E.164 (+8613800138000); null when it is not a valid number."
            },
            "domain": {
                "allow_null": True,
                "allow_blank": True,
                "validators": [],
                "help_text": "Lower case, without scheme, www. or path (https://www.Example.com/a is example.com); "
                "unique when set.",
            },
        }

    def validate_name(self, value):
        value = " ".join(value.split())
        if not value:
            raise serializers.ValidationError("This field may not be blank.")
        return value

    def validate_domain(self, value):
        value = domain_of(value)
        if not value:
            return None
        if not _DOMAIN.match(value):
            raise serializers.ValidationError("Enter a domain such as example.com.", code="invalid")
        clash = Company.objects.filter(domain=value)
        if self.instance is not None:
            clash = clash.exclude(pk=self.instance.pk)
        if clash.exists():
            raise serializers.ValidationError("A company with this domain already exists.", code="unique")
        return value

    def validate_owner_id(self, owner):
        return validate_owner(self, owner, "Only a manager may give a company to another owner.")


class CreatedCompanySerializer(CompanySerializer):
    """The answer to a create: the record, and the records it probably duplicates when there are any."""

    duplicates = DuplicateHintSerializer(
        many=True,
        read_only=True,
        required=False,
        help_text="Records (among those you see) that this one probably duplicates, best first; empty when none.",
    )

    class Meta(CompanySerializer.Meta):
        fields = [*CompanySerializer.Meta.fields, "duplicates"]


class CompanyTimelineEntrySerializer(serializers.Serializer):
    """One event of a company's timeline: an entry of one of its people's timelines, and whose it is."""

    type = serializers.CharField(help_text="As in a customer's timeline (interaction, opportunity_created, ...)")
    at = serializers.DateTimeField()
    customer_id = serializers.IntegerField()
    interaction = serializers.DictField(required=False, help_text="id, interaction_type, notes (interactions)")
    opportunity = serializers.DictField(required=False, help_text="id, title (opportunity events)")
    from_stage = serializers.CharField(required=False, allow_null=True)
    to_stage = serializers.CharField(required=False)
    changes = FieldChangeSerializer(
        many=True, required=False, help_text="The fields that changed, as in a customer's timeline (customer_changed)"
    )
