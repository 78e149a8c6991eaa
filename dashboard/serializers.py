"""The triage list's query parameters and row shape (the rows are built as dicts by the selector
and returned as they are; these serializers validate input and document output)."""

from rest_framework import serializers

from dashboard.selectors import ORDERINGS, TRIAGE_LIMIT


class TriageParamsSerializer(serializers.Serializer):
    q = serializers.CharField(required=False, allow_blank=True, max_length=120, help_text="Search in display names.")
    ordering = serializers.ChoiceField(choices=ORDERINGS, default="attention")
    limit = serializers.IntegerField(min_value=1, max_value=TRIAGE_LIMIT, default=TRIAGE_LIMIT)


class OpenAlertCountsSerializer(serializers.Serializer):
    urgent = serializers.IntegerField()
    high = serializers.IntegerField()
    medium = serializers.IntegerField()
    low = serializers.IntegerField()


class TriageRowSerializer(serializers.Serializer):
    id = serializers.UUIDField()
    display_name = serializers.CharField()
    status = serializers.CharField()
    last_entry_at = serializers.DateTimeField(allow_null=True)
    days_since_last_entry = serializers.IntegerField(allow_null=True)
    entries_7d = serializers.IntegerField()
    check_in_days_7d = serializers.IntegerField()
    craving_mean_7d = serializers.FloatField(allow_null=True)
    craving_mean_prev_7d = serializers.FloatField(allow_null=True)
    mood_mean_7d = serializers.FloatField(allow_null=True)
    use_days_7d = serializers.IntegerField()
    open_alerts = OpenAlertCountsSerializer(help_text="Unresolved (open or acknowledged) alerts by severity.")
    compliance_7d = serializers.FloatField(allow_null=True, help_text="Prompts completed ÷ sent, last 7 days.")
    next_session_at = serializers.DateTimeField(allow_null=True)
    craving_daily_14d = serializers.ListField(
        child=serializers.FloatField(allow_null=True), help_text="Daily craving means, oldest first (sparkline)."
    )


class TriageListSerializer(serializers.Serializer):
    count = serializers.IntegerField()
    results = TriageRowSerializer(many=True)
