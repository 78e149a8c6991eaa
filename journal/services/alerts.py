"""Writes of alerts (SPEC §9): raising them, the care team's acknowledge and resolve, and the
hourly look for disengaged patients.

At most one unresolved alert per patient and rule is a partial unique index, and raising leans on
it instead of a read-then-write: on PostgreSQL one INSERT … ON CONFLICT DO UPDATE appends the new
evidence to the unresolved alert; on SQLite an INSERT … ON CONFLICT DO NOTHING, then the unresolved
alerts of what it did not insert are locked and get the evidence. A race with another writer (beat's
disengagement check runs outside the patients' journal locks) ends in one alert with both pieces of
evidence, never an IntegrityError.

An urgent trigger on an alert already unresolved is news the care team must hear once its first
rounds are over (acknowledged, or 45 minutes old): the alert keeps its status (one unresolved
alert per rule, the first who and when kept), and the `urgent_alert_refired` hook writes one more
round of notifications unless one is still to go out.
"""

import uuid
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import datetime, timedelta

from django.db import connection, transaction
from django.db.models import Q
from django.utils import timezone
from rest_framework.exceptions import ValidationError

from accounts.models import Patient, User
from backend import hooks
from backend.api.exceptions import Conflict
from backend.db import insert_rows_statement, mark_saved
from journal.alert_rules import iso
from journal.models import SEVERITY_OF_RULE, Alert, AlertRule, AlertSeverity, AlertStatus
from journal.selectors.alerts import disengagement_candidates

# The newest items are kept; the journal itself holds the whole story.
EVIDENCE_KEPT = 50


@dataclass(frozen=True)
class Raising:
    """One rule fired for one patient, with its evidence items (oldest first)."""

    patient_id: uuid.UUID
    rule: str
    evidence: list[dict]


@transaction.atomic
def alerts_raise(*, raisings: Iterable[Raising], now: datetime) -> list[Alert]:
    """Opens an alert per (patient, rule), or appends the evidence to the unresolved one.

    Returns the alerts it opened; `hooks.alert_opened` is called for each (its notifications are
    written in this transaction), never for evidence added to an alert already unresolved.
    Evidence added to an unresolved urgent alert calls `hooks.urgent_alert_refired` instead, which
    tells the care team again unless a round is still to go out (one more query, to load those
    alerts; urgent triggers are rare).
    """
    pending: dict[tuple, list[dict]] = {}
    for raising in raisings:
        pending.setdefault((raising.patient_id, raising.rule), []).extend(raising.evidence)
    # SQLite (the embedded demo) has no jsonb to append with inside an upsert: the ORM steps there.
    if connection.vendor == "postgresql":
        opened, appended = _upsert(pending, now)
    else:
        opened, appended = _insert_or_append(pending, now)
    for alert in opened:
        hooks.alert_opened.call(alert=alert)
    refired = [alert_id for alert_id, severity in appended if severity == AlertSeverity.URGENT]
    for alert in Alert.objects.filter(pk__in=refired).order_by("pk"):  # no query when there are none
        hooks.urgent_alert_refired.call(alert=alert)
    return opened


def _candidates(pending: dict[tuple, list[dict]], now: datetime) -> list[Alert]:
    """A new alert per pending (patient, rule), in one lock order for every writer."""
    return [
        Alert(
            id=uuid.uuid4(),
            patient_id=patient_id,
            rule=rule,
            severity=SEVERITY_OF_RULE[rule],
            status=AlertStatus.OPEN,
            evidence=pending[(patient_id, rule)][-EVIDENCE_KEPT:],
            opened_at=now,
            last_fired_at=now,
        )
        for patient_id, rule in sorted(pending, key=lambda key: (str(key[0]), key[1]))
    ]


# Where the (patient, rule) already has an unresolved alert, the partial unique index turns the
# insert into an append to that alert's evidence, trimmed to the newest EVIDENCE_KEPT items. The
# conflict target names the index's own predicate so PostgreSQL infers it. A writer racing us waits
# on the row and then appends (or inserts, if it was resolved meanwhile): never an IntegrityError.
_APPEND_ON_CONFLICT = f"""
ON CONFLICT (patient_id, rule) WHERE NOT (status = '{AlertStatus.RESOLVED}') DO UPDATE SET
    evidence = (
        SELECT jsonb_agg(t.item ORDER BY t.n)
        FROM jsonb_array_elements({Alert._meta.db_table}.evidence || EXCLUDED.evidence) WITH ORDINALITY AS t(item, n)
        WHERE t.n > jsonb_array_length({Alert._meta.db_table}.evidence || EXCLUDED.evidence) - %s
    ),
    last_fired_at = EXCLUDED.last_fired_at
RETURNING id, severity
"""  # noqa: S608 - names and a constant from the model


# (id, severity) of an unresolved alert that took evidence instead of a new one opening.
Appended = tuple[uuid.UUID, str]


def _upsert(pending: dict[tuple, list[dict]], now: datetime) -> tuple[list[Alert], list[Appended]]:
    """PostgreSQL: every pending alert opened or appended to in one statement. A returned id that
    is the candidate's own was inserted; any other is the unresolved alert that took the evidence."""
    candidates = _candidates(pending, now)
    sql, params = insert_rows_statement(candidates)
    with connection.cursor() as cursor:
        cursor.execute(sql + _APPEND_ON_CONFLICT, [*params, EVIDENCE_KEPT])
        returned = {row[0]: row for row in cursor.fetchall()}
    opened = [alert for alert in candidates if alert.pk in returned]
    for alert in opened:
        mark_saved(alert)
        del returned[alert.pk]
    return opened, list(returned.values())


