"""Trend query parameters (validated) and the trend shapes (for the schema; the selectors build
plain dicts, which the views return as they are: 731 days through DRF fields would cost more than
the query)."""

from datetime import timedelta

from rest_framework import serializers

from backend.api.fields import StrictDateField
from journal.models import SessionKind
from journal.selectors.trends import DEFAULT_DAYS, MAX_DAYS


class TrendRangeSerializer(serializers.Serializer):
    # `from` is a Python keyword, so the field is renamed on the way in.
    to = StrictDateField(required=False)

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        self.fields["from"] = StrictDateField(required=False)

    def resolve(self, today) -> tuple:
        """(first, last) journal days: `to` defaults to today, `from` to the 30 days ending at `to`."""
        last = self.validated_data.get("to") or today
        first = self.validated_data.get("from") or last - timedelta(days=DEFAULT_DAYS - 1)
        if first > last:
            raise serializers.ValidationError({"from": ["`from` must not be after `to`."]}, code="invalid")
        if (last - first).days + 1 > MAX_DAYS:
            raise serializers.ValidationError({"from": [f"At most {MAX_DAYS} days at a time."]}, code="range_too_long")
        return first, last


class SessionTrendParamsSerializer(serializers.Serializer):
    before = serializers.IntegerField(min_value=1, max_value=60, default=7)
    after = serializers.IntegerField(min_value=1, max_value=60, default=14)
    kind = serializers.ChoiceField(choices=[*SessionKind.values, "all"], default=SessionKind.KETAMINE)


class TrendDaySerializer(serializers.Serializer):
    date = serializers.DateField()
    entries = serializers.IntegerField()
    craving_mean = serializers.FloatField(allow_null=True)
    craving_max = serializers.IntegerField(allow_null=True)
    mood_mean = serializers.FloatField(allow_null=True)
    anxiety_mean = serializers.FloatField(allow_null=True)
    sleep_hours = serializers.FloatField(allow_null=True)
    used = serializers.BooleanField()
    check_in = serializers.BooleanField()


class RollingDaySerializer(serializers.Serializer):
    date = serializers.DateField()
    craving_mean = serializers.FloatField(allow_null=True)
    mood_mean = serializers.FloatField(allow_null=True)


class TrendSummarySerializer(serializers.Serializer):
    craving_mean = serializers.FloatField(allow_null=True)
    craving_mean_prev = serializers.FloatField(allow_null=True, help_text="The same-length window before.")
    mood_mean = serializers.FloatField(allow_null=True)
    mood_mean_prev = serializers.FloatField(allow_null=True)
    craving_slope_per_week = serializers.FloatField(allow_null=True, help_text="Least squares over daily means.")
    use_days = serializers.IntegerField()
    days_since_last_use = serializers.IntegerField(allow_null=True)
    check_in_days = serializers.IntegerField()
    current_streak = serializers.IntegerField(help_text="Consecutive days with a check-in ending today or yesterday.")


class TriggerCountSerializer(serializers.Serializer):
    trigger = serializers.CharField()
    count = serializers.IntegerField()
    craving_mean = serializers.FloatField(allow_null=True)


class HourCountSerializer(serializers.Serializer):
    hour = serializers.IntegerField(min_value=0, max_value=23)
    entries = serializers.IntegerField()
    craving_mean = serializers.FloatField(allow_null=True)


class TrendAssessmentSerializer(serializers.Serializer):
    id = serializers.UUIDField()
    instrument = serializers.CharField()
    completed_at = serializers.DateTimeField()
    score = serializers.IntegerField()
    severity = serializers.CharField(allow_null=True)


class TrendSessionSerializer(serializers.Serializer):
    id = serializers.UUIDField()
    kind = serializers.CharField()
    starts_at = serializers.DateTimeField()
    local_date = serializers.DateField()
    duration_minutes = serializers.IntegerField()


class TrendUseSerializer(serializers.Serializer):
    id = serializers.UUIDField()
    occurred_at = serializers.DateTimeField()
    substance = serializers.CharField()
    craving_before = serializers.IntegerField(allow_null=True, help_text="The highest craving in the 24 h before.")


class TrendsSerializer(serializers.Serializer):
    to = serializers.DateField()
    days = TrendDaySerializer(many=True)
    rolling_7d = RollingDaySerializer(many=True)
    summary = TrendSummarySerializer()
    triggers = TriggerCountSerializer(many=True)
    hours = HourCountSerializer(many=True)
    assessments = TrendAssessmentSerializer(many=True)
    sessions = TrendSessionSerializer(many=True)
    uses = TrendUseSerializer(many=True)

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        self.fields["from"] = serializers.DateField()


class SessionWindowSerializer(serializers.Serializer):
    craving_mean = serializers.FloatField(allow_null=True)
    mood_mean = serializers.FloatField(allow_null=True)
    entries = serializers.IntegerField()


class DeltaSerializer(serializers.Serializer):
    craving = serializers.FloatField(allow_null=True, help_text="post − pre")
    mood = serializers.FloatField(allow_null=True)


class OffsetDaySerializer(serializers.Serializer):
    offset = serializers.IntegerField()
    craving_mean = serializers.FloatField(allow_null=True)
    mood_mean = serializers.FloatField(allow_null=True)
    entries = serializers.IntegerField()


class AnchoredSessionSerializer(serializers.Serializer):
    id = serializers.UUIDField()
    kind = serializers.CharField()
    starts_at = serializers.DateTimeField()
    local_date = serializers.DateField(help_text="Day 0.")
    pre = SessionWindowSerializer()
    post = SessionWindowSerializer()
    delta = DeltaSerializer()
    days = OffsetDaySerializer(many=True)


class AverageDaySerializer(serializers.Serializer):
    offset = serializers.IntegerField()
    craving_mean = serializers.FloatField(allow_null=True)
    mood_mean = serializers.FloatField(allow_null=True)
    sessions = serializers.IntegerField(help_text="Sessions with entries on this offset.")


class SessionAverageSerializer(serializers.Serializer):
    sessions = serializers.IntegerField()
    delta = DeltaSerializer()
    days = AverageDaySerializer(many=True)


class SessionTrendsSerializer(serializers.Serializer):
    before = serializers.IntegerField()
    after = serializers.IntegerField()
    kind = serializers.CharField(allow_null=True)
    sessions = AnchoredSessionSerializer(many=True)
    average = SessionAverageSerializer()
