"""Journal's background jobs. Thin: each loads what it needs and calls one service."""

from celery import shared_task
from django.utils import timezone

from journal.services.alerts import disengagement_check


@shared_task(ignore_result=True)
def check_disengagement() -> int:
    """Hourly (beat): raises `disengaged` for patients silent on their last N complete journal days.
    Running twice, or in two beats at once, raises each silence once (see the service)."""
    return len(disengagement_check(now=timezone.now()))
