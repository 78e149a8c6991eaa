import uuid
import zoneinfo
from datetime import date, datetime, time
from decimal import Decimal

from django.conf import settings
from django.contrib.auth.models import AbstractBaseUser, BaseUserManager, PermissionsMixin
from django.core.exceptions import ValidationError
from django.core.validators import MaxValueValidator, MinValueValidator
from django.db import models
from django.db.models import Q
from django.db.models.functions import Lower

SUBSTANCES = ("alcohol", "cocaine", "opioids", "stimulants", "cannabis", "nicotine", "sedatives", "other")


# Each resource names the support severities it is shown for (SPEC §5: "the clinic's resources for
# that severity"); one without `severities` is shown for both. The defaults are the SPEC's: urgent →
# 988 (and the clinic's emergency line), high → the clinic's contact and the SAMHSA helpline.
SUPPORT_SEVERITIES = ("urgent", "high")
_RESOURCE_TEXTS = ("name", "phone", "sms", "url")


def validate_crisis_resources(value) -> None:
    """What a clinic admin may save (raw JSON in the admin): a list of resources, each an object
    with a name, optional phone, sms and url texts, and optional severities from
    SUPPORT_SEVERITIES. /me and every high or urgent write's support block read it."""
    if not isinstance(value, list):
        raise ValidationError("A list of resources, each {name, phone, sms, url, severities}.")
    for resource in value:
        if not isinstance(resource, dict) or not isinstance(resource.get("name"), str) or not resource["name"].strip():
            raise ValidationError("Each resource is an object with a name.")
        if any(not isinstance(resource.get(key, ""), str) for key in _RESOURCE_TEXTS):
            raise ValidationError(f"{resource['name']}: name, phone, sms and url are texts.")
        severities = resource.get("severities", list(SUPPORT_SEVERITIES))
        if not isinstance(severities, list) or any(severity not in SUPPORT_SEVERITIES for severity in severities):
            raise ValidationError(f"{resource['name']}: severities is a list of {', '.join(SUPPORT_SEVERITIES)}.")


def default_crisis_resources() -> list[dict]:
    return [
        {
            "name": "988 Suicide & Crisis Lifeline",
            "phone": "988",
            "sms": "988",
            "url": "https://988lifeline.org",
            "severities": ["urgent"],
        },
        {
            "name": "SAMHSA National Helpline",
            "phone": "1-800-662-4357",
            "sms": "",
            "url": "https://www.samhsa.gov/find-help/national-helpline",
            "severities": ["high"],
        },
    ]


