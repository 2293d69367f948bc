from django.db.models import Value
from django.db.models.functions import Lower
from rest_framework import serializers

from crm_site.api.serializers import CachedReadFieldsMixin

from .models import Customer


class CustomerSerializer(CachedReadFieldsMixin, serializers.ModelSerializer):
    class Meta:
        model = Customer
        fields = ["id", "name", "company", "email", "phone", "status", "created_at", "updated_at"]
        read_only_fields = ["id", "created_at", "updated_at"]
        extra_kwargs = {
            "company": {"allow_null": True, "allow_blank": True},
            "email": {"allow_null": True, "allow_blank": True},
            "phone": {"allow_null": True, "allow_blank": True},
        }

    def validate_name(self, value):
        if not value.strip():
            raise serializers.ValidationError("This field may not be blank.")
        return value.strip()

    def validate_email(self, value):
        value = (value or "").strip()
        if not value:
            return None
        # LOWER(email) = LOWER(value) is the expression of the unique index
        # (customer_email_ci_unique), so this is an index lookup, not a scan.
        clash = Customer.objects.alias(email_lower=Lower("email")).filter(email_lower=Lower(Value(value)))
        if self.instance is not None:
            clash = clash.exclude(pk=self.instance.pk)
        if clash.exists():
            raise serializers.ValidationError("A customer with this email already exists.", code="unique")
        return value
