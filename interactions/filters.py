from django_filters import rest_framework as filters

from .models import Interaction


class InteractionFilter(filters.FilterSet):
    customer_id = filters.NumberFilter(field_name="customer_id", min_value=1, max_value=2**63 - 1)
    interaction_type = filters.ChoiceFilter(choices=Interaction.Type.choices)
    created_after = filters.IsoDateTimeFilter(field_name="created_at", lookup_expr="gte")
    created_before = filters.IsoDateTimeFilter(field_name="created_at", lookup_expr="lt")
    ordering = filters.OrderingFilter(fields=("id", "created_at", "interaction_type", "customer_id"))

    class Meta:
        model = Interaction
        fields = ["customer_id", "interaction_type", "created_after", "created_before"]