class Clinic(models.Model):
    id = models.UUIDField(primary_key=True, default=uuid.uuid4, editable=False)
    name = models.CharField(max_length=200, unique=True)
    contact_phone = models.CharField(max_length=40, blank=True)
    emergency_phone = models.CharField(max_length=40, blank=True)
    crisis_resources = models.JSONField(
        default=default_crisis_resources, blank=True, validators=[validate_crisis_resources]
    )
    # Said plainly to patients: the journal is read in office hours, not watched around the clock.
    monitoring_statement = models.CharField(
        max_length=300, default="Your care team reads the journal on weekdays during office hours."
    )
    # Reminders by email when a patient has no active phone (SPEC §7); a clinic may forbid it.
    email_reminders_allowed = models.BooleanField(default=True)
    # Intensive sampling after each ketamine session (SPEC §7): craving checks on the days after.
    sampling_days = models.PositiveSmallIntegerField(default=3)
    sampling_prompts_per_day = models.PositiveSmallIntegerField(default=3)
    sampling_window_start = models.TimeField(default=time(9, 0))
    sampling_window_end = models.TimeField(default=time(21, 0))
    sampling_min_gap_minutes = models.PositiveSmallIntegerField(default=60)
    # Alert thresholds (SPEC §9); the defaults are the SPEC's.
    alert_self_harm_item9_min = models.PositiveSmallIntegerField(
        default=1, validators=[MinValueValidator(1), MaxValueValidator(3)]
    )
    alert_craving_high_level = models.PositiveSmallIntegerField(
        default=8, validators=[MinValueValidator(1), MaxValueValidator(10)]
    )
    alert_craving_high_days = models.PositiveSmallIntegerField(
        default=2, validators=[MinValueValidator(1), MaxValueValidator(14)]
    )
    alert_phq9_total_min = models.PositiveSmallIntegerField(
        default=20, validators=[MinValueValidator(1), MaxValueValidator(27)]
    )
    alert_phq9_rise_min = models.PositiveSmallIntegerField(
        default=5, validators=[MinValueValidator(1), MaxValueValidator(27)]
    )
    alert_craving_rise_min = models.DecimalField(
        max_digits=3, decimal_places=1, default=Decimal("2.0"),
        validators=[MinValueValidator(Decimal("0.1")), MaxValueValidator(Decimal("10"))],
    )  # fmt: skip
    alert_craving_rise_min_entries = models.PositiveSmallIntegerField(
        default=3, validators=[MinValueValidator(1), MaxValueValidator(50)]
    )
    alert_mood_low_level = models.PositiveSmallIntegerField(
        default=2, validators=[MinValueValidator(0), MaxValueValidator(10)]
    )
    alert_mood_low_days = models.PositiveSmallIntegerField(
        default=3, validators=[MinValueValidator(1), MaxValueValidator(14)]
    )
    alert_disengaged_days = models.PositiveSmallIntegerField(
        default=3, validators=[MinValueValidator(1), MaxValueValidator(30)]
    )
    created_at = models.DateTimeField(auto_now_add=True)

    def __str__(self) -> str:
        return self.name

    def crisis_resources_shown(self, severity: str | None = None) -> list[dict]:
        """The crisis resources as the app shows them ({name, phone, sms, url}, a missing text
        empty): all of them, or those shown for a support severity. Read leniently — rows saved
        before validation existed must not turn a patient's lapse into a 500 — so an unreadable
        resource is left out and unreadable severities count as both."""
        resources = self.crisis_resources if isinstance(self.crisis_resources, list) else []
        shown = []
        for resource in resources:
            if not isinstance(resource, dict) or not resource.get("name"):
                continue
            severities = resource.get("severities")
            if severity is not None and isinstance(severities, list) and severity not in severities:
                continue
            shown.append({key: str(resource.get(key) or "") for key in _RESOURCE_TEXTS})
        return shown

    def current_consent(self) -> "ConsentVersion | None":
        return self.consent_versions.order_by("-published_at").first()


class ConsentVersion(models.Model):
    clinic = models.ForeignKey(Clinic, on_delete=models.CASCADE, related_name="consent_versions")
    version = models.CharField(max_length=32)
    text = models.TextField()
    published_at = models.DateTimeField()

    class Meta:
        constraints = [models.UniqueConstraint(fields=["clinic", "version"], name="consent_version_unique_per_clinic")]

    def __str__(self) -> str:
        return f"{self.clinic} consent {self.version}"


class Role(models.TextChoices):
    PATIENT = "patient"
    CLINICIAN = "clinician"


class UserManager(BaseUserManager):
    use_in_migrations = True

    def create_user(self, email: str, password: str | None = None, **fields) -> "User":
        user = self.model(email=self.normalize_email(email).lower(), **fields)
        user.set_password(password)
        user.save(using=self._db)
        return user

    def create_superuser(self, email: str, password: str | None = None, **fields) -> "User":
        fields.setdefault("role", Role.CLINICIAN)
        fields.update(is_staff=True, is_superuser=True)
        return self.create_user(email, password, **fields)


class User(AbstractBaseUser, PermissionsMixin):
    """Everyone who signs in: patients (through the phone app) and clinicians (dashboard, API)."""

    id = models.UUIDField(primary_key=True, default=uuid.uuid4, editable=False)
    email = models.EmailField(max_length=254, unique=True)
    role = models.CharField(max_length=16, choices=Role.choices)
    clinic = models.ForeignKey(Clinic, on_delete=models.PROTECT, null=True, blank=True, related_name="users")
    display_name = models.CharField(max_length=120, blank=True)
    is_clinic_admin = models.BooleanField(default=False)
    is_staff = models.BooleanField(default=False)
    is_active = models.BooleanField(default=True)
    date_joined = models.DateTimeField(auto_now_add=True)

    objects = UserManager()

    USERNAME_FIELD = "email"
    EMAIL_FIELD = "email"
    REQUIRED_FIELDS: list[str] = []

    class Meta:
        constraints = [
            # Emails are stored lower-cased, so uniqueness is case-insensitive.
            models.CheckConstraint(condition=Q(email=Lower("email")), name="user_email_lowercase"),
            models.CheckConstraint(condition=Q(role__in=Role.values), name="user_role_valid"),
            models.CheckConstraint(
                condition=Q(is_clinic_admin=False) | Q(role=Role.CLINICIAN), name="user_admin_is_clinician"
            ),
        ]

    def __str__(self) -> str:
        return self.email

    def clean(self):
        super().clean()
        self.email = self.email.strip().lower()  # forms validate the lower-case constraint after this

    @property
    def is_patient(self) -> bool:
        return self.role == Role.PATIENT

    @property
    def is_clinician(self) -> bool:
        return self.role == Role.CLINICIAN and self.is_active


