import uuid

from django.conf import settings
from django.db import models
from django.db.models import Q

from accounts.models import Patient
from backend.encryption import EncryptedTextField


class AlertRule(models.TextChoices):
    # The labels are what a clinician reads, on every dashboard page that names a rule.
    PHQ9_SELF_HARM = "phq9_self_harm", "PHQ-9 item 9 (thoughts of self-harm) answered above zero"
    USE_REPORTED = "use_reported", "Reported substance use"
    CRAVING_HIGH = "craving_high", "High craving on consecutive days"
    PHQ9_WORSENING = "phq9_worsening", "PHQ-9 severe or sharply worse"
    CRAVING_RISING = "craving_rising", "Craving rising week over week"
    MOOD_LOW = "mood_low", "Low mood on consecutive days"
    DISENGAGED = "disengaged", "No journal entries for several days"


class AlertSeverity(models.TextChoices):
    LOW = "low"
    MEDIUM = "medium"
    HIGH = "high"
    URGENT = "urgent"


SEVERITY_OF_RULE = {
    AlertRule.PHQ9_SELF_HARM: AlertSeverity.URGENT,
    AlertRule.USE_REPORTED: AlertSeverity.HIGH,
    AlertRule.CRAVING_HIGH: AlertSeverity.HIGH,
    AlertRule.PHQ9_WORSENING: AlertSeverity.HIGH,
    AlertRule.CRAVING_RISING: AlertSeverity.MEDIUM,
    AlertRule.MOOD_LOW: AlertSeverity.MEDIUM,
    AlertRule.DISENGAGED: AlertSeverity.LOW,
}


class AlertStatus(models.TextChoices):
    OPEN = "open"
    ACKNOWLEDGED = "acknowledged"
    RESOLVED = "resolved"


class Alert(models.Model):
    """Something in a patient's journal that a clinician should see (SPEC §9).

    At most one unresolved alert per patient and rule (a partial unique index): a new trigger while
    one is open or acknowledged adds to its `evidence` instead of opening another.
    """

    id = models.UUIDField(primary_key=True, default=uuid.uuid4, editable=False)
    patient = models.ForeignKey(Patient, on_delete=models.CASCADE, related_name="alerts")
    rule = models.CharField(max_length=24, choices=AlertRule.choices)
    severity = models.CharField(max_length=8, choices=AlertSeverity.choices)
    status = models.CharField(max_length=16, choices=AlertStatus.choices, default=AlertStatus.OPEN)
    # [{"at": ISO time, "entry": id | None, "assessment": id | None, "summary": {...figures...}}]
    evidence = models.JSONField(default=list)
    opened_at = models.DateTimeField()
    last_fired_at = models.DateTimeField()
    acknowledged_at = models.DateTimeField(null=True, blank=True)
    acknowledged_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.PROTECT, null=True, blank=True, related_name="+"
    )
    acknowledge_note = EncryptedTextField(blank=True, default="")
    resolved_at = models.DateTimeField(null=True, blank=True)
    resolved_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.PROTECT, null=True, blank=True, related_name="+"
    )
    resolve_note = EncryptedTextField(blank=True, default="")

    class Meta:
        constraints = [
            models.CheckConstraint(condition=Q(rule__in=AlertRule.values), name="alert_rule_valid"),
            models.CheckConstraint(condition=Q(severity__in=AlertSeverity.values), name="alert_severity_valid"),
            models.CheckConstraint(condition=Q(status__in=AlertStatus.values), name="alert_status_valid"),
            models.UniqueConstraint(
                fields=["patient", "rule"], condition=~Q(status="resolved"), name="alert_one_unresolved_per_rule"
            ),
            models.CheckConstraint(
                condition=Q(status="open") | Q(acknowledged_at__isnull=False) | Q(resolved_at__isnull=False),
                name="alert_acknowledged_or_resolved_has_time",
            ),
            models.CheckConstraint(
                condition=~Q(status="resolved") | Q(resolved_at__isnull=False, resolved_by__isnull=False),
                name="alert_resolved_has_who_and_when",
            ),
        ]
        indexes = [
            models.Index(fields=["patient", "status"], name="alert_patient_status"),
            models.Index(fields=["status", "-opened_at"], name="alert_inbox"),
        ]

    def __str__(self) -> str:
        return f"{self.rule} ({self.status})"
