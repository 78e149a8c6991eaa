"""Reads of schedules (SPEC §7). The access rule is the caller's: the patient's own record, or
one reached through CareTeamPatientMixin.get_patient()."""

from django.db.models import QuerySet

from accounts.models import Patient
from reminders.models import Schedule


def schedules_of(patient: Patient) -> QuerySet[Schedule]:
    """A patient's schedules, oldest first (a stable order for cursor pagination). Deleted ones
    are kept only for their prompts' history and are not the patient's schedules any more."""
    return Schedule.objects.filter(patient=patient, deleted_at__isnull=True).order_by("created_at", "id")
