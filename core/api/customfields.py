"""Custom fields in the API: the ``custom_fields`` object of a record, its ``cf_`` filters and
ordering, and ``/api/custom-fields`` (the definitions; managers write, everyone reads).

The rules are ``core.customfields``'s; this module only wires them to DRF.
"""

from collections.abc import Mapping

from django.db import transaction
from django_filters import rest_framework as filters
from drf_spectacular.utils import OpenApiParameter, extend_schema, extend_schema_field, extend_schema_view
from rest_framework import exceptions, permissions, serializers

from core import customfields
from core.models import CustomField

from .permissions import HasRole, IsManager
from .serializers import StrictJSONTypesMixin
from .viewsets import CRMModelViewSet

VALUE_SCHEMA = {
    "anyOf": [
        {"type": "string", "description": "text, long_text, url, email, choice; date as YYYY-MM-DD"},
        {"type": "integer", "description": "number"},
        {"type": "number", "description": "decimal"},
        {"type": "boolean", "description": "boolean"},
        {"type": "array", "items": {"type": "string"}, "description": "multi_choice"},
    ]
}


@extend_schema_field(
    {
        "type": "object",
        "description": "The record's custom fields, {key: value}, as defined in /api/custom-fields. A write "
        "merges the keys it names into the stored ones; null removes a key. Unknown keys are refused.",
        "additionalProperties": {**VALUE_SCHEMA, "nullable": True},
    }
)
class CustomFieldsField(serializers.Field):
    default_error_messages = {"not_an_object": "Expected an object of custom field values (key: value)."}

    def __init__(self, **kwargs):
        kwargs.setdefault("required", False)
        super().__init__(**kwargs)

    def to_internal_value(self, data):
        if not isinstance(data, Mapping):
            self.fail("not_an_object")
        return dict(data)

    def to_representation(self, value):
        # The serializer (CustomFieldsMixin) keeps only the current definitions' keys.
        return dict(value or {})


class CustomFieldsMixin:
    """For a model serializer with ``custom_fields = CustomFieldsField()``: values checked by
    ``core.customfields.clean`` (errors on ``custom_fields.<key>``), hidden keys left out of answers."""

    def _custom_fields_resource(self):
        return customfields.resource_of(self.Meta.model)

    def to_internal_value(self, data):
        errors, validated = {}, None
        try:
            validated = super().to_internal_value(data)
        except serializers.ValidationError as exc:
            if not isinstance(exc.detail, dict):
                raise
            errors = dict(exc.detail)
        if isinstance(data, Mapping) and "custom_fields" not in errors:
            incoming = data.get("custom_fields")
            if incoming is None or isinstance(incoming, Mapping):
                creating = self.instance is None
                if incoming is not None or creating or not self.partial:
                    existing = None if creating else self.instance.custom_fields
                    values, problems = customfields.clean(
                        self._custom_fields_resource(),
                        incoming or {},
                        existing=existing,
                        full=creating or not self.partial,
                    )
                    for key, messages in problems.items():
                        errors[f"custom_fields.{key}"] = messages
                    if validated is not None:
                        validated["custom_fields"] = values
        if errors:
            raise serializers.ValidationError(errors)
        return validated

    def to_representation(self, instance):
        data = super().to_representation(instance)
        if "custom_fields" in data:
            data["custom_fields"] = customfields.visible(self._custom_fields_resource(), data["custom_fields"])
        return data


ORDERING_MARK = "custom_fields:"


class CustomFieldOrderingFilter(filters.OrderingFilter):
    """An OrderingFilter that also orders by ``cf_<key>`` / ``-cf_<key>`` (records without a value last)."""

    def get_ordering_value(self, param):
        descending = param.startswith("-")
        field = self.param_map.get(param[1:] if descending else param, "")
        if field.startswith(ORDERING_MARK):
            return customfields.ordering(field[len(ORDERING_MARK) :], descending)
        return super().get_ordering_value(param)


class CustomFieldFilterMixin:
    """For a FilterSet of a model with custom fields: ``?cf_<key>=`` (and ``__gte``/``__lte``), and
    ``?ordering=cf_<key>``; a bad one is a 400 on its parameter."""

    def __init__(self, data=None, *args, **kwargs):
        super().__init__(data, *args, **kwargs)
        ordering = self.filters.get("ordering")
        asked = (self.data or {}).get("ordering") or ""
        if ordering is None or customfields.FILTER_PREFIX not in asked:
            return  # the definitions are read only when the ordering names a custom field
        resource = customfields.resource_of(self._meta.model)
        extra = [
            (ORDERING_MARK + definition.key, customfields.FILTER_PREFIX + definition.key)
            for definition in customfields.definitions(resource)
        ]
        if extra:
            # This filterset's own copy of the ordering filter, with the custom fields' choices added.
            fields = [(field, param) for param, field in ordering.param_map.items()]
            replacement = CustomFieldOrderingFilter(fields=fields + extra, label=ordering.label)
            replacement.parent, replacement.model = self, ordering.model
            self.filters["ordering"] = replacement

    def filter_queryset(self, queryset):
        queryset = super().filter_queryset(queryset)
        if self.data is None or not customfields.filter_params(self.data):
            return queryset
        resource = customfields.resource_of(self._meta.model)
        queryset, errors = customfields.apply_filters(queryset, resource, self.data)
        if errors:
            raise exceptions.ValidationError(errors)
        return queryset


