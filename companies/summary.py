"""A company's summary figures (people, open pipeline value, last interaction), read with it in one query.

The figures are registered by the apps whose records belong to a company (``companies.parts``);
the serializer lists them, as they are the API's contract.
"""

from core.api.fastsql import AnnotatedRow

SUMMARY_FIELDS = ("people_count", "open_pipeline_value", "last_interaction_at")

WITH_SUMMARY = AnnotatedRow(lambda queryset: queryset.with_summary(), SUMMARY_FIELDS)
