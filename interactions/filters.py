from django_filters import rest_framework as filters

from core.api.filters import ExternalIdFilter, IdFilter

from .models import Interaction


class InteractionFilter(filters.FilterSet):
    customer_id = IdFilter(field_name="customer_id")
    interaction_type = filters.ChoiceFilter(choices=Interaction.Type.choices)
    created_after = filters.IsoDateTimeFilter(field_name="created_at", lookup_expr="gte")
    created_before = filters.IsoDateTimeFilter(field_name="created_at", lookup_expr="lt")
    occurred_after = filters.IsoDateTimeFilter(field_name="occurred_at", lookup_expr="gte")
    occurred_before = filters.IsoDateTimeFilter(field_name="occurred_at", lookup_expr="lt")
    external_id = ExternalIdFilter()
    ordering = filters.OrderingFilter(fields=("id", "created_at", "occurred_at", "interaction_type", "customer_id"))

    class Meta:
        model = Interaction
        fields = ["customer_id", "interaction_type"]
