from celery import shared_task
from django.utils import timezone

from backend.models import Heartbeat


@shared_task(ignore_result=True)
def heartbeat() -> None:
    # Written by a worker on beat's schedule: its age measures beat, broker and worker together.
    Heartbeat.objects.update_or_create(name="beat", defaults={"last_run_at": timezone.now()})
