from django.utils.translation import gettext_lazy as _

from customers.resources import CustomerChildResource

from .models import Interaction
from .serializers import InteractionSerializer


class InteractionResource(CustomerChildResource):
    serializer_class = InteractionSerializer
    required_columns = ("customer", "interaction_type")

    class Meta:
        model = Interaction
        fields = (
            "id",
            "customer",
            "customer_name",
            "interaction_type",
            "notes",
            "occurred_at",
            "created_at",
            "external_id",
        )
        export_order = fields
        name = _("Interactions")
