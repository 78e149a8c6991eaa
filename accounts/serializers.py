import zoneinfo

from rest_framework import serializers

from accounts.models import SUBSTANCES, AccessLog, Patient, PatientStatus, User
from backend.api.fields import StrictCharField, StrictUUIDField, WallTimeField

_ZONES = zoneinfo.available_timezones()


class TimezoneField(StrictCharField):
    default_error_messages = {"invalid_timezone": "{value!r} is not an IANA time zone (e.g. Europe/Berlin)."}

    def to_internal_value(self, data):
        value = super().to_internal_value(data)
        if value not in _ZONES:
            self.fail("invalid_timezone", value=value[:64])
        return value


class QuietHoursSerializer(serializers.Serializer):
    start = WallTimeField()
    end = WallTimeField()

    def validate(self, attrs):
        if attrs["start"] == attrs["end"]:
            raise serializers.ValidationError(
                "Quiet hours must not start and end at the same time.", code="empty_range"
            )
        return attrs


class SubstancesField(serializers.ListField):
    child = serializers.ChoiceField(choices=SUBSTANCES)

    def __init__(self, **kwargs):
        kwargs.setdefault("max_length", len(SUBSTANCES))
        super().__init__(**kwargs)

    def to_internal_value(self, data):
        values = super().to_internal_value(data)
        if len(set(values)) != len(values):
            raise serializers.ValidationError("Each substance may appear once.", code="duplicate")
        return values


# --- Auth ---------------------------------------------------------------------------------------


class LoginSerializer(serializers.Serializer):
    email = StrictCharField(max_length=254)
    password = StrictCharField(max_length=256, trim_whitespace=False)
    otp = StrictCharField(
        max_length=10,
        required=False,
        allow_blank=True,
        help_text=(
            "The current 6-digit code from the authenticator app (TOTP). Required for a clinician who has "
            "set up two-factor sign-in on the dashboard, and for every clinician when the server requires "
            "two-factor sign-in (the production default); patients leave it out. Each code works once."
        ),
    )


class RefreshSerializer(serializers.Serializer):
    refresh = StrictCharField(max_length=4096)


class TokenPairSerializer(serializers.Serializer):
    access = serializers.CharField()
    refresh = serializers.CharField()


class EnrollSerializer(serializers.Serializer):
    code = StrictCharField(max_length=64)
    email = serializers.EmailField(max_length=254)
    password = StrictCharField(max_length=256, trim_whitespace=False)
    consent_version = StrictCharField(max_length=32)


class ConsentSerializer(serializers.Serializer):
    version = serializers.CharField()
    text = serializers.CharField()
    clinic = serializers.DictField(child=serializers.CharField())


class PasswordResetSerializer(serializers.Serializer):
    email = StrictCharField(max_length=254)


class PasswordResetConfirmSerializer(serializers.Serializer):
    token = StrictCharField(max_length=200)
    password = StrictCharField(max_length=256, trim_whitespace=False)


class PasswordChangeSerializer(serializers.Serializer):
    current_password = StrictCharField(max_length=256, trim_whitespace=False)
    new_password = StrictCharField(max_length=256, trim_whitespace=False)


# --- Profile ------------------------------------------------------------------------------------


class ClinicRefSerializer(serializers.Serializer):
    id = serializers.UUIDField()
    name = serializers.CharField()


class CrisisResourceSerializer(serializers.Serializer):
    name = serializers.CharField()
    phone = serializers.CharField(allow_blank=True)
    sms = serializers.CharField(allow_blank=True)
    url = serializers.CharField(allow_blank=True)


class MeSerializer(serializers.Serializer):
    """The signed-in user's profile (SPEC §4). For a patient the editable fields live on the
    patient record, so `display_name`, `timezone` and `quiet_hours` are read from there."""

    id = serializers.UUIDField(read_only=True)
    patient_id = serializers.SerializerMethodField()
    email = serializers.EmailField(read_only=True)
    role = serializers.CharField(read_only=True)
    is_clinic_admin = serializers.BooleanField(read_only=True)
    display_name = serializers.SerializerMethodField()
    timezone = serializers.SerializerMethodField()
    quiet_hours = serializers.SerializerMethodField()
    clinic = serializers.SerializerMethodField()
    crisis_resources = serializers.SerializerMethodField()

    def _patient(self, user: User) -> Patient | None:
        return user.patient if user.is_patient else None

    def get_patient_id(self, user) -> str | None:
        patient = self._patient(user)
        return str(patient.pk) if patient else None

    def get_display_name(self, user) -> str:
        patient = self._patient(user)
        return patient.display_name if patient else user.display_name

    def get_timezone(self, user) -> str | None:
        patient = self._patient(user)
        return patient.timezone if patient else None

    def get_quiet_hours(self, user) -> QuietHoursSerializer(allow_null=True):  # type: ignore[valid-type]
        patient = self._patient(user)
        if not patient or patient.quiet_hours_start is None:
            return None
        return QuietHoursSerializer({"start": patient.quiet_hours_start, "end": patient.quiet_hours_end}).data

    def get_clinic(self, user) -> ClinicRefSerializer(allow_null=True):  # type: ignore[valid-type]
        return {"id": str(user.clinic.pk), "name": user.clinic.name} if user.clinic else None

    def get_crisis_resources(self, user) -> CrisisResourceSerializer(many=True):  # type: ignore[valid-type]
        # Every resource, whatever severity it is shown for in a support block: the app's help screen.
        return user.clinic.crisis_resources_shown() if user.clinic else []