class PatientStatus(models.TextChoices):
    ACTIVE = "active"
    PAUSED = "paused"
    DISCHARGED = "discharged"


def validate_timezone(value: str) -> None:
    from django.core.exceptions import ValidationError

    if value not in zoneinfo.available_timezones():
        raise ValidationError(f"{value!r} is not an IANA time zone.", code="invalid_timezone")


def journal_day_in(zone: zoneinfo.ZoneInfo, moment: datetime) -> tuple[date, int]:
    """The journal day and local hour of an instant: the calendar date and hour of `moment` in
    `zone` (SPEC §3). Patient.journal_day for a patient; this for many patients of a few zones."""
    local = moment.astimezone(zone)
    return local.date(), local.hour


class Patient(models.Model):
    """A person in care. Exists before they enroll (the clinician creates it, then hands over a code)."""

    id = models.UUIDField(primary_key=True, default=uuid.uuid4, editable=False)
    clinic = models.ForeignKey(Clinic, on_delete=models.PROTECT, related_name="patients")
    user = models.OneToOneField(
        settings.AUTH_USER_MODEL, on_delete=models.PROTECT, null=True, blank=True, related_name="patient"
    )
    display_name = models.CharField(max_length=120)
    timezone = models.CharField(max_length=64, validators=[validate_timezone])
    quiet_hours_start = models.TimeField(null=True, blank=True)
    quiet_hours_end = models.TimeField(null=True, blank=True)
    substances = models.JSONField(default=list, blank=True)
    status = models.CharField(max_length=16, choices=PatientStatus.choices, default=PatientStatus.ACTIVE)
    created_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.SET_NULL, null=True, blank=True, related_name="+"
    )
    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)
    care_team = models.ManyToManyField(
        settings.AUTH_USER_MODEL,
        through="CareTeamMembership",
        through_fields=("patient", "clinician"),
        related_name="care_patients",
    )

    class Meta:
        constraints = [
            models.CheckConstraint(condition=Q(status__in=PatientStatus.values), name="patient_status_valid"),
            models.CheckConstraint(
                condition=Q(quiet_hours_start__isnull=True, quiet_hours_end__isnull=True)
                | Q(quiet_hours_start__isnull=False, quiet_hours_end__isnull=False),
                name="patient_quiet_hours_both_or_neither",
            ),
        ]
        indexes = [models.Index(fields=["clinic", "display_name"])]

    def __str__(self) -> str:
        return self.display_name

    @property
    def zone(self) -> zoneinfo.ZoneInfo:
        return zoneinfo.ZoneInfo(self.timezone)

    def journal_day(self, moment: datetime) -> tuple[date, int]:
        """The journal day and local hour of an instant in the patient's zone (SPEC §3). Computed
        once, at write time."""
        return journal_day_in(self.zone, moment)


class CareTeamMembership(models.Model):
    patient = models.ForeignKey(Patient, on_delete=models.CASCADE, related_name="care_team_memberships")
    clinician = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="care_memberships")
    added_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.SET_NULL, null=True, blank=True, related_name="+"
    )
    added_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        constraints = [models.UniqueConstraint(fields=["patient", "clinician"], name="care_team_member_once")]
        indexes = [models.Index(fields=["clinician", "patient"])]


