"""Reminders' handler for the `prompt_answered` hook (backend/hooks.py), registered in
reminders.apps: journal cannot import reminders, yet an answer must complete its prompt in the
same transaction as the entry or assessment that carries it."""

from datetime import datetime

from accounts.models import Patient
from reminders.services.prompts import prompt_complete


def on_prompt_answered(*, patient: Patient, prompt_id, answered_at: datetime) -> bool:
    """True when the prompt had already expired, so the journal marks the answer late."""
    return prompt_complete(patient=patient, prompt_id=prompt_id, answered_at=answered_at)
