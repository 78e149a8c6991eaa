"""Reads of a patient's prompts: the in-app inbox (SPEC §7), so a lost push still reaches them."""

from datetime import datetime

from django.db.models import QuerySet

from accounts.models import Patient
from reminders.models import Prompt, PromptStatus

OPEN = "open"
INBOX_FILTERS = (OPEN, *PromptStatus.values)


def inbox_of(patient: Patient, *, status: str | None = None, now: datetime) -> QuerySet[Prompt]:
    """A patient's prompts, newest first. `open`: sent or received, not yet answered and not yet
    expired (even if the sweep has not marked it yet); any other value is a literal status; None
    is every prompt."""
    queryset = Prompt.objects.filter(patient=patient)
    if status == OPEN:
        queryset = queryset.filter(status__in=[PromptStatus.SENT, PromptStatus.RECEIVED], expires_at__gt=now)
    elif status is not None:
        queryset = queryset.filter(status=status)
    return queryset.order_by("-scheduled_for", "-id")
