"""The triage list (SPEC §8): one row per care-team patient, for the API and the dashboard page;
and what the dashboard's patient page reads (at the end).

It lives in the dashboard app because it is the clinician's overview across the apps below it:
daily rollups and alerts (journal) and prompt compliance (reminders). Its cost does not grow with
the number of entries and it takes the same queries for 5 patients or 2,000:

1. the patients, each with its latest live entry and next session (index probes per patient);
2. their rollups of the last 14 journal days, summed per patient in SQL (recent_windows);
3. their unresolved alerts, counted by severity;
4. their prompts due on the last 7 journal days, counted in SQL (recent_prompt_counts).
"""

from datetime import date, datetime, timedelta
from zoneinfo import ZoneInfo

from django.db.models import OuterRef, Prefetch, Subquery
from django.utils import timezone

from accounts.models import Patient, User, journal_day_in
from accounts.selectors import patients_visible_to
from journal.instruments import instrument
from journal.models import AlertSeverity, Entry, EntryRevision, Instrument, SessionKind, TherapySession
from journal.selectors.alerts import alerts_visible_to, open_alert_counts
from journal.selectors.entries import entries_of
from journal.selectors.rollups import RollupSums, recent_windows
from journal.selectors.trends import journal_today, session_trends_of, trends_of
from reminders.selectors.compliance import compliance_of, recent_prompt_counts

TRIAGE_LIMIT = 2000
WINDOW_DAYS = 7
SPARKLINE_DAYS = 14
ORDERINGS = ("attention", "name", "-name", "last_entry", "-last_entry")
_NO_ALERTS = {"urgent": 0, "high": 0, "medium": 0, "low": 0}
_SEVERITY_RANK = {AlertSeverity.URGENT: 4, AlertSeverity.HIGH: 3, AlertSeverity.MEDIUM: 2, AlertSeverity.LOW: 1}


def _visible(user: User, query: str):
    patients = patients_visible_to(user)
    return patients.filter(display_name__icontains=query) if query else patients


_PATIENT_COLUMNS = ("id", "display_name", "status", "timezone", "last_entry_at", "next_session_at")


def _patients(user: User, query: str) -> list[dict]:
    """The visible patients as dicts of _PATIENT_COLUMNS: 1,000 model instances cost more than the
    query that reads them."""
    live = Entry.objects.filter(patient=OuterRef("pk"), deleted_at__isnull=True)
    upcoming = TherapySession.objects.filter(
        patient=OuterRef("pk"), starts_at__gt=timezone.now(), deleted_at__isnull=True
    )
    patients = _visible(user, query).annotate(
        last_entry_at=Subquery(live.order_by("-occurred_at").values("occurred_at")[:1]),
        next_session_at=Subquery(upcoming.order_by("starts_at").values("starts_at")[:1]),
    )
    return list(patients.order_by("display_name", "id").values(*_PATIENT_COLUMNS)[:TRIAGE_LIMIT])


def _row(patient: dict, zone: ZoneInfo, today: date, windows: dict, alerts: dict, prompts: dict) -> dict:
    """One triage row from the reads of triage_rows, each keyed by patient id."""
    recent = windows.get(patient["id"])
    this_week, last_week = (recent.this_week, recent.last_week) if recent else (RollupSums(), RollupSums())
    sent, completed = prompts.get(patient["id"], (0, 0))
    last_entry_at = patient["last_entry_at"]
    last_entry_day = journal_day_in(zone, last_entry_at)[0] if last_entry_at else None
    return {
        "id": patient["id"],
        "display_name": patient["display_name"],
        "status": patient["status"],
        "last_entry_at": last_entry_at,
        "days_since_last_entry": (today - last_entry_day).days if last_entry_day else None,
        "entries_7d": this_week.entries,
        "check_in_days_7d": this_week.check_in_days,
        "craving_mean_7d": this_week.craving_mean,
        "craving_mean_prev_7d": last_week.craving_mean,
        "mood_mean_7d": this_week.mood_mean,
        "use_days_7d": this_week.use_days,
        "open_alerts": alerts.get(patient["id"], _NO_ALERTS),
        "compliance_7d": round(completed / sent, 2) if sent else None,
        "next_session_at": patient["next_session_at"],
        "craving_daily_14d": recent.craving_daily if recent else [None] * SPARKLINE_DAYS,
    }


