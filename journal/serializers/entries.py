from datetime import timedelta
from decimal import Decimal

from django.utils import timezone
from drf_spectacular.utils import PolymorphicProxySerializer
from rest_framework import serializers

from accounts.models import SUBSTANCES
from accounts.serializers import CrisisResourceSerializer
from backend.api.fields import (
    StrictCharField,
    StrictDateTimeField,
    StrictIntegerField,
    StrictNumberField,
    StrictUUIDField,
)
from journal.models import COPING, TRIGGERS, EntryKind, EntryRevision

FUTURE_TOLERANCE = timedelta(minutes=5)
PAST_LIMIT_BEFORE_PATIENT = timedelta(days=30)
REQUIRED_BY_KIND = {
    EntryKind.CHECK_IN: ("craving", "mood"),
    EntryKind.CRAVING: ("craving",),
    EntryKind.USE: ("substance",),
}


def _scale(**kwargs):
    return StrictIntegerField(min_value=0, max_value=10, required=False, allow_null=True, **kwargs)


class VocabularyListField(serializers.ListField):
    """Up to ten unique words from a fixed vocabulary."""

    def __init__(self, vocabulary, **kwargs):
        super().__init__(child=serializers.ChoiceField(choices=vocabulary), max_length=10, required=False, **kwargs)

    def to_internal_value(self, data):
        values = super().to_internal_value(data)
        if len(set(values)) != len(values):
            raise serializers.ValidationError("Each word may appear once.", code="duplicate")
        return values


class SleepHoursField(StrictNumberField):
    default_error_messages = {"step": "Sleep is counted in quarter hours (e.g. 7.25)."}

    def __init__(self, **kwargs):
        super().__init__(max_digits=6, decimal_places=2, min_value=Decimal(0), max_value=Decimal(24), **kwargs)

    def to_internal_value(self, data):
        value = super().to_internal_value(data)
        if (value * 4) % 1 != 0:
            self.fail("step")
        return value


def content_errors(content: dict, patient, now) -> tuple[dict, dict]:
    """Cross-field rules of SPEC §5 over a whole entry's content: (messages, codes) by field."""
    messages: dict[str, list[str]] = {}
    codes: dict[str, list[str]] = {}

    def add(field: str, message: str, code: str) -> None:
        messages.setdefault(field, []).append(message)
        codes.setdefault(field, []).append(code)

    for field in REQUIRED_BY_KIND.get(content.get("kind"), ()):
        if content.get(field) is None:
            add(field, f"A {content['kind']} entry needs {field}.", "required")
    occurred_at = content.get("occurred_at")
    if occurred_at is not None:
        if occurred_at > now + FUTURE_TOLERANCE:
            add("occurred_at", "This time is in the future.", "occurred_at_in_future")
        elif occurred_at < patient.created_at - PAST_LIMIT_BEFORE_PATIENT:
            add("occurred_at", "This time is too long before you joined.", "occurred_at_too_old")
    return messages, codes


def as_validation_error(messages: dict, codes: dict) -> serializers.ValidationError:
    return serializers.ValidationError(
        {
            field: [serializers.ErrorDetail(m, code=c) for m, c in zip(messages[field], codes[field], strict=True)]
            for field in messages
        }
    )


class EntryInputSerializer(serializers.Serializer):
    """What a phone may send for an entry. Server-owned fields are not fields here, so they are
    never taken from a body."""

    id = StrictUUIDField(required=False)
    kind = serializers.ChoiceField(choices=EntryKind.choices)
    occurred_at = StrictDateTimeField()
    craving = _scale()
    mood = _scale()
    anxiety = _scale()
    sleep_hours = SleepHoursField(required=False, allow_null=True)
    substance = serializers.ChoiceField(choices=SUBSTANCES, required=False, allow_null=True)
    amount = StrictCharField(max_length=100, required=False, allow_blank=True, trim_whitespace=False)
    triggers = VocabularyListField(TRIGGERS)
    coping = VocabularyListField(COPING)
    note = StrictCharField(max_length=2000, required=False, allow_blank=True, trim_whitespace=False)
    prompt_id = StrictUUIDField(required=False, allow_null=True)

    def validate(self, attrs):
        if not self.partial:
            messages, codes = content_errors(attrs, self.context["patient"], timezone.now())
            if messages:
                raise as_validation_error(messages, codes)
        return attrs


class SyncItemSerializer(EntryInputSerializer):
    base_version = StrictIntegerField(min_value=1, required=False)


class SyncRequestSerializer(serializers.Serializer):
    # Items may be anything here, null too: each is validated on its own, so one bad item does not
    # sink the others (SPEC §5).
    entries = serializers.ListField(child=serializers.JSONField(allow_null=True), max_length=500, allow_empty=True)


