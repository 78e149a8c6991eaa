"""Devices in and out (SPEC §7). The answer describes the caller's own row, never anyone else's."""

from django.core.validators import RegexValidator
from rest_framework import serializers

from backend.api.fields import StrictCharField
from reminders.models import Platform


class DeviceRegisterSerializer(serializers.Serializer):
    platform = serializers.ChoiceField(choices=Platform.choices)
    # FCM registration tokens and APNs device tokens: letters, digits and a little punctuation.
    token = StrictCharField(
        min_length=1,
        max_length=512,
        trim_whitespace=False,
        validators=[RegexValidator(r"\A[A-Za-z0-9:_\-.]+\Z", message="Not a push token.", code="invalid_token")],
        help_text="The FCM registration token of this app install.",
    )


class DeviceSerializer(serializers.Serializer):
    id = serializers.UUIDField(read_only=True)
    platform = serializers.ChoiceField(choices=Platform.choices, read_only=True)
    active = serializers.BooleanField(read_only=True)
    created_at = serializers.DateTimeField(read_only=True)
