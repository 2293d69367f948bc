"""A company's summary figures (people, open pipeline value, last interaction), read with it in one query.

They are those of the people the reader sees: a rep's, of their own people at the company.

The figures are registered by the apps whose records belong to a company (``companies.parts``);
the serializer lists them, as they are the API's contract.
"""

from core.api.fastsql import AnnotatedRow

SUMMARY_FIELDS = ("people_count", "open_pipeline_value", "last_interaction_at")

# The figures of the people the reader sees (``Company.objects.with_summary``).
WITH_SUMMARY = AnnotatedRow(
    lambda queryset, viewer: queryset.with_summary(seen_by=viewer), SUMMARY_FIELDS, per_viewer=True
)
