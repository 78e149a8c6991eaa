"""Schedules in and out (SPEC §7). Shapes only: the rules that need the stored schedule (kind
against instrument and message, time or window, window length) are the service's, so a PATCH is
checked as the schedule will be stored."""

from drf_spectacular.utils import extend_schema_field
from rest_framework import serializers
from rest_framework.exceptions import ErrorDetail

from backend.api.fields import StrictCharField, StrictIntegerField, WallTimeField
from journal.models import Instrument
from reminders.models import WEEKDAYS, ScheduleKind
from reminders.services.schedules import (
    EXPIRES_AFTER_MINUTES_DEFAULT,
    EXPIRES_AFTER_MINUTES_MAX,
    EXPIRES_AFTER_MINUTES_MIN,
    MESSAGE_MAX_LENGTH,
    SCHEDULE_WINDOW_MIN_GAP_MINUTES,
)


class StrictBooleanField(serializers.BooleanField):
    """JSON true or false only: no "true", 1 or "on"."""

    default_error_messages = {"invalid": "true or false is required."}

    def to_internal_value(self, data):
        if not isinstance(data, bool):
            self.fail("invalid")
        return data


class WindowSerializer(serializers.Serializer):
    """A window is one value, given whole: a PATCH replaces it as a POST sets it."""

    start = WallTimeField()
    end = WallTimeField(help_text="After start, on the same day (a window does not wrap midnight).")

    def to_internal_value(self, data):
        # DRF passes a PATCH's `partial` down to nested serializers, which would let
        # {"start": "10:00"} through without its end.
        value = super().to_internal_value(data)
        missing = {
            name: [ErrorDetail(field.error_messages["required"], code="required")]
            for name, field in self.fields.items()
            if name not in value
        }
        if missing:
            raise serializers.ValidationError(missing)
        return value


_WINDOW_HELP = (
    f"A random time inside it each day. At least {SCHEDULE_WINDOW_MIN_GAP_MINUTES} minutes long and ending at "
    f"least {SCHEDULE_WINDOW_MIN_GAP_MINUTES} minutes before the next day's window starts, so two prompts of one "
    "schedule are always that far apart."
)


class ScheduleWriteSerializer(serializers.Serializer):
    kind = serializers.ChoiceField(choices=ScheduleKind.choices)
    instrument = serializers.ChoiceField(
        choices=Instrument.choices, allow_null=True, required=False, help_text="Required for `assessment`, else null."
    )
    message = StrictCharField(
        max_length=MESSAGE_MAX_LENGTH,
        allow_blank=True,
        required=False,
        help_text="Required for `custom`, else empty. It reaches the phone's inbox: no health information.",
    )
    days = serializers.ListField(
        child=serializers.ChoiceField(choices=WEEKDAYS),
        allow_empty=False,
        max_length=len(WEEKDAYS),
        required=False,
        help_text="Weekdays it is due on, each once; all by default.",
    )
    time = WallTimeField(allow_null=True, required=False, help_text="A fixed local time. Exactly one of time, window.")
    window = WindowSerializer(allow_null=True, required=False, help_text=_WINDOW_HELP)
    expires_after_minutes = StrictIntegerField(
        min_value=EXPIRES_AFTER_MINUTES_MIN,
        max_value=EXPIRES_AFTER_MINUTES_MAX,
        required=False,
        help_text=f"Default {EXPIRES_AFTER_MINUTES_DEFAULT}.",
    )
    enabled = StrictBooleanField(required=False, help_text="Default true.")


class ScheduleSerializer(serializers.Serializer):
    id = serializers.UUIDField(read_only=True)
    kind = serializers.ChoiceField(choices=ScheduleKind.choices, read_only=True)
    instrument = serializers.ChoiceField(choices=Instrument.choices, allow_null=True, read_only=True)
    message = serializers.CharField(read_only=True)
    days = serializers.ListField(child=serializers.ChoiceField(choices=WEEKDAYS), read_only=True)
    time = WallTimeField(allow_null=True, read_only=True, help_text="Local HH:MM, or null.")
    window = serializers.SerializerMethodField(help_text="{start, end} local HH:MM, or null.")
    expires_after_minutes = serializers.IntegerField(read_only=True)
    enabled = serializers.BooleanField(read_only=True)
    created_at = serializers.DateTimeField(read_only=True)
    updated_at = serializers.DateTimeField(read_only=True)

    @extend_schema_field(WindowSerializer(allow_null=True))
    def get_window(self, schedule) -> dict | None:
        if schedule.window_start is None:
            return None
        return WindowSerializer({"start": schedule.window_start, "end": schedule.window_end}).data
