"""Reads of alerts (SPEC §9): the care team's inbox, counts for the triage list, and the
candidates of the hourly disengagement check."""

import json
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from datetime import date, datetime

from django.db import connection
from django.db.models import BooleanField, Count, F, OuterRef, QuerySet, Subquery
from django.db.models.expressions import RawSQL

from accounts.models import Patient, PatientStatus, User
from accounts.selectors import patients_visible_to
from journal.models import Alert, AlertRule, AlertSeverity, AlertStatus, DailyRollup


def alerts_visible_to(
    user: User, *, status: str | None = None, severity: str | None = None, patient_id=None
) -> QuerySet[Alert]:
    """Alerts of the patients this user may see (the one access rule), newest first, with what a
    row shows joined in: a page is one query however many alerts it holds."""
    queryset = Alert.objects.filter(patient__in=patients_visible_to(user))
    if status:
        queryset = queryset.filter(status=status)
    if severity:
        queryset = queryset.filter(severity=severity)
    if patient_id:
        queryset = queryset.filter(patient_id=patient_id)
    return queryset.select_related("patient", "acknowledged_by", "resolved_by").order_by("-opened_at", "-id")


def severities_fired_by(patient: Patient, *, entry_ids: Iterable = (), assessment_ids: Iterable = ()) -> set[str]:
    """The severities of this patient's alerts (any status) that these entries' or assessments'
    writes opened or added evidence to: what a retried write must answer with, since its first
    answer may have been lost. One query, whatever the number of ids (a replayed sync batch)."""
    # An assessment is named as the one that fired, or as the late PHQ-9 whose arrival revealed the
    # next one's rise (`revealed_by`).
    markers = [("entry", str(pk)) for pk in entry_ids] + [
        (key, str(pk)) for pk in assessment_ids for key in ("assessment", "revealed_by")
    ]
    if not markers:
        return set()
    alerts = Alert.objects.filter(patient=patient)
    if connection.vendor == "postgresql":
        # Evidence items name the entry or assessment that fired them: containment of any of them.
        items = [json.dumps([{key: value}]) for key, value in markers]
        fired = RawSQL("evidence @> ANY(%s::jsonb[])", (items,), output_field=BooleanField())
        return set(alerts.filter(fired).values_list("severity", flat=True).distinct())
    # SQLite (the embedded demo) has no JSON containment: a patient has few alerts, look in Python.
    wanted = set(markers)
    return {
        severity
        for severity, evidence in alerts.values_list("severity", "evidence")
        if any(
            (key, item.get(key)) in wanted
            for item in evidence
            for key in ("entry", "assessment", "previous_assessment")
        )
    }


def open_alert_counts(patients: QuerySet[Patient]) -> dict:
    """{patient_id: {"urgent": n, "high": n, "medium": n, "low": n}} of unresolved alerts (open or
    acknowledged: an acknowledged alert is still being worked on) for these patients — pass the
    ones visible to the reader. One query; patients without any are absent."""
    counts: dict = {}
    severities = AlertSeverity.values[::-1]  # urgent first; an enum's values are rebuilt on every read
    rows = (
        Alert.objects.filter(patient__in=patients)
        .exclude(status=AlertStatus.RESOLVED)
        .values("patient_id", "severity")
        .annotate(n=Count("id"))
        .order_by()
    )
    for row in rows:
        counts.setdefault(row["patient_id"], dict.fromkeys(severities, 0))[row["severity"]] = row["n"]
    return counts


@dataclass(frozen=True)
class DisengagementCandidate:
    patient: Patient
    days: int  # the clinic's alert_disengaged_days
    enrolled_at: datetime
    last_entry_day: date | None
    last_alerted_at: datetime | None  # the last time a `disengaged` alert of theirs fired


def disengagement_candidates() -> Iterator[DisengagementCandidate]:
    """Every active, enrolled patient with their last journal day (from the rollups) and the last
    `disengaged` firing, in one query. Whose journal days count as silent depends on each patient's
    zone and clinic, so the caller decides in Python over these few columns."""
    last_day = DailyRollup.objects.filter(patient=OuterRef("pk")).order_by("-local_date").values("local_date")[:1]
    last_alerted = (
        Alert.objects.filter(patient=OuterRef("pk"), rule=AlertRule.DISENGAGED)
        .order_by("-last_fired_at")
        .values("last_fired_at")[:1]
    )
    patients = (
        Patient.objects.filter(status=PatientStatus.ACTIVE, user__isnull=False, user__is_active=True)
        .select_related("clinic")
        .annotate(
            enrolled_at=F("user__date_joined"),
            last_entry_day=Subquery(last_day),
            last_alerted_at=Subquery(last_alerted),
        )
        .only("id", "timezone", "clinic__alert_disengaged_days")
        .order_by("id")
    )
    for patient in patients.iterator(chunk_size=2000):
        yield DisengagementCandidate(
            patient=patient,
            days=patient.clinic.alert_disengaged_days,
            enrolled_at=patient.enrolled_at,
            last_entry_day=patient.last_entry_day,
            last_alerted_at=patient.last_alerted_at,
        )
