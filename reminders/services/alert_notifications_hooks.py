"""Reminders' handlers for the `alert_opened` and `urgent_alert_refired` hooks (backend/hooks.py),
registered in reminders.apps: journal cannot import reminders, yet an alert's notifications must be
written in the transaction that opens it (or adds the evidence the care team must hear of)."""

from backend.queueing import publish_on_commit
from journal.models import Alert, AlertSeverity
from reminders import tasks
from reminders.services.alert_notifications import alert_notifications_create, alert_notifications_renew


def on_alert_opened(*, alert: Alert) -> None:
    """Writes the rows, then, after commit, hands round 0 straight to a worker so it goes out within
    seconds instead of at the next sweep. If the broker is down the kick is dropped (never blocking
    the request that fired the alert) and the sweep sends the rows when it is back."""
    _kick(alert, [row for row in alert_notifications_create(alert=alert) if row.round == 0])


def on_urgent_alert_refired(*, alert: Alert) -> None:
    """One more round, due now and kicked the same way, unless one is still to go out."""
    _kick(alert, alert_notifications_renew(alert=alert))


def _kick(alert: Alert, due_now: list) -> None:
    if due_now:
        urgent = alert.severity == AlertSeverity.URGENT
        ids = [str(row.pk) for row in due_now]
        publish_on_commit(tasks.send_alert_notifications, ids, queue=tasks.alert_notifications_queue(urgent))