def _attention(row: dict) -> tuple:
    """Most urgent unresolved alert first, then use, then a craving rise, then silence."""
    alerts = row["open_alerts"]
    worst = max((_SEVERITY_RANK[s] for s, count in alerts.items() if count), default=0)
    now, before = row["craving_mean_7d"], row["craving_mean_prev_7d"]
    rise = now - before if now is not None and before is not None else 0.0
    silence = row["days_since_last_entry"] if row["days_since_last_entry"] is not None else 10**6
    return (-worst, -row["use_days_7d"], -rise, -silence, row["display_name"].casefold(), str(row["id"]))


def _sort(rows: list[dict], ordering: str) -> list[dict]:
    if ordering == "attention":
        return sorted(rows, key=_attention)
    if ordering in ("name", "-name"):
        return sorted(rows, key=lambda r: (r["display_name"].casefold(), str(r["id"])), reverse=ordering == "-name")
    # last_entry: the longest silence first (never journalled before anyone); -last_entry: the latest first.
    never = datetime.min.replace(tzinfo=timezone.get_current_timezone())
    ordered = sorted(rows, key=lambda r: (r["last_entry_at"] or never, str(r["id"])))
    return ordered if ordering == "last_entry" else ordered[::-1]


def triage_rows(user: User, *, query: str = "", ordering: str = "attention", limit: int = TRIAGE_LIMIT) -> list[dict]:
    """SPEC §8's triage rows for the patients this user may see, ordered, at most `limit`."""
    patients = _patients(user, query)
    if not patients:
        return []
    now = timezone.now()
    zones = {name: ZoneInfo(name) for name in {patient["timezone"] for patient in patients}}
    today = {patient["id"]: journal_day_in(zones[patient["timezone"]], now)[0] for patient in patients}
    windows = recent_windows(today, week=WINDOW_DAYS, days=SPARKLINE_DAYS)
    prompts = recent_prompt_counts(today, days=WINDOW_DAYS)
    # Filtered by the same rule as a subquery, not by a list of a thousand ids.
    alerts = open_alert_counts(_visible(user, query).values("pk"))
    rows = [_row(p, zones[p["timezone"]], today[p["id"]], windows, alerts, prompts) for p in patients]
    return _sort(rows, ordering)[:limit]


# --- The patient page -----------------------------------------------------------------------------

PATIENT_PAGE_RANGES = (30, 90, 180, 365)
RECENT_ENTRIES = 25
PAGE_ALERTS = 20
SESSION_WINDOW = {"before": 7, "after": 14}


def _bands(code: str) -> list[dict]:
    return [{"min": band.min, "max": band.max, "label": band.label} for band in instrument(code).bands]


def patient_overview(user: User, patient: Patient, *, days: int, now: datetime | None = None) -> dict:
    """Everything the patient page shows, read through the same selectors as the API: trends over
    the last `days` journal days, the session-anchored overlay, compliance, recent entries with their
    edit history, and the patient's alerts. A fixed number of queries whatever the history's length."""
    moment = now or timezone.now()
    last = journal_today(patient, moment)
    first = last - timedelta(days=days - 1)
    recent = (
        entries_of(patient)
        .order_by("-occurred_at", "-id")
        .prefetch_related(Prefetch("revisions", queryset=EntryRevision.objects.order_by("-version")))
    )
    return {
        "first": first,
        "last": last,
        "trends": trends_of(patient, first=first, last=last, now=moment),
        "session_trends": session_trends_of(patient, kind=SessionKind.KETAMINE, now=moment, **SESSION_WINDOW),
        "compliance": compliance_of(patient, from_date=first, to_date=last),
        "entries": list(recent[:RECENT_ENTRIES]),
        "alerts": list(alerts_visible_to(user, patient_id=patient.pk)[:PAGE_ALERTS]),
        "bands": {"phq9": _bands(Instrument.PHQ9), "gad7": _bands(Instrument.GAD7)},
    }
