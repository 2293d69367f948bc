from django_filters import rest_framework as filters

from core.api.customfields import CustomFieldFilterMixin
from core.api.filters import ExternalIdFilter, IdFilter, OwnerFilter
from core.api.tags import tag_filters

from .models import Opportunity

MAX_VALUE = 10**12


class OpportunityFilter(CustomFieldFilterMixin, filters.FilterSet):
    tag, tag_any = tag_filters()
    customer_id = IdFilter(field_name="customer_id")
    stage = filters.ChoiceFilter(choices=Opportunity.Stage.choices)
    owner = OwnerFilter(field_name="customer__owner_id", label="Owner of the customer: me, or a user id")
    min_value = filters.NumberFilter(field_name="value", lookup_expr="gte", min_value=0, max_value=MAX_VALUE)
    max_value = filters.NumberFilter(field_name="value", lookup_expr="lte", min_value=0, max_value=MAX_VALUE)
    min_probability = filters.NumberFilter(field_name="probability", lookup_expr="gte", min_value=0, max_value=100)
    max_probability = filters.NumberFilter(field_name="probability", lookup_expr="lte", min_value=0, max_value=100)
    expected_close_after = filters.DateFilter(field_name="expected_close_date", lookup_expr="gte")
    expected_close_before = filters.DateFilter(field_name="expected_close_date", lookup_expr="lte")
    created_after = filters.IsoDateTimeFilter(field_name="created_at", lookup_expr="gte")
    created_before = filters.IsoDateTimeFilter(field_name="created_at", lookup_expr="lt")
    external_id = ExternalIdFilter()
    lost_reason = filters.CharFilter(
        max_length=Opportunity._meta.get_field("lost_reason").max_length,
        label="Lost with this reason (exact, as the pipeline report's lost_reasons[].reason names it)",
    )
    ordering = filters.OrderingFilter(
        fields=(
            "id",
            "title",
            "value",
            "stage",
            "probability",
            "expected_close_date",
            "created_at",
            "updated_at",
            "customer_id",
        )
    )

    class Meta:
        model = Opportunity
        fields = ["customer_id", "stage", "owner", "min_value", "max_value", "min_probability", "max_probability"]
