from django.utils.translation import gettext_lazy as _

from customers.resources import CustomerChildResource

from .models import Interaction


class InteractionResource(CustomerChildResource):
    required_columns = ("customer", "interaction_type")
    nullable_text_fields = ("notes",)

    class Meta:
        model = Interaction
        fields = ("id", "customer", "customer_name", "interaction_type", "notes", "occurred_at", "created_at")
        export_order = fields
        name = _("Interactions")
