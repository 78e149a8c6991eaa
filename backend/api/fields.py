"""Strict input fields: the SPEC rejects what DRF's defaults would coerce ("5", 5.0, True, naive times)."""

import math
from datetime import UTC, datetime
from decimal import Decimal

from rest_framework import serializers


class StrictIntegerField(serializers.IntegerField):
    """A JSON integer and nothing else: no strings, floats (even 5.0), booleans or NaN."""

    default_error_messages = {"invalid": "A whole number is required (not text, a decimal or true/false)."}

    def to_internal_value(self, data):
        if isinstance(data, bool) or not isinstance(data, int):
            self.fail("invalid")
        return super().to_internal_value(data)


class StrictNumberField(serializers.DecimalField):
    """A finite JSON number (int or float, not a string or boolean), kept as a Decimal."""

    default_error_messages = {"invalid": "A number is required."}

    def to_internal_value(self, data):
        if isinstance(data, bool) or not isinstance(data, int | float):
            self.fail("invalid")
        if isinstance(data, float) and not math.isfinite(data):
            self.fail("invalid")
        if abs(data) > 10**9:
            self.fail("invalid")
        return super().to_internal_value(Decimal(str(data)))


class StrictDateTimeField(serializers.DateTimeField):
    """RFC 3339 with an offset (a naive datetime is a 400); output is UTC with Z."""

    default_error_messages = {
        "naive": "Give the time with its UTC offset, e.g. 2026-03-08T09:30:00-05:00.",
        "invalid": "An RFC 3339 date-time with an offset is required.",
    }

    def to_internal_value(self, value):
        if not isinstance(value, str) or len(value) > 40:
            self.fail("invalid")
        try:
            parsed = datetime.fromisoformat(value.replace("z", "Z"))
        except ValueError:
            self.fail("invalid")
        if parsed.tzinfo is None or parsed.utcoffset() is None:
            self.fail("naive")
        if not 1900 <= parsed.year <= 2200:
            self.fail("invalid")
        return parsed.astimezone(UTC)


class StrictDateField(serializers.DateField):
    default_error_messages = {"invalid": "A date YYYY-MM-DD is required."}

    def to_internal_value(self, value):
        if not isinstance(value, str) or len(value) != 10:
            self.fail("invalid")
        return super().to_internal_value(value)
