from rest_framework import serializers

from crm_site.api.serializers import StrictJSONTypesMixin

from .models import Customer


class CustomerSerializer(StrictJSONTypesMixin, serializers.ModelSerializer):
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
        clash = Customer.objects.filter(email__iexact=value)
        if self.instance is not None:
            clash = clash.exclude(pk=self.instance.pk)
        if clash.exists():
            raise serializers.ValidationError("A customer with this email already exists.", code="unique")
        return value
