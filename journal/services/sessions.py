"""Writes of therapy sessions (SPEC §6), entered by the care team.

These three services are the only place a session is created, moved, changed or removed, so they
are where a ketamine session's intensive-sampling prompts (SPEC §7) follow the session.
"""

from decimal import Decimal
from typing import Any

from django.db import transaction
from django.utils import timezone
from rest_framework import exceptions

from accounts.models import Patient, User
from backend import hooks
from journal.models import SessionKind, TherapySession

_KETAMINE_ONLY = ("route", "dose_mg")
_EDITABLE = ("kind", "starts_at", "duration_minutes", "route", "dose_mg", "notes")


def _ketamine_fields_check(*, kind: str, route: str | None, dose_mg: Decimal | None) -> None:
    """Route and dose describe a ketamine dosing; on any other kind they must be empty. Checked on
    the session as it will be after the write, so a PATCH that turns a ketamine session into
    another kind must clear them in the same request."""
    if kind == SessionKind.KETAMINE:
        return
    present = {"route": route, "dose_mg": dose_mg}
    errors = {
        field: [exceptions.ErrorDetail("Only a ketamine session has a route and a dose.", code="only_for_ketamine")]
        for field in _KETAMINE_ONLY
        if present[field] is not None
    }
    if errors:
        raise exceptions.ValidationError(errors)


def _live_locked(session_id, *, select_related: tuple[str, ...] = ()) -> TherapySession:
    """The session row, locked, unless it is deleted: a PATCH or DELETE that read it before a
    concurrent DELETE committed finds it gone (404)."""
    queryset = TherapySession.objects.select_for_update().select_related(*select_related)
    session = queryset.filter(pk=session_id, deleted_at__isnull=True).first()
    if session is None:
        raise exceptions.NotFound()
    return session


@transaction.atomic
def session_create(*, patient: Patient, created_by: User, data: dict[str, Any]) -> TherapySession:
    session = TherapySession(
        patient=patient,
        created_by=created_by,
        kind=data["kind"],
        starts_at=data["starts_at"],
        duration_minutes=data["duration_minutes"],
        route=data.get("route"),
        dose_mg=data.get("dose_mg"),
        notes=data.get("notes", ""),
    )
    _ketamine_fields_check(kind=session.kind, route=session.route, dose_mg=session.dose_mg)
    session.local_date = patient.journal_day(session.starts_at)[0]
    session.save()
    hooks.therapy_session_changed.call(session=session, deleted=False)
    return session


@transaction.atomic
def session_update(*, session: TherapySession, data: dict[str, Any]) -> TherapySession:
    """Applies the fields present in `data` (a PATCH). `local_date` follows `starts_at`."""
    # Locked, so two PATCHes racing (one clearing the route, one setting it) cannot combine into a
    # row the route-only-for-ketamine constraint refuses.
    locked = _live_locked(session.pk, select_related=("patient",))
    changed = [field for field in _EDITABLE if field in data]
    for field in changed:
        setattr(locked, field, data[field])
    _ketamine_fields_check(kind=locked.kind, route=locked.route, dose_mg=locked.dose_mg)
    if "starts_at" in data:
        locked.local_date = locked.patient.journal_day(locked.starts_at)[0]
        changed.append("local_date")
    if changed:
        locked.save(update_fields=[*changed, "updated_at"])
        hooks.therapy_session_changed.call(session=locked, deleted=False)
    return locked


@transaction.atomic
def session_delete(*, session: TherapySession) -> None:
    """Deletes the session for the care team and the patient, keeping the row (`deleted_at`):
    the craving checks already sent after it stay in the compliance history, while its future
    ones are cancelled by the hook."""
    locked = _live_locked(session.pk)
    locked.deleted_at = timezone.now()
    locked.save(update_fields=["deleted_at", "updated_at"])
    hooks.therapy_session_changed.call(session=locked, deleted=True)
