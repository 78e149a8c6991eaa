"""The demo clinic's alerts (seed_demo): the real rules replayed over the last weeks of every story,
and the care team's work on what they raised, so the inbox, the triage list and the clinicians'
notifications agree with the journal.

The histories are bulk-inserted, so no rule ran when they were written. Here each write of the last
ALERT_HISTORY_DAYS (the entries the server received together, a questionnaire) goes, in the order
the server saw it and with its own clock, through journal.risk's rules and journal.services.alerts'
raise, as an entry write would; beat's disengagement check runs in the hours it could find a
silence. The rules read the daily rollups as they stand at the end of the history, not as they
stood at that write: a day's later entries count a few hours early, which no one can see in a demo.

The demo clinician works the alerts as a care team would, between the writes: acknowledges within
minutes (urgent) or hours, and resolves with a note once an alert has been quiet for a day or more.
Only what fell before the last SETTLED_DAYS is worked through, so this week's alerts are the inbox
the demo opens on, whatever the weekday it was seeded on; a lapse (`use_reported`) is the exception
and gets its call the same day. The notifications that opening each alert wrote are then dated to
match: sent when the alert opened (urgent rounds until someone acknowledged), so a first `make run`
does not mail the console about alerts weeks old.
"""

import random
from dataclasses import dataclass
from datetime import datetime, time, timedelta

from django.db.models import Max

from accounts.models import Patient, PatientStatus, User
from backend import demo_histories as stories
from journal.models import Alert, AlertRule, AlertSeverity, AlertStatus, Assessment, DailyRollup, Entry
from journal.risk import RULES, Written
from journal.services.alerts import Raising, alert_acknowledge, alert_resolve, alerts_raise, disengagement_check
from reminders.models import AlertNotification, NotificationStatus
from reminders.services.alert_notifications import ROUND_INTERVAL

ALERT_HISTORY_DAYS = 42
SETTLED_DAYS = 8  # reaches back past the latest weekly PHQ-9, so this week's item 9 is unresolved
ACKNOWLEDGED_THIS_WEEK = (AlertRule.USE_REPORTED,)
BEAT_CHECKS_AT = time(0, 5)  # beat's first hourly check of a journal day
# How soon the care team acknowledges (urgent ones page them every 15 minutes).
ACKNOWLEDGED_WITHIN = {
    AlertSeverity.URGENT: (timedelta(minutes=10), timedelta(minutes=40)),
    AlertSeverity.HIGH: (timedelta(hours=1), timedelta(hours=8)),
    AlertSeverity.MEDIUM: (timedelta(hours=2), timedelta(hours=20)),
    AlertSeverity.LOW: (timedelta(hours=2), timedelta(hours=20)),
}

# What the clinician wrote when acknowledging and resolving, per rule.
NOTES = {
    AlertRule.PHQ9_SELF_HARM: (
        "Phoned the same evening: passive thoughts, no plan or intent. Safety plan reviewed.",
        "Seen at the next session; item 9 discussed, safety plan kept on the fridge. Monitoring weekly.",
    ),
    AlertRule.USE_REPORTED: (
        "Called after the lapse; booked an extra session this week.",
        "Lapse reviewed in session; urge plan updated for weekends.",
    ),
    AlertRule.CRAVING_HIGH: (
        "Messaged to check in; patient used the urge plan.",
        "Cravings back down; discussed the triggers at the session.",
    ),
    AlertRule.PHQ9_WORSENING: (
        "Score noted; will go through the questionnaire at the next session.",
        "Discussed in session: a hard week at work, scores settling again.",
    ),
    AlertRule.CRAVING_RISING: (
        "Will raise at the next session.",
        "Trend reviewed with the patient; back to the usual range.",
    ),
    AlertRule.MOOD_LOW: (
        "Called: low week, no safety concerns. Added a mid-week check-in.",
        "Mood improving; sleep plan agreed.",
    ),
    AlertRule.DISENGAGED: (
        "Left a voicemail and sent a message.",
        "Patient back in touch; phone had been broken.",
    ),
}


def demo_alerts_create(
    *, histories: list[tuple[Patient, stories.Story]], clinician: User, now: datetime, seed: str
) -> list[Alert]:
    """Replays the recent weeks of the active patients' histories through the alert rules, with the
    clinician's acknowledgements and resolutions in between; returns every alert raised."""
    ids = [patient.pk for patient, _ in histories]
    patients = Patient.objects.select_related("clinic").in_bulk(ids)
    active = {pk: p for pk, p in patients.items() if p.status == PatientStatus.ACTIVE and p.user_id is not None}
    since = now - timedelta(days=ALERT_HISTORY_DAYS)
    rollups: dict = {}
    for row in DailyRollup.objects.filter(
        patient__in=list(active), local_date__gte=(since - timedelta(days=21)).date()
    ):
        rollups.setdefault(row.patient_id, {})[row.local_date] = row
    replay = _Replay(clinician=clinician, now=now, rng=random.Random(f"{seed}:alerts"), rollups=rollups)
    replay.run(_writes(active, since=since), _beat_hours(active, now))
    alerts = list(Alert.objects.filter(patient__in=ids))
    _date_notifications(alerts, now=now)
    return alerts


