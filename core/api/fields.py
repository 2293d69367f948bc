"""Serializer fields shared by the apps."""

from decimal import ROUND_DOWN, ROUND_HALF_UP, Decimal, InvalidOperation

from rest_framework import serializers


class RoundingDecimalField(serializers.DecimalField):
    """A decimal that takes any number in range and rounds it to ``decimal_places``.

    JSON clients send floats (the original API stored them), so ``19.999`` is
    stored as ``20.00`` instead of being refused for its third decimal. Bounds are
    checked on the value as sent, so the schema's ``minimum``/``maximum`` hold.
    """

    def validate_precision(self, value):
        if self.min_value is not None and value < self.min_value:
            self.fail("min_value", min_value=self.min_value)
        if self.max_whole_digits is not None and abs(value) >= Decimal(10) ** self.max_whole_digits:
            self.fail("max_whole_digits", max_whole_digits=self.max_whole_digits)
        step = Decimal(1).scaleb(-self.decimal_places)
        try:
            rounded = value.quantize(step, rounding=ROUND_HALF_UP)
            if self.max_whole_digits is not None and abs(rounded) >= Decimal(10) ** self.max_whole_digits:
                rounded = value.quantize(step, rounding=ROUND_DOWN)  # within half a unit of the limit
        except InvalidOperation:
            self.fail("max_digits", max_digits=self.max_digits)
        # Adding zero turns -0.00 into 0.00, so a record reads back as it was answered.
        return super().validate_precision(rounded + 0)
