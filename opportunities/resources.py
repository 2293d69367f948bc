from django.utils.translation import gettext_lazy as _
from import_export import fields

from core.resources import tags_field
from customers.resources import CustomerChildResource

from .models import Opportunity
from .serializers import OpportunitySerializer, set_stage_from


class OpportunityResource(CustomerChildResource):
    serializer_class = OpportunitySerializer
    required_columns = ("customer", "title")
    closed_at = fields.Field(attribute="closed_at", column_name="closed_at", readonly=True)

    tags = tags_field()

    class Meta:
        model = Opportunity
        fields = (
            "id",
            "customer",
            "customer_name",
            "title",
            "value",
            "stage",
            "probability",
            "expected_close_date",
            "closed_at",
            "lost_reason",
            "created_at",
            "external_id",
            "tags",
        )
        export_order = fields
        name = _("Opportunities")

    def apply_validated(self, instance, validated_data):
        # The stage rules of the API: a row that moves the stage without a probability takes the stage's default.
        set_stage_from(instance, validated_data)
        super().apply_validated(instance, validated_data)
