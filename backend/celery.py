import os

from celery import Celery
from celery.signals import setup_logging

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "backend.settings")

app = Celery("interlude")


@setup_logging.connect
def _keep_the_apps_logging(**kwargs) -> None:
    """Connected, so Celery leaves logging as Django's LOGGING set it: JSON lines whose formatter
    never writes an exception's text. Celery's own setup would replace it with plain text, where
    a task's exception (an SMTP error quoting an address) is printed whole."""


app.config_from_object("django.conf:settings", namespace="CELERY")
app.autodiscover_tasks()

# One beat, a handful of sweepers; there are never per-patient periodic-task rows.
app.conf.beat_schedule = {
    "heartbeat": {"task": "backend.tasks.heartbeat", "schedule": 10.0},
    "purge-expired-sign-ins": {"task": "accounts.tasks.purge_expired_refresh_tokens", "schedule": 3600.0},
    # The one prompt sweeper: claims due prompts by their indexed due time, hands them to workers.
    "sweep-due-prompts": {"task": "reminders.tasks.sweep_due_prompts", "schedule": 60.0},
    # Alert notifications due (later rounds of urgent alerts, retries, round 0s whose kick was
    # lost): twice a minute, so each goes out within a minute of its due time.
    "sweep-due-alert-notifications": {"task": "reminders.tasks.sweep_due_alert_notifications", "schedule": 30.0},
    # SPEC §9's `disengaged` rule: no entry on the last N complete journal days (zones differ, so hourly).
    "check-disengagement": {"task": "journal.tasks.check_disengagement", "schedule": 3600.0},
    # Keeps PROMPT_PLAN_DAYS of prompts ahead as rows for every active patient.
    "plan-prompts": {"task": "reminders.tasks.plan_prompts", "schedule": 900.0},
}
