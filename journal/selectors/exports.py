"""What a patient's export holds: profile, consents, entries (with their revisions), assessments and
sessions (without clinician notes). Read with .iterator() so rows stream rather than pile up."""

from collections.abc import Iterator

from accounts.models import ConsentAcceptance, Patient
from journal.models import Assessment, Entry, EntryRevision, TherapySession

EXPORT_CSV_COLUMNS = [
    "record_type", "id", "at", "local_date", "kind", "craving", "mood", "anxiety", "sleep_hours", "substance",
    "amount", "triggers", "coping", "note", "version", "edited", "late", "score", "severity", "answers",
    "duration_minutes",
]  # fmt: skip
_CHUNK = 1000


def _entry(entry: Entry) -> dict:
    return {
        "id": str(entry.id),
        "kind": entry.kind,
        "occurred_at": entry.occurred_at,
        "local_date": entry.local_date,
        "craving": entry.craving,
        "mood": entry.mood,
        "anxiety": entry.anxiety,
        "sleep_hours": float(entry.sleep_hours) if entry.sleep_hours is not None else None,
        "substance": entry.substance,
        "amount": entry.amount,
        "triggers": entry.triggers,
        "coping": entry.coping,
        "note": entry.note,
        "prompt_id": str(entry.prompt_id) if entry.prompt_id else None,
        "received_at": entry.received_at,
        "late": entry.late,
        "version": entry.version,
        "edited": entry.edited,
    }


def _entries(patient: Patient) -> Iterator[Entry]:
    return Entry.objects.filter(patient=patient, deleted_at__isnull=True).order_by("occurred_at", "id").iterator(_CHUNK)


def _assessments(patient: Patient) -> Iterator[Assessment]:
    return Assessment.objects.filter(patient=patient).order_by("completed_at", "id").iterator(_CHUNK)


def _sessions(patient: Patient) -> Iterator[TherapySession]:
    return TherapySession.objects.filter(patient=patient).defer("notes").order_by("starts_at", "id").iterator(_CHUNK)


def _assessment(a: Assessment) -> dict:
    return {
        "id": str(a.id),
        "instrument": a.instrument,
        "answers": a.answers,
        "score": a.score,
        "severity": a.severity,
        "completed_at": a.completed_at,
        "local_date": a.local_date,
    }


def _session(s: TherapySession) -> dict:
    return {
        "id": str(s.id),
        "kind": s.kind,
        "starts_at": s.starts_at,
        "local_date": s.local_date,
        "duration_minutes": s.duration_minutes,
        "route": s.route,
        "dose_mg": float(s.dose_mg) if s.dose_mg is not None else None,
    }


def own_export_sections(patient: Patient) -> dict:
    profile = {
        "display_name": patient.display_name,
        "timezone": patient.timezone,
        "substances": patient.substances,
        "email": patient.user.email if patient.user else None,
        "clinic": patient.clinic.name,
    }
    consents = (
        {"version": c.consent_version.version, "accepted_at": c.accepted_at}
        for c in ConsentAcceptance.objects.filter(patient=patient).select_related("consent_version")
    )
    revisions = (
        {
            "entry_id": str(r.entry_id),
            "version": r.version,
            "content": r.content,
            "note": r.note,
            "replaced_at": r.replaced_at,
        }
        for r in EntryRevision.objects.filter(entry__patient=patient).order_by("entry_id", "version").iterator(_CHUNK)
    )
    return {
        "profile": [profile],
        "consents": consents,
        "entries": (_entry(e) for e in _entries(patient)),
        "entry_revisions": revisions,
        "assessments": (_assessment(a) for a in _assessments(patient)),
        "sessions": (_session(s) for s in _sessions(patient)),
    }


def own_export_rows(patient: Patient) -> Iterator[dict]:
    for entry in _entries(patient):
        yield {"record_type": "entry", "at": entry.occurred_at.isoformat(), **_entry(entry)}
    for assessment in _assessments(patient):
        row = _assessment(assessment)
        yield {"record_type": "assessment", "at": assessment.completed_at.isoformat(), "kind": row.pop("instrument"),
               **row}  # fmt: skip
    for session in _sessions(patient):
        yield {"record_type": "session", "at": session.starts_at.isoformat(), **_session(session)}