class EnrollmentCode(models.Model):
    """A one-time code that links a phone to a patient. Only its HMAC is stored."""

    id = models.UUIDField(primary_key=True, default=uuid.uuid4, editable=False)
    patient = models.ForeignKey(Patient, on_delete=models.CASCADE, related_name="enrollment_codes")
    code_hash = models.CharField(max_length=64, unique=True)
    created_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.SET_NULL, null=True, blank=True, related_name="+"
    )
    created_at = models.DateTimeField(auto_now_add=True)
    expires_at = models.DateTimeField()
    used_at = models.DateTimeField(null=True, blank=True)
    revoked_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        constraints = [
            # Issuing a fresh code revokes the old one: at most one live code per patient.
            models.UniqueConstraint(
                fields=["patient"],
                condition=Q(used_at__isnull=True, revoked_at__isnull=True),
                name="enrollment_one_live_code_per_patient",
            )
        ]


class ConsentAcceptance(models.Model):
    patient = models.ForeignKey(Patient, on_delete=models.PROTECT, related_name="consent_acceptances")
    consent_version = models.ForeignKey(ConsentVersion, on_delete=models.PROTECT, related_name="acceptances")
    accepted_at = models.DateTimeField(auto_now_add=True)
    ip = models.GenericIPAddressField(null=True, blank=True)
    user_agent = models.CharField(max_length=300, blank=True)


class SignIn(models.Model):
    """One sign-in on one device: the family of refresh tokens rotated from one password login.

    Access tokens carry its id, so revoking it ends the access tokens too.
    """

    id = models.UUIDField(primary_key=True, default=uuid.uuid4, editable=False)
    user = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="sign_ins")
    created_at = models.DateTimeField(auto_now_add=True)
    revoked_at = models.DateTimeField(null=True, blank=True)
    revoked_reason = models.CharField(max_length=32, blank=True)
    ip = models.GenericIPAddressField(null=True, blank=True)
    user_agent = models.CharField(max_length=300, blank=True)

    class Meta:
        indexes = [
            models.Index(fields=["user"], condition=Q(revoked_at__isnull=True), name="signin_live_by_user"),
        ]


class RefreshToken(models.Model):
    """One refresh token of a sign-in. The token string itself is never stored: it is re-minted
    from this row, which is how a reuse within the grace period gets the very same pair."""

    jti = models.UUIDField(primary_key=True, default=uuid.uuid4, editable=False)
    sign_in = models.ForeignKey(SignIn, on_delete=models.CASCADE, related_name="refresh_tokens")
    issued_at = models.DateTimeField()
    expires_at = models.DateTimeField(db_index=True)
    replaced_by = models.OneToOneField("self", on_delete=models.SET_NULL, null=True, blank=True, related_name="+")
    replaced_at = models.DateTimeField(null=True, blank=True)


class LoginAttempt(models.Model):
    """Failed-login counter per account (keyed by an HMAC of the email, so unknown addresses lock
    out the same way and the table holds no addresses). Updated with one atomic upsert."""

    key = models.CharField(max_length=64, primary_key=True)
    attempts = models.PositiveIntegerField()
    window_started_at = models.DateTimeField()


class AccessLogQuerySet(models.QuerySet):
    def update(self, **kwargs):
        raise PermissionError("The access log is append-only.")

    def delete(self):
        raise PermissionError("The access log is append-only.")


class AccessAction(models.TextChoices):
    LIST = "list"
    VIEW = "view"
    CREATE = "create"
    UPDATE = "update"
    DELETE = "delete"
    EXPORT = "export"


class AccessLog(models.Model):
    """Who read or changed which patient's data, when and from where (SPEC §11). Append-only:
    the model refuses updates and deletes, and on PostgreSQL a trigger refuses them too."""

    at = models.DateTimeField(db_index=True)
    actor = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.PROTECT, related_name="+")
    patient = models.ForeignKey(Patient, on_delete=models.PROTECT, related_name="+")
    action = models.CharField(max_length=16, choices=AccessAction.choices)
    path = models.CharField(max_length=500)
    ip = models.GenericIPAddressField(null=True, blank=True)
    user_agent = models.CharField(max_length=300, blank=True)

    objects = AccessLogQuerySet.as_manager()

    class Meta:
        indexes = [
            models.Index(fields=["patient", "-at"]),
            models.Index(fields=["actor", "-at"]),
        ]

    def save(self, *args, **kwargs):
        if not self._state.adding:
            raise PermissionError("The access log is append-only.")
        super().save(*args, **kwargs)

    def delete(self, *args, **kwargs):
        raise PermissionError("The access log is append-only.")
