"""What an export of patient data holds (SPEC §10), read with .iterator() so rows stream rather than
pile up.

- The patient's own export: all of their data (SPEC §10) — profile (quiet hours too), consents,
  entries with their revisions, assessments, sessions without the care team's notes, and what
  other apps hold of theirs through `hooks.patient_export_sections` (reminder schedules, prompts,
  devices). The CSV holds the same records, one row each: what has no column of its own is in
  `details`, as JSON.
- The care team's export of one patient: the same records as the clinician reads them, session
  notes included.
- The clinic admin's export: every live entry of the clinic as flat tuples (`values_list` over a
  server-side cursor), for a CSV of millions of rows without building a model per row.
"""

import json
from collections.abc import Iterator
from datetime import date

from django.core.serializers.json import DjangoJSONEncoder
from django.db import connections
from django.db.models import Exists, F, Func, OuterRef, QuerySet, TextField

from accounts.models import ConsentAcceptance, Patient
from backend import hooks
from journal.exports import csv_cell, utc_iso
from journal.models import Assessment, Entry, EntryRevision, TherapySession
from journal.selectors.sessions import sessions_of

# One column list for the patient's CSV and the care team's: a row per record of the JSON export,
# every field of it in its column (`revision_of` names the entry a prior version belongs to; session
# notes, care team only, go in `note`), and what has no column of its own — a profile, a consent,
# a reminder schedule — in `details`, as JSON.
EXPORT_CSV_COLUMNS = [
    "record_type", "id", "at", "local_date", "kind", "craving", "mood", "anxiety", "sleep_hours", "substance",
    "amount", "triggers", "coping", "note", "prompt_id", "received_at", "version", "edited", "late", "score",
    "severity", "answers", "duration_minutes", "route", "dose_mg", "revision_of", "replaced_at", "details",
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


def _sessions(patient: Patient, *, with_notes: bool) -> Iterator[TherapySession]:
    return sessions_of(patient, with_notes=with_notes).iterator(_CHUNK)


def _revisions(patient: Patient, *, live_only: bool) -> Iterator[EntryRevision]:
    revisions = EntryRevision.objects.filter(entry__patient=patient)
    if live_only:  # as the care team reads them: a deleted entry's history is gone with it
        revisions = revisions.filter(entry__deleted_at__isnull=True)
    return revisions.order_by("entry_id", "version").iterator(_CHUNK)


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


def _session(s: TherapySession, *, with_notes: bool) -> dict:
    row = {
        "id": str(s.id),
        "kind": s.kind,
        "starts_at": s.starts_at,
        "local_date": s.local_date,
        "duration_minutes": s.duration_minutes,
        "route": s.route,
        "dose_mg": float(s.dose_mg) if s.dose_mg is not None else None,
    }
    if with_notes:
        row["notes"] = s.notes
    return row


def _revision(r: EntryRevision) -> dict:
    return {"entry_id": str(r.entry_id), "version": r.version, "content": r.content, "note": r.note,
            "replaced_at": r.replaced_at}  # fmt: skip


def _consents(patient: Patient) -> Iterator[dict]:
    return (
        {"version": c.consent_version.version, "accepted_at": c.accepted_at}
        for c in ConsentAcceptance.objects.filter(patient=patient).select_related("consent_version")
    )


def _own_profile(patient: Patient) -> dict:
    return {
        "display_name": patient.display_name,
        "timezone": patient.timezone,
        "quiet_hours": {"start": patient.quiet_hours_start, "end": patient.quiet_hours_end}
        if patient.quiet_hours_start
        else None,
        "substances": patient.substances,
        "email": patient.user.email if patient.user else None,
        "clinic": patient.clinic.name,
    }


def _other_apps_sections(patient: Patient) -> dict:
    sections: dict = {}
    for more in hooks.patient_export_sections.call(patient=patient):
        sections.update(more)
    return sections


def own_export_sections(patient: Patient) -> dict:
    return {
        "profile": [_own_profile(patient)],
        "consents": _consents(patient),
        "entries": (_entry(e) for e in _entries(patient)),
        "entry_revisions": (_revision(r) for r in _revisions(patient, live_only=False)),
        "assessments": (_assessment(a) for a in _assessments(patient)),
        "sessions": (_session(s, with_notes=False) for s in _sessions(patient, with_notes=False)),
        **_other_apps_sections(patient),
    }


def _care_team_profile(patient: Patient) -> dict:
    return {
        "id": str(patient.id),
        "display_name": patient.display_name,
        "timezone": patient.timezone,
        "substances": patient.substances,
        "status": patient.status,
        "created_at": patient.created_at,
    }


def care_team_export_sections(patient: Patient) -> dict:
    """The clinician's view: the profile as the care team sees it (no sign-in email), session notes."""
    return {
        "profile": [_care_team_profile(patient)],
        "consents": _consents(patient),
        "entries": (_entry(e) for e in _entries(patient)),
        "entry_revisions": (_revision(r) for r in _revisions(patient, live_only=True)),
        "assessments": (_assessment(a) for a in _assessments(patient)),
        "sessions": (_session(s, with_notes=True) for s in _sessions(patient, with_notes=True)),
    }


def _details(record: dict) -> str:
    return json.dumps(record, cls=DjangoJSONEncoder, separators=(",", ":"))


def _export_rows(patient: Patient, *, care_team: bool) -> Iterator[dict]:
    """The records of the JSON export as CSV rows, `at` the moment each describes (UTC, Z)."""
    profile = _care_team_profile(patient) if care_team else _own_profile(patient)
    yield {"record_type": "profile", "details": _details(profile)}
    for consent in _consents(patient):
        yield {"record_type": "consent", "at": utc_iso(consent["accepted_at"]), "details": _details(consent)}
    for entry in _entries(patient):
        yield {"record_type": "entry", "at": utc_iso(entry.occurred_at), **_entry(entry)}
    # The care team reads the history of live entries; the patient gets all of theirs.
    for revision in _revisions(patient, live_only=care_team):
        content = {key: value for key, value in revision.content.items() if key not in ("id", "occurred_at")}
        yield {
            **content,
            "record_type": "entry_revision",
            "revision_of": str(revision.entry_id),
            "version": revision.version,
            "note": revision.note,
            # stored in its comparable form, UTC with +00:00 (journal.services.entries.canonical)
            "at": (revision.content.get("occurred_at") or "").replace("+00:00", "Z"),
            "replaced_at": utc_iso(revision.replaced_at),
        }
    for assessment in _assessments(patient):
        row = _assessment(assessment)
        yield {"record_type": "assessment", "at": utc_iso(assessment.completed_at), "kind": row.pop("instrument"),
               **row}  # fmt: skip
    for session in _sessions(patient, with_notes=care_team):
        row = _session(session, with_notes=care_team)
        if care_team:
            row["note"] = row.pop("notes")
        yield {"record_type": "session", "at": utc_iso(session.starts_at), **row}
    if not care_team:
        for name, records in _other_apps_sections(patient).items():
            record_type = name.removesuffix("s")
            for record in records:
                yield {"record_type": record_type, "id": record.get("id"), "details": _details(record)}


def own_export_rows(patient: Patient) -> Iterator[dict]:
    return _export_rows(patient, care_team=False)


def care_team_export_rows(patient: Patient) -> Iterator[dict]:
    return _export_rows(patient, care_team=True)


def fhir_export_records(patient: Patient) -> tuple[Iterator[dict], Iterator[dict]]:
    """The entries and assessments a FHIR Bundle is made of, as the dicts journal.fhir takes."""
    return (_entry(e) for e in _entries(patient)), (_assessment(a) for a in _assessments(patient))


# --- The clinic-wide entries export --------------------------------------------------------------

_CLINIC_ENTRY_FIELDS = (
    "id", "patient_id", "kind", "occurred_at", "local_date", "local_hour", "craving", "mood", "anxiety",
    "sleep_hours", "substance", "amount", "triggers", "coping", "late", "version", "received_at",
)  # fmt: skip
# Patients appear by their id only: the file is for looking at the clinic as a whole (and can be
# joined to the dashboard, where every lookup of a name is access-logged); names add nothing to that
# and would make a leaked file identify people at a glance.
CLINIC_EXPORT_COLUMNS = [
    "entry_id", "patient_id", "kind", "occurred_at", "local_date", "local_hour", "craving", "mood", "anxiety",
    "sleep_hours", "substance", "amount", "triggers", "coping", "late", "edited", "received_at",
]  # fmt: skip


class _AsText(Func):
    template = "(%(expressions)s)::text"
    output_field = TextField()


class _AsUtcText(Func):
    template = """to_char(%(expressions)s AT TIME ZONE 'UTC', 'YYYY-MM-DD"T"HH24:MI:SS.US"Z"')"""
    output_field = TextField()


# On PostgreSQL the ids and instants come out as text, written by the database: building a UUID and
# a zone-aware datetime per cell in Python, only to turn them back into text, was over half the
# export's time (measured: 57k → 97k rows/s for the read alone).
_POSTGRES_TEXT = {
    "id": ("id_text", _AsText), "patient_id": ("patient_id_text", _AsText),
    "occurred_at": ("occurred_at_text", _AsUtcText), "received_at": ("received_at_text", _AsUtcText),
}  # fmt: skip


def _clinic_entries(clinic_id, *, from_date: date | None, to_date: date | None) -> QuerySet[Entry]:
    queryset = Entry.objects.filter(patient__clinic_id=clinic_id, deleted_at__isnull=True)
    if from_date:
        queryset = queryset.filter(local_date__gte=from_date)
    if to_date:
        queryset = queryset.filter(local_date__lte=to_date)
    return queryset


def _utc_texts(rows: Iterator[tuple]) -> Iterator[tuple]:
    for row in rows:
        yield (*row[:3], utc_iso(row[3]), *row[4:16], utc_iso(row[16]), *row[17:])


def clinic_export_rows(
    clinic_id, *, patient_ids: list, from_date: date | None = None, to_date: date | None = None,
    with_notes: bool = False, chunk_size: int = 5000,
) -> Iterator[tuple]:  # fmt: skip
    """Every live entry of the clinic as CSV cells in CLINIC_EXPORT_COLUMNS order (+ `note`).

    Only of `patient_ids`, the patients already access-logged (clinic_export_patient_ids): the
    rows are read in a later snapshot, and a patient whose first entry lands in between must not
    leave the clinic unlogged.

    Tuples from `values_list` over a server-side cursor: no model per row. Iterate inside a
    transaction on PostgreSQL, so the cursor streams as it is read rather than being a WITH HOLD
    cursor that PostgreSQL materialises in full before the first row. In storage order (about the
    order entries arrived): ordering by patient and time, even along the (patient, local_date)
    index, made PostgreSQL's side four times slower (7 s against 1.7 s for 1.5 M rows).

    The hot loop of a million-row export, so only the two free-text cells (amount, note) go through
    csv_cell: every other cell is a UUID, a choice, a date, a number from 0 to 24 or a boolean,
    none of which can begin with a formula character.
    """
    fields = (*_CLINIC_ENTRY_FIELDS, "note") if with_notes else _CLINIC_ENTRY_FIELDS
    queryset = _clinic_entries(clinic_id, from_date=from_date, to_date=to_date).filter(patient_id__in=patient_ids)
    queryset = queryset.order_by()  # see above
    if connections[queryset.db].vendor == "postgresql":
        queryset = queryset.annotate(**{name: text(F(field)) for field, (name, text) in _POSTGRES_TEXT.items()})
        fields = tuple(_POSTGRES_TEXT.get(field, (field,))[0] for field in fields)
        rows = queryset.values_list(*fields).iterator(chunk_size=chunk_size)
    else:
        rows = _utc_texts(queryset.values_list(*fields).iterator(chunk_size=chunk_size))
    for row in rows:
        cells = (
            row[0], row[1], row[2], row[3], row[4], row[5], row[6], row[7], row[8], row[9], row[10],
            csv_cell(row[11]) if row[11] else "", " ".join(row[12]), " ".join(row[13]), row[14], row[15] > 1, row[16],
        )  # fmt: skip
        yield (*cells, csv_cell(row[17]) if row[17] else "") if with_notes else cells


def clinic_export_patient_ids(clinic_id, *, from_date: date | None = None, to_date: date | None = None) -> list:
    """The patients an export touches (one access-log row each): those with a live entry in range.
    One index probe per patient of the clinic, however many entries they have."""
    live = _clinic_entries(clinic_id, from_date=from_date, to_date=to_date).filter(patient_id=OuterRef("pk"))
    return list(Patient.objects.filter(clinic_id=clinic_id).filter(Exists(live)).values_list("pk", flat=True))
