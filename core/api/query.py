"""Validation of query parameters, so that a bad one is a 400 in the envelope, never a 500."""

import datetime

from rest_framework import serializers

# Dates outside these bounds are refused: date arithmetic on them would overflow.
EARLIEST_DATE = datetime.date(1900, 1, 1)
LATEST_DATE = datetime.date(9000, 12, 31)


def validated_query(request, serializer_class):
    """``serializer_class`` bound to the query string of ``request`` and validated (a 400 when invalid)."""
    serializer = serializer_class(data=request.query_params, context={"request": request})
    serializer.is_valid(raise_exception=True)
    return serializer


class QueryDateField(serializers.DateField):
    """An ISO date (YYYY-MM-DD) within the years that date arithmetic can handle."""

    def to_internal_value(self, value):
        day = super().to_internal_value(value)
        if not EARLIEST_DATE <= day <= LATEST_DATE:
            raise serializers.ValidationError(f"Must be between {EARLIEST_DATE} and {LATEST_DATE}.")
        return day


class QuerySerializer(serializers.Serializer):
    """Base for query-string serializers; ``date_ranges`` lists (start, end) field pairs to keep in order."""

    date_ranges = ()

    def validate(self, attrs):
        for start, end in self.date_ranges:
            if attrs.get(start) and attrs.get(end) and attrs[start] > attrs[end]:
                raise serializers.ValidationError({end: [f"Must not be before {start}."]})
        return attrs
