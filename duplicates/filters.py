from django.db.models import Q
from django_filters import rest_framework as filters

from core.api.filters import IdFilter

from .models import DuplicateCandidate, Kind


class DuplicateCandidateFilter(filters.FilterSet):
    kind = filters.ChoiceFilter(choices=Kind.choices)
    status = filters.ChoiceFilter(choices=DuplicateCandidate.Status.choices)
    record_id = IdFilter(method="filter_record", label="Pairs that include this record id (with kind).")
    min_score = filters.NumberFilter(field_name="score", lookup_expr="gte")
    ordering = filters.OrderingFilter(fields=("id", "score", "found_at"))

    class Meta:
        model = DuplicateCandidate
        fields = ["kind", "status"]

    def filter_record(self, queryset, name, value):
        return queryset.filter(Q(a_id=value) | Q(b_id=value))
