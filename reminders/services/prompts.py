"""Writes of a prompt's life after it was sent (SPEC §7): the phone's receipt, the answer that
completes it, and the expiry of one nobody answered.

Every change is one conditional UPDATE (`… WHERE status IN (…)`), never read-modify-save: a
receipt, two answers synced from two devices and the minute sweep can all race on one row, and
the row lock plus the re-checked WHERE let exactly one of them win.
"""

import uuid
from datetime import datetime

from django.db.models import Case, F, Q, Value, When
from django.db.models.functions import Coalesce, Greatest
from rest_framework.exceptions import NotFound

from accounts.models import Patient
from reminders.models import Prompt, PromptStatus

OPEN_STATUSES = (PromptStatus.SENT, PromptStatus.RECEIVED)


def _as_uuid(value) -> uuid.UUID | None:
    if isinstance(value, uuid.UUID):
        return value
    try:
        return uuid.UUID(str(value))
    except (TypeError, ValueError, AttributeError):
        return None


def prompt_receipt(*, patient: Patient, prompt_id, now: datetime) -> Prompt:
    """The phone saw the notification: sent → received. Idempotent.

    A completed or expired prompt keeps its status; if it was sent and has no receipt yet, the
    receipt time is still recorded (the phone did show it, which the compliance funnel counts).
    A prompt never sent (scheduled, skipped, failed) is returned unchanged. Another patient's
    prompt is a 404.
    """
    key = _as_uuid(prompt_id)
    if key is None:
        raise NotFound()
    Prompt.objects.filter(
        pk=key,
        patient=patient,
        sent_at__isnull=False,
        received_at__isnull=True,
        status__in=[*OPEN_STATUSES, PromptStatus.COMPLETED, PromptStatus.EXPIRED],
    ).update(
        status=Case(When(status=PromptStatus.SENT, then=Value(PromptStatus.RECEIVED)), default=F("status")),
        received_at=now,
    )
    prompt = Prompt.objects.filter(pk=key, patient=patient).first()
    if prompt is None:
        raise NotFound()
    return prompt


def prompt_complete(*, patient: Patient, prompt_id, answered_at: datetime) -> bool:
    """An entry or assessment answered this prompt; returns True when the answer is late.

    Called through `hooks.prompt_answered` inside the journal write's transaction, so it never
    raises and never tells one patient anything about another's prompts: an unknown id or another
    patient's prompt changes nothing and returns False.

    - Answered by `expires_at`: the prompt is completed (once: a second answer finds it completed
      and changes nothing). That includes a prompt the sweep already expired while the answer sat
      on an offline phone — the outcome depends on when the patient answered, not on whether the
      sweep ran before the phone synced.
    - Answered after `expires_at`: the prompt is (or becomes) expired; the answer is late.
    - Never sent (scheduled, skipped, failed): not open, nothing changes, not late.
    """
    key = _as_uuid(prompt_id)
    if key is None:
        return False
    mine = Prompt.objects.filter(pk=key, patient=patient)
    # Latency is answer − send; a phone clock behind the server's must not make it negative.
    completed_at = Greatest(Coalesce(F("sent_at"), Value(answered_at)), Value(answered_at))
    completed = mine.filter(
        Q(status__in=OPEN_STATUSES) | Q(status=PromptStatus.EXPIRED, sent_at__isnull=False),
        expires_at__gte=answered_at,
    ).update(
        status=PromptStatus.COMPLETED,
        completed_at=completed_at,
        received_at=Coalesce(F("received_at"), completed_at),  # an answer proves the phone showed it
    )
    if completed:
        return False
    if mine.filter(status__in=OPEN_STATUSES, expires_at__lt=answered_at).update(status=PromptStatus.EXPIRED):
        return True
    return mine.filter(status=PromptStatus.EXPIRED).exists()


def prompts_expire(*, now: datetime) -> int:
    """Marks sent prompts nobody answered by `expires_at` as expired; returns how many.

    The delivery sweep expires the ones never sent; this one owns the sent-but-unanswered ones.
    One UPDATE, safe to run twice or from two beats at once.
    """
    return Prompt.objects.filter(status__in=OPEN_STATUSES, expires_at__lte=now).update(status=PromptStatus.EXPIRED)
