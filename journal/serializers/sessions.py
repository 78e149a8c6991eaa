"""Therapy sessions in and out (SPEC §6). The care team sees notes; the patient never does."""

from decimal import Decimal

from rest_framework import serializers

from backend.api.fields import StrictCharField, StrictDateTimeField, StrictIntegerField, StrictNumberField
from journal.models import KetamineRoute, SessionKind


class SessionSerializer(serializers.Serializer):
    """The care team's view of a session, and what they may write (route and dose only for
    ketamine; that rule is the service's, because a PATCH needs the stored kind)."""

    id = serializers.UUIDField(read_only=True)
    kind = serializers.ChoiceField(choices=SessionKind.choices)
    starts_at = StrictDateTimeField()
    local_date = serializers.DateField(read_only=True, help_text="The patient's journal day of starts_at.")
    duration_minutes = StrictIntegerField(min_value=1, max_value=1440)
    route = serializers.ChoiceField(
        choices=KetamineRoute.choices, allow_null=True, required=False, help_text="Ketamine sessions only."
    )
    dose_mg = StrictNumberField(
        max_digits=5,
        decimal_places=1,
        min_value=Decimal("0"),
        max_value=Decimal("2000"),
        coerce_to_string=False,
        allow_null=True,
        required=False,
        help_text="Ketamine sessions only; at most one decimal.",
    )
    notes = StrictCharField(
        max_length=5000, allow_blank=True, required=False, help_text="Clinician-only; encrypted at rest."
    )
    created_at = serializers.DateTimeField(read_only=True)
    updated_at = serializers.DateTimeField(read_only=True)


class PatientSessionSerializer(serializers.Serializer):
    """A patient's own sessions: no clinician notes, no author."""

    id = serializers.UUIDField(read_only=True)
    kind = serializers.ChoiceField(choices=SessionKind.choices, read_only=True)
    starts_at = serializers.DateTimeField(read_only=True)
    local_date = serializers.DateField(read_only=True)
    duration_minutes = serializers.IntegerField(read_only=True)
    route = serializers.ChoiceField(choices=KetamineRoute.choices, allow_null=True, read_only=True)
    dose_mg = serializers.DecimalField(
        max_digits=5,
        decimal_places=1,
        min_value=Decimal("0"),
        max_value=Decimal("2000"),
        coerce_to_string=False,
        allow_null=True,
        read_only=True,
    )
    created_at = serializers.DateTimeField(read_only=True)
    updated_at = serializers.DateTimeField(read_only=True)
