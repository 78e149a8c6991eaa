"""Handlers for the hooks accounts and journal call (backend/hooks.py), registered in
reminders.apps: the lower apps' writes move the prompts in their own transaction."""

from accounts.models import Patient
from journal.models import TherapySession
from reminders.services.schedules import prompts_replan, session_prompts_sync


def on_patient_reminder_settings_changed(*, patient: Patient) -> None:
    """Time zone, quiet hours, status or account changed: every future prompt moves (or goes)."""
    prompts_replan(patient=patient)


def on_therapy_session_changed(*, session: TherapySession, deleted: bool) -> None:
    """A session was created, moved, changed or deleted: its intensive sampling follows."""
    session_prompts_sync(session=session, deleted=deleted)