# /api/custom-fields


class CustomFieldSerializer(StrictJSONTypesMixin, serializers.ModelSerializer):
    model = serializers.ChoiceField(
        choices=["customers", "companies", "opportunities"],
        help_text="The resource the field belongs to. Cannot change.",
    )
    key = serializers.CharField(
        max_length=customfields.KEY_MAX_LENGTH,
        help_text="The field's name in custom_fields, ?cf_<key>= and ?ordering=cf_<key>: lower-case letters, "
        "digits and single underscores, unique per model, not a field of the record. Cannot change.",
    )
    # Bounded here, the same on every database (a PositiveIntegerField's range is the database's).
    order = serializers.IntegerField(min_value=0, max_value=1_000_000, required=False, help_text="Lower first.")
    choices = serializers.ListField(
        child=serializers.CharField(max_length=customfields.CHOICE_MAX_LENGTH, trim_whitespace=False),
        required=False,
        max_length=customfields.CHOICES_MAX,
        help_text="The choices of a choice or multi_choice field (no commas); empty for other types.",
    )

    class Meta:
        model = CustomField
        fields = [
            "id",
            "model",
            "key",
            "label",
            "label_zh",
            "field_type",
            "required",
            "choices",
            "order",
            "show_in_list",
            "filterable",
            "created_at",
            "updated_at",
        ]
        read_only_fields = ["id", "created_at", "updated_at"]
        # The key's uniqueness per model is definition_errors' (a clear message on "key").
        validators = []
        extra_kwargs = {
            "field_type": {
                "help_text": "Can change only while every stored value converts to the new type "
                "(they are converted); otherwise 400."
            },
            "label_zh": {"help_text": "The label in Chinese (zh-hans), shown in the admin when set."},
        }

    def validate(self, attrs):
        instance = self.instance
        current = {
            name: getattr(instance, name) for name in ("model", "key", "field_type", "choices") if instance is not None
        }
        merged = {**current, **attrs}
        merged.setdefault("choices", [])
        errors = customfields.definition_errors(
            merged.get("model"),
            merged.get("key"),
            merged.get("field_type", CustomField.Type.TEXT),
            merged.get("choices"),
            instance=instance,
        )
        if errors:
            raise serializers.ValidationError(errors)
        if "\x00" in (attrs.get("label") or "") + (attrs.get("label_zh") or ""):
            raise serializers.ValidationError({"label": ["Null characters are not allowed."]})
        return attrs

    def create(self, validated_data):
        return self._save_definition(CustomField(**validated_data))

    def update(self, instance, validated_data):
        for name, value in validated_data.items():
            setattr(instance, name, value)
        return self._save_definition(instance)

    def _save_definition(self, definition):
        request = self.context.get("request")
        try:
            return customfields.save_definition(definition, user=getattr(request, "user", None))
        except customfields.StoredValuesMisfit as exc:
            # A value written since validate() does not fit: nothing was saved.
            raise serializers.ValidationError({"field_type": [str(exc)]}) from None
        except customfields.DefinitionGone as exc:
            # Deleted since it was read: nothing was saved, as for any record gone.
            raise exceptions.NotFound(str(exc)) from None


class ReadOrManage(permissions.BasePermission):
    """Every role reads the definitions; only managers write them."""

    message = "Only sales managers may define custom fields."

    def has_permission(self, request, view):
        if request.method in permissions.SAFE_METHODS:
            return HasRole().has_permission(request, view)
        return IsManager().has_permission(request, view)


@extend_schema_view(
    list=extend_schema(
        parameters=[
            OpenApiParameter(
                "model", str, enum=["customers", "companies", "opportunities"], description="One model's fields only."
            )
        ]
    )
)
class CustomFieldViewSet(CRMModelViewSet):
    """The custom fields of customers, companies and opportunities (docs/api.md#custom-fields)."""

    # Newest first, the default ordering that cursor paging follows on every list (sort by ``order`` to show them).
    queryset = CustomField.objects.order_by("-created_at", "-id")
    serializer_class = CustomFieldSerializer
    permission_classes = [ReadOrManage]
    filter_backends = []
    deleted_message = "Custom field deleted; its stored values are kept out of sight until purged."
    # Definitions are configuration, written one at a time: no batch route.
    batch = None
    unique_constraint_fields = {
        "custom_field_model_key_unique": ("key", "This model already has a custom field with this key.")
    }

    def get_queryset(self):
        # Definitions are no one's records: everyone with a role sees them all.
        queryset = self.queryset.all()
        resource = self.request.query_params.get("model") if self.action == "list" else None
        if resource and resource not in customfields.MODELS:
            raise exceptions.ValidationError({"model": [f"Choose one of: {', '.join(sorted(customfields.MODELS))}."]})
        return queryset.filter(model=resource) if resource else queryset

    def perform_create(self, serializer):
        # Definitions have no owner and no creator column.
        self._save(serializer)

    def perform_destroy(self, instance):
        with transaction.atomic():
            instance.delete()
        customfields.forget()
