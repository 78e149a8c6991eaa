"""Reads of questionnaires (SPEC §6)."""

from django.db.models import QuerySet

from accounts.models import Patient
from journal.models import Assessment


def assessments_of(patient: Patient, instrument: str | None = None) -> QuerySet[Assessment]:
    """A patient's assessments, newest first (the order the cursor paginator walks)."""
    queryset = Assessment.objects.filter(patient=patient)
    if instrument:
        queryset = queryset.filter(instrument=instrument)
    return queryset.order_by("-completed_at", "-id")
