"""Reminders' Celery tasks: thin, taking ids, each calling one service.

Beat names two of them (backend/celery.py): the minute sweep and the planner. Neither keeps state
in Celery; a lost message only delays work the rows still describe.
"""

import logging
import uuid

from celery import shared_task
from django.utils import timezone

from backend.queueing import publish
from reminders.services.delivery import prompt_deliver, prompts_sweep
from reminders.services.prompts import prompts_expire as prompts_sent_expire
from reminders.services.schedules import prompts_plan_all

logger = logging.getLogger(__name__)

PROMPTS_QUEUE = "prompts"


def _publish_deliveries(prompt_ids: list[str]) -> bool:
    return publish(deliver_prompts, prompt_ids, queue=PROMPTS_QUEUE)


@shared_task(ignore_result=True)
def sweep_due_prompts() -> dict:
    """Beat, every minute. Two beats at once are harmless: claims skip each other's rows."""
    now = timezone.now()
    result = prompts_sweep(now=now, publish=_publish_deliveries)
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
    attempt = self.request.id or "direct"
    for prompt_id in prompt_ids:
        owner = f"{attempt}:{uuid.uuid4().hex[:12]}"
        try:
            prompt_deliver(prompt_id=prompt_id, owner=owner)
        except Exception:
            # One broken prompt must not hold up the rest of the chunk; its lease lapses and the
            # sweeper tries it again until it expires.
            logger.exception("prompt %s: delivery failed", prompt_id, extra={"event": "prompt_delivery_error"})


@shared_task(ignore_result=True)
def plan_prompts() -> None:
    """Beat, every 15 minutes: keeps PROMPT_PLAN_DAYS of prompts ahead as rows."""
    prompts_plan_all(now=timezone.now())
