import uuid

from django.conf import settings
from django.db import models
from django.db.models import Q

from accounts.models import Patient
from backend.encryption import EncryptedTextField


class SessionKind(models.TextChoices):
    KETAMINE = "ketamine"
    INTEGRATION = "integration"
    PSYCHOTHERAPY = "psychotherapy"
    MEDICAL = "medical"


class KetamineRoute(models.TextChoices):
    IM = "im"
    IV = "iv"
    SUBLINGUAL = "sublingual"
    INTRANASAL = "intranasal"
    ORAL = "oral"


class TherapySession(models.Model):
    """A session entered by the care team (SPEC §6). `local_date` is the patient's journal day of
    `starts_at`, day 0 of the session-anchored trends.

    Deleting a session keeps the row (`deleted_at`): the craving checks already sent after a
    ketamine session belong to the patient's compliance history. Every read leaves deleted
    sessions out."""

    id = models.UUIDField(primary_key=True, default=uuid.uuid4, editable=False)
    patient = models.ForeignKey(Patient, on_delete=models.PROTECT, related_name="therapy_sessions")
    kind = models.CharField(max_length=16, choices=SessionKind.choices)
    starts_at = models.DateTimeField()
    local_date = models.DateField()
    duration_minutes = models.PositiveSmallIntegerField()
    route = models.CharField(max_length=16, choices=KetamineRoute.choices, null=True, blank=True)
    dose_mg = models.DecimalField(max_digits=6, decimal_places=1, null=True, blank=True)
    notes = EncryptedTextField(blank=True, default="")  # clinician-only
    created_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.SET_NULL, null=True, blank=True, related_name="+"
    )
    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)
    deleted_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        constraints = [
            models.CheckConstraint(condition=Q(kind__in=SessionKind.values), name="session_kind_valid"),
            models.CheckConstraint(
                condition=Q(kind=SessionKind.KETAMINE) | Q(route__isnull=True, dose_mg__isnull=True),
                name="session_route_dose_only_for_ketamine",
            ),
            models.CheckConstraint(
                condition=Q(duration_minutes__gte=1, duration_minutes__lte=1440), name="session_duration_valid"
            ),
        ]
        indexes = [models.Index(fields=["patient", "starts_at"], name="session_patient_time")]