class MeUpdateSerializer(serializers.Serializer):
    display_name = StrictCharField(max_length=120, min_length=1, required=False)
    timezone = TimezoneField(max_length=64, required=False)
    quiet_hours = QuietHoursSerializer(required=False, allow_null=True)

    def validate(self, attrs):
        user = self.context["request"].user
        if not user.is_patient and set(attrs) - {"display_name"}:
            raise serializers.ValidationError(
                {key: ["Only patients have this setting."] for key in set(attrs) - {"display_name"}}, code="not_allowed"
            )
        return attrs


class LoginResponseSerializer(TokenPairSerializer):
    user = MeSerializer()


# --- Patients (clinician side) ------------------------------------------------------------------


class CareTeamMemberSerializer(serializers.Serializer):
    id = serializers.UUIDField(source="pk")
    display_name = serializers.CharField()
    email = serializers.EmailField()
    is_clinic_admin = serializers.BooleanField()


class PatientSerializer(serializers.ModelSerializer):
    quiet_hours = serializers.SerializerMethodField()
    enrolled = serializers.SerializerMethodField()

    class Meta:
        model = Patient
        fields = ["id", "display_name", "timezone", "substances", "status", "quiet_hours", "enrolled", "created_at"]
        read_only_fields = fields

    def get_quiet_hours(self, patient) -> QuietHoursSerializer(allow_null=True):  # type: ignore[valid-type]
        if patient.quiet_hours_start is None:
            return None
        return QuietHoursSerializer({"start": patient.quiet_hours_start, "end": patient.quiet_hours_end}).data

    def get_enrolled(self, patient) -> bool:
        return patient.user_id is not None


class EnrollmentSerializer(serializers.Serializer):
    code = serializers.CharField()
    expires_at = serializers.DateTimeField()


class PatientCreateSerializer(serializers.Serializer):
    display_name = StrictCharField(max_length=120, min_length=1)
    timezone = TimezoneField(max_length=64)
    substances = SubstancesField(required=False, default=list)


class PatientCreatedSerializer(PatientSerializer):
    enrollment = EnrollmentSerializer(read_only=True)

    class Meta(PatientSerializer.Meta):
        fields = PatientSerializer.Meta.fields + ["enrollment"]
        read_only_fields = fields


class PatientUpdateSerializer(serializers.Serializer):
    display_name = StrictCharField(max_length=120, min_length=1, required=False)
    timezone = TimezoneField(max_length=64, required=False)
    substances = SubstancesField(required=False)
    status = serializers.ChoiceField(choices=PatientStatus.choices, required=False)


class CareTeamChangeSerializer(serializers.Serializer):
    clinician = StrictUUIDField()


# --- Access log ---------------------------------------------------------------------------------


class ActorSerializer(serializers.Serializer):
    id = serializers.UUIDField(source="pk")
    display_name = serializers.CharField()


class AccessLogSerializer(serializers.ModelSerializer):
    actor = ActorSerializer()
    patient = serializers.UUIDField(source="patient_id")

    class Meta:
        model = AccessLog
        fields = ["id", "at", "actor", "patient", "action", "path", "ip", "user_agent"]


class OwnAccessLogSerializer(serializers.ModelSerializer):
    """What a patient sees of who looked at their data: who, when, what kind of access."""

    actor = ActorSerializer()

    class Meta:
        model = AccessLog
        fields = ["id", "at", "actor", "action"]


class AuditFilterSerializer(serializers.Serializer):
    patient = serializers.UUIDField(required=False)
    actor = serializers.UUIDField(required=False)
    to = serializers.DateField(required=False)

    def get_fields(self):
        fields = super().get_fields()
        fields["from"] = serializers.DateField(required=False)  # a Python keyword, so declared here
        return fields
