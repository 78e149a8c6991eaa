import os

from celery import Celery

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "backend.settings")

app = Celery("interlude")
app.config_from_object("django.conf:settings", namespace="CELERY")
app.autodiscover_tasks()

# One beat, a handful of sweepers; there are never per-patient periodic-task rows.
app.conf.beat_schedule = {
    "heartbeat": {"task": "backend.tasks.heartbeat", "schedule": 10.0},
    "purge-expired-sign-ins": {"task": "accounts.tasks.purge_expired_refresh_tokens", "schedule": 3600.0},
}
