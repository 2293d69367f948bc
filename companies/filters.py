from django_filters import rest_framework as filters

from core.api.customfields import CustomFieldFilterMixin
from core.api.filters import ExternalIdFilter, OwnerFilter
from core.api.tags import tag_filters

from .models import Company
from .names import domain_of
from .search import SEARCH


class CompanyFilter(CustomFieldFilterMixin, filters.FilterSet):
    tag, tag_any = tag_filters()
    search = filters.CharFilter(method="filter_search", max_length=200, label="Search name and domain")
    domain = filters.CharFilter(method="filter_domain", max_length=500, label="Domain or web address (exact)")
    owner = OwnerFilter(field_name="owner_id", label="Owner: me, or a user id")
    size = filters.ChoiceFilter(choices=Company.Size.choices)
    industry = filters.CharFilter(field_name="industry", lookup_expr="iexact", max_length=100)
    created_after = filters.IsoDateTimeFilter(field_name="created_at", lookup_expr="gte")
    created_before = filters.IsoDateTimeFilter(field_name="created_at", lookup_expr="lt")
    external_id = ExternalIdFilter()
    ordering = filters.OrderingFilter(fields=("id", "name", "domain", "size", "created_at", "updated_at"))

    class Meta:
        model = Company
        fields = ["search", "domain", "owner", "size", "industry", "created_after", "created_before"]

    def filter_search(self, queryset, name, value):
        value = value.strip()
        if not value:
            return queryset
        return SEARCH.filter(queryset, value)

    def filter_domain(self, queryset, name, value):
        # Written any way a user may paste it: "https://www.example.com/" finds example.com.
        value = domain_of(value)
        return queryset.filter(domain=value) if value else queryset