def _writes(patients: dict, *, since: datetime) -> list[tuple[datetime, Patient, list, list]]:
    """(received at, patient, entries, assessments): what the server took in at once, oldest first."""
    writes: dict[tuple, tuple[list, list]] = {}
    entries = Entry.objects.filter(patient__in=list(patients), received_at__gte=since).defer("note")
    for entry in entries.order_by("received_at", "change_seq"):
        writes.setdefault((entry.received_at, entry.patient_id), ([], []))[0].append(entry)
    for assessment in Assessment.objects.filter(patient__in=list(patients), received_at__gte=since):
        writes.setdefault((assessment.received_at, assessment.patient_id), ([], []))[1].append(assessment)
    return [
        (at, patients[patient_id], entries, assessments)
        for (at, patient_id), (entries, assessments) in sorted(writes.items(), key=lambda item: item[0][0])
    ]


def _beat_hours(patients: dict, now: datetime) -> list[datetime]:
    """When beat's hourly disengagement check could first have raised each patient's silence: in
    the hour after the Nth silent journal day ended (the check finds nothing new in the others).

    The check looks at every clinic, so when the database holds patients of other clinics it runs
    once, now, as beat is about to anyway: a check in the past would date their alerts back."""
    others = Patient.objects.filter(status=PatientStatus.ACTIVE, user__isnull=False).exclude(pk__in=list(patients))
    if others.exists():
        return [now]
    last_days = (
        DailyRollup.objects.filter(patient__in=list(patients)).values("patient_id").annotate(last=Max("local_date"))
    )
    hours = set()
    for row in last_days.order_by():
        patient = patients[row["patient_id"]]
        day = row["last"] + timedelta(days=patient.clinic.alert_disengaged_days + 1)
        hour = datetime.combine(day, BEAT_CHECKS_AT, tzinfo=patient.zone)
        if hour <= now:
            hours.add(hour)
    return sorted(hours)


@dataclass
class _Worked:
    """One unresolved alert and when the clinician will get to it."""

    alert: Alert
    last_fired_at: datetime
    acknowledge_at: datetime
    quiet_before_resolving: timedelta


class _Replay:
    def __init__(self, *, clinician: User, now: datetime, rng: random.Random, rollups: dict):
        self.clinician, self.now, self.rng, self.rollups = clinician, now, rng, rollups
        self.settled = now - timedelta(days=SETTLED_DAYS)
        self.unresolved: dict[tuple, _Worked] = {}  # (patient id, rule) -> the alert

    def run(self, writes: list, beat_hours: list[datetime]) -> None:
        events = [(at, 0, write) for at, *write in writes] + [(at, 1, None) for at in beat_hours]
        for at, _, write in sorted(events, key=lambda event: (event[0], event[1])):
            self._work_until(at)
            if write is None:
                self._opened(disengagement_check(now=at), at)
            else:
                self._write(at, *write)
        self._work_until(self.now)

    def _write(self, at: datetime, patient: Patient, entries: list, assessments: list) -> None:
        # The rules read the rollups once per write; here they are the same for every write of the
        # replay (the history's final ones), so they are read once per patient and handed in.
        cache = {"rollups": self.rollups.get(patient.pk, {})}
        written = Written(patient=patient, entries=entries, assessments=assessments, now=at, _cache=cache)
        firings = [firing for rule in RULES for firing in rule(written)]
        if not firings:
            return
        opened = alerts_raise(raisings=[Raising(patient.pk, f.rule, [f.evidence]) for f in firings], now=at)
        for firing in firings:
            worked = self.unresolved.get((patient.pk, firing.rule))
            if worked is not None:
                worked.last_fired_at = at
        self._opened(opened, at)

    def _opened(self, alerts: list[Alert], at: datetime) -> None:
        for alert in alerts:
            soonest, latest = ACKNOWLEDGED_WITHIN[alert.severity]
            delay = soonest + (latest - soonest) * self.rng.random()
            quiet = timedelta(
                hours=self.rng.randint(20, 44) if alert.severity == AlertSeverity.URGENT else self.rng.randint(24, 72)
            )
            self.unresolved[(alert.patient_id, alert.rule)] = _Worked(alert, at, at + delay, quiet)

    def _work_until(self, moment: datetime) -> None:
        for key, worked in list(self.unresolved.items()):
            alert = worked.alert
            acknowledge_by = self.now if alert.rule in ACKNOWLEDGED_THIS_WEEK else self.settled
            at = worked.acknowledge_at
            if alert.status == AlertStatus.OPEN and at <= moment and at <= acknowledge_by:
                note = NOTES[alert.rule][0]
                worked.alert = alert_acknowledge(alert=alert, by=self.clinician, note=note, now=at)
            at = max(worked.last_fired_at, worked.acknowledge_at) + worked.quiet_before_resolving
            if at <= moment and at <= self.settled:
                alert_resolve(alert=worked.alert, by=self.clinician, note=NOTES[alert.rule][1], now=at)
                del self.unresolved[key]


def _date_notifications(alerts: list[Alert], *, now: datetime) -> None:
    """Each notification due when its alert opened (plus its round), sent then unless someone had
    acknowledged or resolved the alert first, in which case it was cancelled."""
    by_id = {alert.pk: alert for alert in alerts}
    rows = list(AlertNotification.objects.filter(alert__in=list(by_id)))
    for row in rows:
        alert = by_id[row.alert_id]
        handled = alert.acknowledged_at or alert.resolved_at
        row.due_at = row.next_attempt_at = row.created_at = alert.opened_at + row.round * ROUND_INTERVAL
        if handled is not None and handled <= row.due_at:
            row.status = NotificationStatus.CANCELLED
        elif row.due_at <= now:
            row.status, row.attempts, row.sent_at = NotificationStatus.SENT, 1, row.due_at + timedelta(seconds=4)
    AlertNotification.objects.bulk_update(
        rows, ["due_at", "next_attempt_at", "created_at", "status", "attempts", "sent_at"]
    )
