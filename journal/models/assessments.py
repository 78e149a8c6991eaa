import uuid

from django.db import models
from django.db.models import Q

from accounts.models import Patient


class Instrument(models.TextChoices):
    PHQ9 = "phq9", "PHQ-9"
    GAD7 = "gad7", "GAD-7"
    PACS = "pacs", "Penn Alcohol Craving Scale"


class Assessment(models.Model):
    """A completed questionnaire (SPEC §6). Score and severity are computed by the server."""

    id = models.UUIDField(primary_key=True, default=uuid.uuid4)
    patient = models.ForeignKey(Patient, on_delete=models.PROTECT, related_name="assessments")
    instrument = models.CharField(max_length=8, choices=Instrument.choices)
    answers = models.JSONField()
    score = models.PositiveSmallIntegerField()
    severity = models.CharField(max_length=24, null=True, blank=True)
    completed_at = models.DateTimeField()
    local_date = models.DateField()
    prompt_id = models.UUIDField(null=True, blank=True)
    received_at = models.DateTimeField()
    late = models.BooleanField(default=False)
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        constraints = [
            models.CheckConstraint(condition=Q(instrument__in=Instrument.values), name="assessment_instrument_valid"),
            models.CheckConstraint(condition=Q(score__lte=30), name="assessment_score_in_range"),
        ]
        indexes = [models.Index(fields=["patient", "instrument", "-completed_at"], name="assessment_patient_recent")]
