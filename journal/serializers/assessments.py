"""Questionnaire requests and responses (SPEC §6), validated against the catalogue."""

from datetime import datetime, timedelta

from django.utils import timezone
from rest_framework import serializers
from rest_framework.exceptions import ErrorDetail

from backend.api.fields import StrictDateTimeField, StrictIntegerField, StrictUUIDField
from journal.instruments import instrument
from journal.models import Assessment, Instrument
from journal.serializers.entries import SupportSerializer  # one `Support` component in the schema

# The same limits as an entry's occurred_at (SPEC §5).
FUTURE_TOLERANCE = timedelta(minutes=5)
BEFORE_ENROLLMENT_LIMIT = timedelta(days=30)
MAX_ANSWERS = 100  # bounds the work on a hostile list; every real instrument is far below


def _instrument_field(**kwargs) -> serializers.ChoiceField:
    # The default message echoes the input back; this one does not (NUL bytes, long junk).
    message = f"Unknown instrument; use one of {', '.join(Instrument.values)}."
    return serializers.ChoiceField(choices=Instrument.choices, error_messages={"invalid_choice": message}, **kwargs)


class AssessmentCreateSerializer(serializers.Serializer):
    """A completed questionnaire as the phone sends it; the server scores it."""

    # Context: `patient` (the limits on completed_at hang on when they joined) and `now`.

    id = StrictUUIDField(
        required=False, help_text="Made by the phone so a retry is safe; the server makes one if absent."
    )
    instrument = _instrument_field()
    answers = serializers.ListField(
        child=StrictIntegerField(),
        max_length=MAX_ANSWERS,
        help_text="One integer per item, in item order (see GET /api/v1/instruments/).",
    )
    completed_at = StrictDateTimeField()
    prompt_id = StrictUUIDField(required=False, allow_null=True, help_text="The prompt this answers.")

    def validate(self, attrs):
        errors: dict = {}
        completed_at_errors = self._completed_at_errors(attrs["completed_at"])
        if completed_at_errors:
            errors["completed_at"] = completed_at_errors
        answer_errors = self._answer_errors(attrs["instrument"], attrs["answers"])
        if answer_errors:
            errors["answers"] = answer_errors
        if errors:
            raise serializers.ValidationError(errors)
        return attrs

    def _completed_at_errors(self, completed_at: datetime) -> list[ErrorDetail]:
        now = self.context.get("now") or timezone.now()
        patient = self.context["patient"]
        if completed_at > now + FUTURE_TOLERANCE:
            return [ErrorDetail("This time is in the future; check the phone's clock.", code="completed_at_in_future")]
        if completed_at < patient.created_at - BEFORE_ENROLLMENT_LIMIT:
            return [
                ErrorDetail("This time is more than 30 days before you joined the clinic.", code="completed_at_too_old")
            ]
        return []

    @staticmethod
    def _answer_errors(code: str, answers: list[int]) -> list[ErrorDetail] | dict[str, list[ErrorDetail]]:
        spec = instrument(code)
        if len(answers) != spec.item_count:
            message = f"{spec.name} has {spec.item_count} items; give one answer for each (got {len(answers)})."
            return [ErrorDetail(message, code="wrong_count")]
        by_item = {}
        for index, answer in enumerate(answers):
            low, high = spec.answer_range(index)
            if not low <= answer <= high:
                by_item[str(index)] = [ErrorDetail(f"Answer from {low} to {high}.", code="out_of_range")]
        return by_item


class AssessmentFilterSerializer(serializers.Serializer):
    instrument = _instrument_field(required=False, allow_blank=True)  # `?instrument=` means no filter


class AssessmentSerializer(serializers.ModelSerializer):
    answers = serializers.ListField(child=serializers.IntegerField(), read_only=True)
    severity = serializers.CharField(
        read_only=True,
        allow_null=True,
        help_text="The severity band (snake_case), or null for instruments without bands (PACS).",
    )

    class Meta:
        model = Assessment
        fields = [
            "id",
            "instrument",
            "answers",
            "score",
            "severity",
            "completed_at",
            "local_date",
            "received_at",
            "late",
            "prompt_id",
        ]
        read_only_fields = fields


class AssessmentCreatedSerializer(AssessmentSerializer):
    """Schema of the POST answer: `support` appears only when the write fired a high or urgent alert."""

    support = SupportSerializer(required=False)

    class Meta(AssessmentSerializer.Meta):
        fields = [*AssessmentSerializer.Meta.fields, "support"]
        read_only_fields = fields


# --- The catalogue --------------------------------------------------------------------------------


class InstrumentOptionSerializer(serializers.Serializer):
    value = serializers.IntegerField()
    label = serializers.CharField()


class InstrumentItemSerializer(serializers.Serializer):
    text = serializers.CharField()
    options = InstrumentOptionSerializer(many=True)


class SeverityBandSerializer(serializers.Serializer):
    min = serializers.IntegerField()
    max = serializers.IntegerField()
    severity = serializers.CharField()
    label = serializers.CharField()


class InstrumentScoringSerializer(serializers.Serializer):
    min = serializers.IntegerField(source="min_score")
    max = serializers.IntegerField(source="max_score")
    bands = SeverityBandSerializer(many=True, help_text="Empty when the total has no severity bands.")


class InstrumentSerializer(serializers.Serializer):
    # A plain string in the schema: a second enum of the same choices would be named CodeEnum next to
    # InstrumentEnum, and drf-spectacular warns (which fails `check --deploy`).
    code = serializers.CharField(help_text="The instrument's code, as `instrument` in an assessment.")
    name = serializers.CharField()
    instructions = serializers.CharField()
    items = InstrumentItemSerializer(many=True)
    scoring = InstrumentScoringSerializer(source="*")


class InstrumentListSerializer(serializers.Serializer):
    """The catalogue in the list shape every list uses; it always fits on one page."""

    next = serializers.URLField(allow_null=True)
    previous = serializers.URLField(allow_null=True)
    results = InstrumentSerializer(many=True)
