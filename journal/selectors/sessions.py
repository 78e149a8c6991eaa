"""Reads of therapy sessions (SPEC §6)."""

from django.db.models import QuerySet

from accounts.models import Patient
from journal.models import TherapySession


def sessions_of(patient: Patient, *, with_notes: bool = True) -> QuerySet[TherapySession]:
    """A patient's live (not deleted) sessions, earliest first. Without notes the column is not
    even read, so the patient's own list never decrypts what only the care team may see."""
    queryset = TherapySession.objects.filter(patient=patient, deleted_at__isnull=True).order_by("starts_at", "id")
    return queryset if with_notes else queryset.defer("notes")
