from django_filters import rest_framework as filters

from core.api.customfields import CustomFieldFilterMixin
from core.api.filters import ExternalIdFilter, IdFilter, OwnerFilter
from core.api.tags import tag_filters

from .models import Customer
from .search import search_customers


class CustomerFilter(CustomFieldFilterMixin, filters.FilterSet):
    tag, tag_any = tag_filters()
    search = filters.CharFilter(method="filter_search", max_length=200, label="Search name, company and email")
    status = filters.ChoiceFilter(choices=Customer.Status.choices)
    owner = OwnerFilter(field_name="owner_id", label="Owner: me, or a user id")
    created_after = filters.IsoDateTimeFilter(field_name="created_at", lookup_expr="gte")
    created_before = filters.IsoDateTimeFilter(field_name="created_at", lookup_expr="lt")
    external_id = ExternalIdFilter()
    company_id = IdFilter(field_name="company_id", label="Company id")
    ordering = filters.OrderingFilter(
        fields=(
            ("id", "id"),
            ("name", "name"),
            ("company_name", "company"),
            ("email", "email"),
            ("status", "status"),
            ("created_at", "created_at"),
            ("updated_at", "updated_at"),
        )
    )

    class Meta:
        model = Customer
        fields = ["search", "status", "owner", "company_id", "created_after", "created_before"]

    def filter_search(self, queryset, name, value):
        value = value.strip()
        if not value:
            return queryset
        return search_customers(queryset, value)
