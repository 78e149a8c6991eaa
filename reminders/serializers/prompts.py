"""Prompt inbox and compliance shapes (SPEC §7)."""

from datetime import date, timedelta

from rest_framework import serializers
from rest_framework.exceptions import ErrorDetail

from backend.api.fields import StrictDateField
from reminders.models import Prompt
from reminders.selectors.prompts import INBOX_FILTERS

DEFAULT_RANGE_DAYS = 30
MAX_RANGE_DAYS = 731


class PromptSerializer(serializers.ModelSerializer):
    class Meta:
        model = Prompt
        fields = ["id", "kind", "instrument", "message", "scheduled_for", "sent_at", "expires_at", "status"]
        read_only_fields = fields
        extra_kwargs = {
            "instrument": {"help_text": "The questionnaire to answer, for `assessment` prompts."},
            "message": {"help_text": "The clinic's text, for `custom` prompts."},
            "scheduled_for": {"help_text": "When the prompt was due to go out."},
            "sent_at": {"help_text": "When it was delivered; null until then."},
            "expires_at": {"help_text": "After this an answer is late and the prompt expires."},
        }


class InboxFilterSerializer(serializers.Serializer):
    status = serializers.ChoiceField(
        choices=INBOX_FILTERS,
        required=False,
        error_messages={"invalid_choice": f"Unknown status; use one of {', '.join(INBOX_FILTERS)}."},
    )


class ComplianceRangeSerializer(serializers.Serializer):
    """`from`/`to` journal days; the last 30 ending today (the patient's zone) by default.

    Context: `today`, the patient's journal day now.
    """

    to = StrictDateField(required=False)

    def get_fields(self):
        fields = super().get_fields()
        fields["from"] = StrictDateField(required=False)  # a Python keyword, so declared here
        return fields

    def validate(self, attrs):
        to_date: date = attrs.get("to") or self.context["today"]
        from_date: date = attrs.get("from") or to_date - timedelta(days=DEFAULT_RANGE_DAYS - 1)
        if from_date > to_date:
            raise serializers.ValidationError(
                {"from": [ErrorDetail("`from` must not be after `to`.", code="from_after_to")]}
            )
        if (to_date - from_date).days + 1 > MAX_RANGE_DAYS:
            raise serializers.ValidationError(
                {"to": [ErrorDetail(f"A range holds at most {MAX_RANGE_DAYS} days.", code="range_too_long")]}
            )
        return {"from": from_date, "to": to_date}


def _count(help_text: str) -> serializers.IntegerField:
    return serializers.IntegerField(min_value=0, help_text=help_text)


class FunnelSerializer(serializers.Serializer):
    """The CREMAS funnel over the prompts due (by journal day) in the range."""

    scheduled = _count("Every prompt due in the range, whatever became of it.")
    skipped = _count("Never sent, by rule (quiet hours, the day's check-in already done).")
    failed = _count("Never delivered (no device or email, or delivery gave up).")
    sent = _count("Delivered, whatever happened after.")
    received = _count("Of those sent, seen by the phone (a receipt, or an answer: a completion counts as received).")
    completed = _count("Answered in time by an entry or assessment carrying the prompt's id.")
    expired = _count(
        "Sent but never answered in time. A prompt that expired before it could be sent (e.g. delivery kept "
        "failing until it expired) is not counted here: it counts only in `scheduled`."
    )
    completion_rate = serializers.FloatField(
        allow_null=True, help_text="completed / sent, from 0 to 1; null when nothing was sent."
    )
    median_latency_seconds = serializers.FloatField(
        allow_null=True,
        help_text="Median of (answer time − send time) over the completed prompts, in seconds; null when none.",
    )


class ComplianceByKindSerializer(serializers.Serializer):
    """One funnel per PromptKind; every kind is present, with zeros when it had no prompts."""

    check_in = FunnelSerializer()
    assessment = FunnelSerializer()
    custom = FunnelSerializer()
    craving_check = FunnelSerializer(help_text="Intensive sampling after a ketamine session.")


class ComplianceSerializer(FunnelSerializer):
    """Prompt compliance over a range of journal days: the CREMAS funnel in total and by kind."""

    to = serializers.DateField(help_text="Last journal day of the range (inclusive).")
    by_kind = ComplianceByKindSerializer(help_text="The same funnel for each prompt kind (every kind is present).")

    def get_fields(self):
        fields = super().get_fields()
        # `from` is a Python keyword, so it is declared here; the range leads the body.
        head = {"from": serializers.DateField(help_text="First journal day of the range (inclusive)."),
                "to": fields.pop("to")}  # fmt: skip
        return {**head, **fields}
