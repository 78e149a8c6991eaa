"""Entries and assessments may answer a prompt (`prompt_id`, SPEC §7). Prompts belong to the
reminders app, which depends on journal, not the other way round: so reminders registers its
handler here at start-up, and journal calls it inside the write's transaction.

The handler completes an open prompt (recording the latency) and answers whether the prompt had
already expired, in which case the entry is kept but marked `late`.
"""

import uuid
from collections.abc import Callable
from datetime import datetime

from accounts.models import Patient

AnswerHandler = Callable[..., bool]
_handlers: list[AnswerHandler] = []


def register(handler: AnswerHandler) -> None:
    if handler not in _handlers:
        _handlers.append(handler)


def prompt_answered(*, patient: Patient, prompt_id: uuid.UUID | None, answered_at: datetime) -> bool:
    """Tells the registered handlers; True when the prompt had expired (the answer is late)."""
    if prompt_id is None:
        return False
    late = False
    for handler in _handlers:
        late = handler(patient=patient, prompt_id=prompt_id, answered_at=answered_at) or late
    return late
