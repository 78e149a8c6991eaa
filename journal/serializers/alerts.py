"""Alerts in and out (SPEC §9)."""

from rest_framework import serializers

from backend.api.fields import StrictCharField
from journal.models import AlertRule, AlertSeverity, AlertStatus

NOTE_MAX = 2000


class AlertPatientSerializer(serializers.Serializer):
    id = serializers.UUIDField()
    display_name = serializers.CharField()


class AlertActorSerializer(serializers.Serializer):
    id = serializers.UUIDField()
    name = serializers.CharField(source="display_name")
    email = serializers.EmailField()


class AlertSerializer(serializers.Serializer):
    id = serializers.UUIDField()
    patient = AlertPatientSerializer()
    rule = serializers.ChoiceField(choices=AlertRule.choices)
    severity = serializers.ChoiceField(choices=AlertSeverity.choices)
    status = serializers.ChoiceField(choices=AlertStatus.choices)
    evidence = serializers.ListField(
        child=serializers.DictField(),
        help_text=(
            "Why it fired, oldest first (the newest 50 are kept): each item has `at` (when it fired), "
            "`entry` or `assessment` (the id that fired it) and the rule's figures, e.g. "
            '`{"days": ["2026-03-01", "2026-03-02"], "day_max": [8, 9]}` for craving_high. Never note text.'
        ),
    )
    opened_at = serializers.DateTimeField()
    last_fired_at = serializers.DateTimeField()
    acknowledged_at = serializers.DateTimeField(allow_null=True)
    acknowledged_by = AlertActorSerializer(allow_null=True)
    acknowledge_note = serializers.CharField(allow_blank=True)
    resolved_at = serializers.DateTimeField(allow_null=True)
    resolved_by = AlertActorSerializer(allow_null=True)
    resolve_note = serializers.CharField(allow_blank=True)


class AlertFilterSerializer(serializers.Serializer):
    status = serializers.ChoiceField(choices=AlertStatus.choices, required=False)
    severity = serializers.ChoiceField(choices=AlertSeverity.choices, required=False)
    patient = serializers.UUIDField(required=False)


class AlertAcknowledgeSerializer(serializers.Serializer):
    note = StrictCharField(max_length=NOTE_MAX, allow_blank=True, required=False, default="")


class AlertResolveSerializer(serializers.Serializer):
    note = StrictCharField(max_length=NOTE_MAX, help_text="How it was resolved; encrypted at rest.")
