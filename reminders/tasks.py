"""Reminders' Celery tasks: thin, taking ids, each calling one service.

Beat names three of them (backend/celery.py): the prompt sweep, the alert-notification sweep and
the planner. None keeps state in Celery; a lost message only delays work the rows still describe.
"""

import logging
import uuid

from celery import shared_task
from django.utils import timezone

from backend.queueing import publish, queue_depths
from reminders.services.alert_notifications import alert_notification_deliver, alert_notifications_sweep
from reminders.services.delivery import prompt_deliver, prompts_sweep
from reminders.services.prompts import prompts_expire as prompts_sent_expire
from reminders.services.schedules import prompts_plan_all

logger = logging.getLogger(__name__)

PROMPTS_QUEUE = "prompts"
# Urgent alerts' notifications never wait behind prompts, nor behind a burst of low ones (every
# `disengaged` alert of a night's check): those take the default queue.
ALERTS_URGENT_QUEUE = "alerts_urgent"
DEFAULT_QUEUE = "default"


def _publish_deliveries(prompt_ids: list[str]) -> bool:
    return publish(deliver_prompts, prompt_ids, queue=PROMPTS_QUEUE)


def _prompts_waiting() -> int:
    """Messages in the prompts queue; 0 when unknown (Redis down or not the broker), so an unknown
    queue never holds a prompt back: a duplicate message is harmless, the send claim refuses it."""
    depths = queue_depths() or {}
    return depths.get(PROMPTS_QUEUE, 0)


@shared_task(ignore_result=True)
def sweep_due_prompts() -> dict:
    """Beat, every minute. Two beats at once are harmless: claims skip each other's rows."""
    now = timezone.now()
    result = prompts_sweep(now=now, publish=_publish_deliveries, broker_backlog=_prompts_waiting() > 0)
    expired_sent = prompts_sent_expire(now=now)
    if result.publish_failed:
        logger.warning(
            "broker refused deliveries; the next sweep publishes them", extra={"event": "sweep_publish_failed"}
        )
    return {
        "expired_unsent": result.expired,
        "expired_sent": expired_sent,
        "claimed": result.claimed,
        "published": result.published,
    }


@shared_task(bind=True, acks_late=True, ignore_result=True)
def deliver_prompts(self, prompt_ids: list[str]) -> None:
    """Sends a chunk of prompts, each under its own claim.

    Late ack, so a worker lost mid-task leaves the message to the broker; whether it comes back or
    not, the prompt's lease lapses and the sweeper claims it again, and the claim refuses anything
    already sent.
    """
    _deliver_each(prompt_ids, attempt=self.request.id, what="prompt", deliver=prompt_deliver, id_name="prompt_id")


def _deliver_each(ids: list[str], *, attempt: str | None, what: str, deliver, id_name: str) -> None:
    """Each id under its own claim, whose owner names this attempt plus a random part."""
    for row_id in ids:
        owner = f"{attempt or 'direct'}:{uuid.uuid4().hex[:12]}"
        try:
            deliver(**{id_name: row_id, "owner": owner})
        except Exception:
            # One broken row must not hold up the rest of the chunk; its lease lapses and the
            # sweeper tries it again.
            logger.exception("%s %s: delivery failed", what, row_id, extra={"event": f"{what}_delivery_error"})


@shared_task(ignore_result=True)
def plan_prompts() -> None:
    """Beat, every 15 minutes: keeps PROMPT_PLAN_DAYS of prompts ahead as rows."""
    prompts_plan_all(now=timezone.now())


def alert_notifications_queue(urgent: bool) -> str:
    return ALERTS_URGENT_QUEUE if urgent else DEFAULT_QUEUE


def _publish_alert_notifications(notification_ids: list[str], urgent: bool) -> bool:
    return publish(send_alert_notifications, notification_ids, queue=alert_notifications_queue(urgent))


@shared_task(ignore_result=True)
def sweep_due_alert_notifications() -> dict:
    """Beat, every 30 seconds, on the urgent queue (so a prompt backlog never delays it): later
    rounds, retries, and round 0s whose kick was lost to a broker outage or a dead worker."""
    result = alert_notifications_sweep(now=timezone.now(), publish=_publish_alert_notifications)
    if result.publish_failed:
        logger.warning(
            "broker refused alert notifications; the next sweep publishes them",
            extra={"event": "alert_sweep_publish_failed"},
        )
    return {"cancelled": result.cancelled, "superseded": result.superseded, "claimed": result.claimed,
            "published": result.published}  # fmt: skip


@shared_task(bind=True, acks_late=True, ignore_result=True)
def send_alert_notifications(self, notification_ids: list[str]) -> None:
    """Sends alert notifications, each under its own claim; late ack, like deliver_prompts."""
    _deliver_each(
        notification_ids,
        attempt=self.request.id,
        what="alert_notification",
        deliver=alert_notification_deliver,
        id_name="notification_id",
    )