class EntrySerializer(serializers.Serializer):
    """An entry as the API shows it. Declared field by field rather than as a ModelSerializer:
    this runs on every write and list, and a ModelSerializer rebuilds its fields per instance."""

    id = serializers.UUIDField()
    kind = serializers.CharField()
    occurred_at = serializers.DateTimeField()
    local_date = serializers.DateField()
    craving = serializers.IntegerField(allow_null=True)
    mood = serializers.IntegerField(allow_null=True)
    anxiety = serializers.IntegerField(allow_null=True)
    sleep_hours = serializers.FloatField(allow_null=True)
    substance = serializers.CharField(allow_null=True)
    amount = serializers.CharField(allow_blank=True)
    triggers = serializers.ListField(child=serializers.CharField())
    coping = serializers.ListField(child=serializers.CharField())
    note = serializers.CharField(allow_blank=True)
    prompt_id = serializers.UUIDField(allow_null=True)
    received_at = serializers.DateTimeField()
    late = serializers.BooleanField()
    version = serializers.IntegerField()
    edited = serializers.BooleanField()
    created_at = serializers.DateTimeField()
    updated_at = serializers.DateTimeField()

    def to_representation(self, entry) -> dict:
        # Written out by hand: this runs for every entry written and listed, and rendering through
        # the declared fields (built and deep-copied per serializer) was a fifth of a POST's CPU.
        # The declared fields stay the schema; a test holds the two renderings equal.
        zone = timezone.get_current_timezone()
        return {
            "id": str(entry.id),
            "kind": entry.kind,
            "occurred_at": _iso(entry.occurred_at, zone),
            "local_date": entry.local_date.isoformat(),
            "craving": entry.craving,
            "mood": entry.mood,
            "anxiety": entry.anxiety,
            "sleep_hours": float(entry.sleep_hours) if entry.sleep_hours is not None else None,
            "substance": entry.substance,
            "amount": entry.amount,
            "triggers": [str(word) for word in entry.triggers],
            "coping": [str(word) for word in entry.coping],
            "note": entry.note,
            "prompt_id": str(entry.prompt_id) if entry.prompt_id is not None else None,
            "received_at": _iso(entry.received_at, zone),
            "late": entry.late,
            "version": entry.version,
            "edited": entry.edited,
            "created_at": _iso(entry.created_at, zone),
            "updated_at": _iso(entry.updated_at, zone),
        }


def _iso(moment, zone) -> str:
    """As DRF's DateTimeField renders it: in the current zone, ISO 8601, UTC as `Z`."""
    text = moment.astimezone(zone).isoformat()
    return text[:-6] + "Z" if text.endswith("+00:00") else text


class SupportSerializer(serializers.Serializer):
    message = serializers.CharField()
    resources = CrisisResourceSerializer(many=True)  # the clinic's crisis resources, as /me shows them
    monitored = serializers.CharField()


class EntryWithSupportSerializer(EntrySerializer):
    support = SupportSerializer(required=False, help_text="Present when this write fired a high or urgent alert.")


SYNC_STATUSES = ("created", "unchanged", "updated", "conflict", "invalid")


class SyncResultSerializer(serializers.Serializer):
    id = serializers.UUIDField(allow_null=True)
    status = serializers.ChoiceField(choices=SYNC_STATUSES)
    version = serializers.IntegerField(allow_null=True)
    errors = serializers.DictField(required=False)


class SyncResponseSerializer(serializers.Serializer):
    results = SyncResultSerializer(many=True)
    server_time = serializers.DateTimeField()
    support = SupportSerializer(required=False)


class TombstoneSerializer(serializers.Serializer):
    """A deleted entry in the changes feed: its id and `deleted: true`, nothing of its content."""

    id = serializers.UUIDField()
    deleted = serializers.BooleanField(help_text="Always true.")


class ChangesResponseSerializer(serializers.Serializer):
    # Documents the feed's two shapes (oneOf): the view builds the list itself.
    results = PolymorphicProxySerializer(
        component_name="EntryChange",
        serializers=[EntrySerializer, TombstoneSerializer],
        resource_type_field_name=None,
        many=True,
        help_text="Changed entries; deleted ones as {id, deleted: true}.",
    )
    cursor = serializers.CharField()
    has_more = serializers.BooleanField()


class EntryRevisionSerializer(serializers.ModelSerializer):
    class Meta:
        model = EntryRevision
        fields = ["version", "content", "note", "replaced_at"]

    def to_representation(self, instance):
        body = super().to_representation(instance)
        occurred_at = body["content"].get("occurred_at")
        if occurred_at and occurred_at.endswith("+00:00"):  # stored in the comparable form; out with Z (SPEC §3)
            body["content"] = {**body["content"], "occurred_at": occurred_at[: -len("+00:00")] + "Z"}
        return body
