"""Reminders' handler for the `alert_opened` hook (backend/hooks.py), registered in reminders.apps:
journal cannot import reminders, yet a new alert's notifications must be written in the
transaction that opens it."""

from backend.queueing import publish_on_commit
from journal.models import Alert, AlertSeverity
from reminders import tasks
from reminders.services.alert_notifications import alert_notifications_create


def on_alert_opened(*, alert: Alert) -> None:
    """Writes the rows, then, after commit, hands round 0 straight to a worker so it goes out within
    seconds instead of at the next sweep. If the broker is down the kick is dropped (never blocking
    the request that fired the alert) and the sweep sends the rows when it is back."""
    due_now = [str(row.pk) for row in alert_notifications_create(alert=alert) if row.round == 0]
    if due_now:
        urgent = alert.severity == AlertSeverity.URGENT
        publish_on_commit(tasks.send_alert_notifications, due_now, queue=tasks.alert_notifications_queue(urgent))
