"""What reminders hold of a patient, for their own export (SPEC §10: all of their data): their
schedules (deleted ones too, with the messages they wrote), every prompt and what became of it, and
their devices. Registered on `hooks.patient_export_sections` (the journal, which builds the export,
cannot import reminders). Lease and retry bookkeeping is the server's, not theirs, and a device's
push token is left out: it is a credential to reach the phone, not something the patient wrote."""

from collections.abc import Iterator

from accounts.models import Patient
from reminders.models import Device, Prompt, Schedule

_CHUNK = 1000


def _schedules(patient: Patient) -> Iterator[dict]:
    for s in Schedule.objects.filter(patient=patient).order_by("created_at", "id").iterator(_CHUNK):
        yield {
            "id": str(s.id), "kind": s.kind, "instrument": s.instrument, "message": s.message, "days": s.days,
            "time": s.time, "window": {"start": s.window_start, "end": s.window_end} if s.window_start else None,
            "expires_after_minutes": s.expires_after_minutes, "enabled": s.enabled, "created_at": s.created_at,
            "deleted_at": s.deleted_at,
        }  # fmt: skip


def _prompts(patient: Patient) -> Iterator[dict]:
    for p in Prompt.objects.filter(patient=patient).order_by("scheduled_for", "id").iterator(_CHUNK):
        yield {
            "id": str(p.id), "kind": p.kind, "instrument": p.instrument, "message": p.message,
            "local_date": p.local_date, "scheduled_for": p.scheduled_for, "expires_at": p.expires_at,
            "status": p.status, "skip_reason": p.skip_reason, "channel": p.channel, "sent_at": p.sent_at,
            "completed_at": p.completed_at,
        }  # fmt: skip


def _devices(patient: Patient) -> Iterator[dict]:
    if patient.user_id is None:
        return
    for d in Device.objects.filter(user_id=patient.user_id).order_by("created_at", "id"):
        yield {"id": str(d.id), "platform": d.platform, "active": d.active, "created_at": d.created_at}


def own_reminder_sections(*, patient: Patient) -> dict:
    return {"reminder_schedules": _schedules(patient), "prompts": _prompts(patient), "devices": _devices(patient)}
