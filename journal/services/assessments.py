"""Writes of questionnaires (SPEC §6)."""

import uuid
from datetime import datetime, timedelta

from django.db import IntegrityError, transaction

from accounts.models import Patient
from backend import hooks
from backend.api.exceptions import Conflict
from journal.instruments import instrument
from journal.models import Assessment
from journal.risk import Written, evaluate_writes, support_for_retry
from journal.services.entries import sequence_allocate

LATE_AFTER = timedelta(hours=24)

_CONFLICT_MESSAGE = "An assessment with this id already exists with other content."


def _stored(assessment_id) -> Assessment | None:
    return Assessment.objects.filter(pk=assessment_id).first()


def _same_content(stored: Assessment, *, patient: Patient, data: dict) -> bool:
    return (
        stored.patient_id == patient.pk
        and stored.instrument == data["instrument"]
        and list(stored.answers) == list(data["answers"])
        and stored.completed_at == data["completed_at"]
        and stored.prompt_id == data.get("prompt_id")
    )


def _replayed(stored: Assessment, *, patient: Patient, data: dict) -> tuple[Assessment, bool, dict | None]:
    """A retry of a stored assessment, with the support block its first answer carried, or a
    conflict. Another patient's id is answered exactly like a changed one, so the 409 says nothing
    about whose it is or what it holds."""
    if not _same_content(stored, patient=patient, data=data):
        raise Conflict(_CONFLICT_MESSAGE)
    return stored, False, support_for_retry(patient, assessment_ids=[stored.pk])


@transaction.atomic
def assessment_create(*, patient: Patient, data: dict, request_time: datetime) -> tuple[Assessment, bool, dict | None]:
    """Stores a completed questionnaire with its score; idempotent by the client's id.

    `data` is what AssessmentCreateSerializer validated. Returns (assessment, created, support):
    `created` is False for a safe retry (the stored row, unchanged); `support` is the block to show
    when a new assessment fired a high or urgent alert.

    Takes the patient's journal lock first, the one every entry write takes, and holds it to
    commit: one patient's writes run one at a time, so the alert rules see every PHQ-9 committed
    before this one (two sent at once would each miss the other, and `phq9_worsening` would never
    compare them). Count 0: the lock, without a change number the changes feed would skip.
    """
    sequence_allocate(patient.pk, 0)
    assessment_id = data.get("id") or uuid.uuid4()
    stored = _stored(assessment_id)
    if stored is not None:
        return _replayed(stored, patient=patient, data=data)

    completed_at = data["completed_at"]
    score, severity = instrument(data["instrument"]).score(data["answers"])
    assessment = Assessment(
        id=assessment_id,
        patient=patient,
        instrument=data["instrument"],
        answers=list(data["answers"]),
        score=score,
        severity=severity,
        completed_at=completed_at,
        local_date=patient.journal_day(completed_at)[0],
        prompt_id=data.get("prompt_id"),
        received_at=request_time,
        late=request_time - completed_at > LATE_AFTER,
    )
    if assessment.prompt_id and any(
        hooks.prompt_answered.call(patient=patient, prompt_id=assessment.prompt_id, answered_at=completed_at)
    ):
        assessment.late = True
    try:
        # Another patient's write with the same id (not under this patient's lock) can insert
        # between our read and this insert; the savepoint keeps the outer transaction usable so we
        # can read what it stored.
        with transaction.atomic():
            assessment.save(force_insert=True)
    except IntegrityError:
        stored = _stored(assessment_id)
        if stored is None:
            raise
        return _replayed(stored, patient=patient, data=data)

    support = evaluate_writes(Written(patient=patient, assessments=[assessment]))
    return assessment, True, support