def _insert_or_append(pending: dict[tuple, list[dict]], now: datetime) -> tuple[list[Alert], list[Appended]]:
    """The same as `_upsert` in ORM steps: insert what the index lets in, then lock the unresolved
    alerts of the rest and append to them."""
    opened: list[Alert] = []
    appended: list[Appended] = []
    # Another pass only for an alert resolved between our insert and our read of it: nothing is
    # left to add to, and there is room for a new one.
    for _attempt in range(3):
        if not pending:
            break
        candidates = _candidates(pending, now)
        Alert.objects.bulk_create(candidates, ignore_conflicts=True)
        inserted = set(Alert.objects.filter(pk__in=[a.pk for a in candidates]).values_list("pk", flat=True))
        for alert in candidates:
            if alert.pk in inserted:
                mark_saved(alert)
                opened.append(alert)
                del pending[(alert.patient_id, alert.rule)]
        if not pending:
            break
        unresolved = Q()
        for patient_id, rule in pending:
            unresolved |= Q(patient_id=patient_id, rule=rule)
        existing = list(
            Alert.objects.select_for_update()
            .filter(unresolved)
            .exclude(status=AlertStatus.RESOLVED)
            .order_by("patient_id", "rule")
            .only("id", "patient_id", "rule", "severity", "evidence", "last_fired_at")
        )
        for alert in existing:
            alert.evidence = [*alert.evidence, *pending.pop((alert.patient_id, alert.rule))][-EVIDENCE_KEPT:]
            alert.last_fired_at = now
            appended.append((alert.pk, alert.severity))
        if existing:
            Alert.objects.bulk_update(existing, ["evidence", "last_fired_at"])
    return opened, appended


def alert_raise(*, patient: Patient, rule: str, evidence: list[dict], now: datetime) -> Alert | None:
    """One rule fired for one patient: returns the alert it opened, or None when the evidence went
    to the unresolved alert of that rule."""
    opened = alerts_raise(raisings=[Raising(patient.pk, rule, list(evidence))], now=now)
    return opened[0] if opened else None


def _transition(alert: Alert, *, allowed_from: tuple[str, ...], changes: dict, conflict: str) -> Alert:
    # A conditional UPDATE claims the step: two clinicians pressing at once get one 200 and one 409.
    claimed = Alert.objects.filter(pk=alert.pk, status__in=allowed_from).update(**changes)
    if claimed != 1:
        raise Conflict(conflict)
    alert.refresh_from_db()
    return alert


@transaction.atomic
def alert_acknowledge(*, alert: Alert, by: User, note: str = "", now: datetime | None = None) -> Alert:
    """open → acknowledged. An acknowledged or resolved alert is a 409: the first who and when stay."""
    now = now or timezone.now()
    return _transition(
        alert,
        allowed_from=(AlertStatus.OPEN,),
        changes={
            "status": AlertStatus.ACKNOWLEDGED,
            "acknowledged_at": now,
            "acknowledged_by": by,
            "acknowledge_note": note,
        },
        conflict="This alert is already acknowledged or resolved.",
    )


@transaction.atomic
def alert_resolve(*, alert: Alert, by: User, note: str, now: datetime | None = None) -> Alert:
    """open or acknowledged → resolved, with a note. Resolving an open alert records no
    acknowledgement that did not happen: acknowledged_* stay empty."""
    if not note.strip():
        raise ValidationError({"note": ["Say how this alert was resolved."]}, code="required")
    now = now or timezone.now()
    return _transition(
        alert,
        allowed_from=(AlertStatus.OPEN, AlertStatus.ACKNOWLEDGED),
        changes={"status": AlertStatus.RESOLVED, "resolved_at": now, "resolved_by": by, "resolve_note": note},
        conflict="This alert is already resolved.",
    )


def disengagement_check(*, now: datetime) -> list[Alert]:
    """Raises `disengaged` (low) for active, enrolled patients with no entry on the last N complete
    journal days (N per clinic) nor today. Once per silence: a patient already alerted since their
    last entry is left alone, also when the care team resolved that alert. Resolves nothing.

    Returns the alerts it opened. Queries: one read of the candidates, then the raise (a fixed few).
    """
    raisings = []
    for candidate in disengagement_candidates():
        patient = candidate.patient
        today = patient.journal_day(now)[0]
        days = candidate.days
        first_complete = today - timedelta(days=days)
        enrolled_day = patient.journal_day(candidate.enrolled_at)[0]
        if enrolled_day >= first_complete:
            continue  # fewer than N whole journal days since enrolment
        if candidate.last_entry_day is not None and candidate.last_entry_day >= first_complete:
            continue
        silent_since = candidate.last_entry_day or enrolled_day
        if candidate.last_alerted_at is not None and patient.journal_day(candidate.last_alerted_at)[0] > silent_since:
            continue  # this silence was already raised
        raisings.append(
            Raising(
                patient.pk,
                AlertRule.DISENGAGED,
                [
                    {
                        "at": iso(now),
                        "last_entry_day": candidate.last_entry_day.isoformat() if candidate.last_entry_day else None,
                        "days": [(first_complete + timedelta(days=i)).isoformat() for i in range(days)],
                    }
                ],
            )
        )
    if not raisings:
        return []
    return alerts_raise(raisings=raisings, now=now)
