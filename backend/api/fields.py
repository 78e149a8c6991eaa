"""Strict input fields: the SPEC rejects what DRF's defaults would coerce ("5", 5.0, True, naive times)."""

import math
import re
from datetime import UTC, datetime
from decimal import Decimal

from drf_spectacular.utils import extend_schema_field
from rest_framework import serializers


class StrictCharField(serializers.CharField):
    """A JSON string and nothing else: DRF's CharField would store 5 as "5" and 1.5 as "1.5"."""

    default_error_messages = {"invalid": "Text is required (not a number or true/false)."}

    def to_internal_value(self, data):
        if not isinstance(data, str):
            self.fail("invalid")
        return super().to_internal_value(data)


class StrictUUIDField(serializers.UUIDField):
    """A UUID written as a JSON string: DRF's UUIDField reads the integer 5 (and false) as a UUID."""

    def to_internal_value(self, data):
        if not isinstance(data, str):
            self.fail("invalid")
        return super().to_internal_value(data)


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
    default_error_messages = {"invalid": "A date YYYY-MM-DD (years 1900–2200) is required."}

    def to_internal_value(self, value):
        if not isinstance(value, str) or len(value) != 10:
            self.fail("invalid")
        parsed = super().to_internal_value(value)
        # The same years as StrictDateTimeField: ranges and windows reach days before and after a
        # date, and year 1 or 9999 would overflow that arithmetic into a 500.
        if not 1900 <= parsed.year <= 2200:
            self.fail("invalid")
        return parsed


_HH_MM = re.compile(r"\d{2}:\d{2}")


# Not OpenAPI's `format: time`: that is RFC 3339's full-time, with seconds and an offset.
@extend_schema_field({"type": "string", "pattern": r"^([01][0-9]|2[0-3]):[0-5][0-9]$", "example": "20:00"})
class WallTimeField(serializers.TimeField):
    """A local wall-clock time, exactly "HH:MM" (00:00–23:59)."""

    default_error_messages = {"invalid": "A time HH:MM (00:00–23:59) is required."}

    def __init__(self, **kwargs):
        super().__init__(format="%H:%M", input_formats=["%H:%M"], **kwargs)

    def to_internal_value(self, value):
        if not isinstance(value, str) or not _HH_MM.fullmatch(value):
            self.fail("invalid")
        return super().to_internal_value(value)
