"""The alert rules of SPEC §9 that run on a write: what each looks at, and when it fires.

A rule takes the `Written` of one write and returns its firings, each with the evidence a clinician
needs to see why (ids and figures, never note text). Thresholds are the clinic's. Raising the alert
is not a rule's business (journal.services.alerts); `disengaged` is not a rule here because no
write fires it: beat looks for silence (journal.services.alerts.disengagement_check).

Day-based rules read DailyRollup rows, kept exact by the same transaction before the rules run:

- which days: those the write touched (an offline sync can write old ones) and their neighbours,
  as far as a run of N days reaches; "consecutive" means calendar-consecutive journal days.
- a rule fires only on an entry that could have made its condition true, so a calm entry on a day
  that already belongs to a qualifying run does not reopen an alert the care team just resolved:
  `craving_high` needs the entry's own craving ≥ the level (no other change can raise a day's
  maximum); `mood_low` needs the entry's own mood ≤ the level, or an edit that carries a mood (an
  edit can lower a day's mean with a value above the level). An edit that moves an entry to another
  journal day changes two days: the day it left is looked at too when the mood that left it was
  above the level (only then can its going lower that day's mean to the level).
- `craving_rising` looks at the trend now: the 7 journal days ending on the patient's current
  journal day against the 7 before, and fires when a written craving falls inside those 14 days.
  A window that ended weeks ago is history, not a reason to call the patient today; old days that
  an offline sync delivers still count through `craving_high` and `mood_low`.
"""

from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, timedelta
from decimal import Decimal

from django.utils import timezone

from accounts.models import Patient
from journal.models import AlertRule, Assessment, Entry, EntryKind, EntryRevision, Instrument
from journal.selectors.rollups import daily_rollups

RISING_WINDOW_DAYS = 7


@dataclass(frozen=True)
class Written:
    """What one write put in the database, for the rules to look at."""

    patient: Patient
    entries: Sequence = field(default_factory=tuple)
    assessments: Sequence = field(default_factory=tuple)
    now: datetime | None = None  # the write's clock; None: the rules take timezone.now()
    # Rollups read once per write and shared by the day-based rules.
    _cache: dict = field(default_factory=dict, compare=False, repr=False)


@dataclass(frozen=True)
class Firing:
    """A rule fired: which rule, and one evidence item for the alert."""

    rule: str
    evidence: dict


def iso(moment: datetime) -> str:
    return moment.astimezone(UTC).isoformat().replace("+00:00", "Z")


def _now(written: Written) -> datetime:
    return written.now if written.now is not None else timezone.now()


def _live_entries(written: Written) -> list:
    return [entry for entry in written.entries if entry.deleted_at is None]


def _previous_contents(written: Written) -> dict:
    """What each edited entry held before this write: the revision the edit just wrote (version − 1),
    by entry id. One query for all of them, shared by the rules; none for a write without edits."""
    if "previous" not in written._cache:
        versions = {entry.pk: entry.version - 1 for entry in _live_entries(written) if entry.version > 1}
        revisions = (
            EntryRevision.objects.filter(entry_id__in=versions, version__in=set(versions.values())).values_list(
                "entry_id", "version", "content"
            )
            if versions
            else []
        )
        written._cache["previous"] = {
            entry_id: content for entry_id, version, content in revisions if versions[entry_id] == version
        }
    return written._cache["previous"]


def _days_left(written: Written) -> list[tuple[date, Entry, dict]]:
    """(journal day, entry, previous content) for each edit that moved an entry off a journal day."""
    if "days_left" not in written._cache:
        moves = []
        for entry in _live_entries(written):
            previous = _previous_contents(written).get(entry.pk)
            if not (previous and previous.get("occurred_at")):
                continue
            occurred_at = datetime.fromisoformat(previous["occurred_at"])
            if occurred_at == entry.occurred_at:
                continue  # an edit keeps its entry's journal day unless it moves occurred_at
            day = written.patient.journal_day(occurred_at)[0]
            if day != entry.local_date:
                moves.append((day, entry, previous))
        written._cache["days_left"] = moves
    return written._cache["days_left"]


def _evidence(written: Written, *, entry=None, assessment=None, **figures) -> dict:
    item = {"at": iso(_now(written))}
    if entry is not None:
        item["entry"] = str(entry.pk)
    if assessment is not None:
        item["assessment"] = str(assessment.pk)
    item.update(figures)
    return item


# --- Questionnaires -------------------------------------------------------------------------------


def phq9_self_harm(written: Written) -> list[Firing]:
    minimum = written.patient.clinic.alert_self_harm_item9_min
    return [
        Firing(
            AlertRule.PHQ9_SELF_HARM,
            _evidence(written, assessment=a, item9=a.answers[8], completed_at=iso(a.completed_at)),
        )
        for a in written.assessments
        if a.instrument == Instrument.PHQ9 and a.answers[8] >= minimum
    ]


def _phq9_beside(assessment: Assessment, *, later: bool) -> Assessment | None:
    """The patient's PHQ-9 completed just before this one, or just after it (`later`)."""
    if later:
        beside, order = {"completed_at__gt": assessment.completed_at}, ("completed_at", "id")
    else:
        beside, order = {"completed_at__lt": assessment.completed_at}, ("-completed_at", "-id")
    return (
        Assessment.objects.filter(patient_id=assessment.patient_id, instrument=Instrument.PHQ9, **beside)
        .exclude(pk=assessment.pk)
        .order_by(*order)
        .only("id", "score", "completed_at")
        .first()
    )


def phq9_worsening(written: Written) -> list[Firing]:
    """Total ≥ the clinic's minimum, or a rise of at least the clinic's step over the PHQ-9 the
    patient completed just before, by completion time. An offline phone may deliver an older one
    late, so a new PHQ-9 is compared with the one completed just before it, and the one completed
    just after it (if any) with the new one: last week's 0 arriving after this week's 12 reveals a
    rise of 12. Evidence names the PHQ-9 that rose, and the one it rose from."""
    clinic = written.patient.clinic

    def firing(
        assessment: Assessment, previous: Assessment | None, *, total_counts: bool, revealed_by=None
    ) -> Firing | None:
        rise = assessment.score - previous.score if previous else None
        risen = rise is not None and rise >= clinic.alert_phq9_rise_min
        if not (risen or (total_counts and assessment.score >= clinic.alert_phq9_total_min)):
            return None
        figures = {"score": assessment.score, "completed_at": iso(assessment.completed_at)}
        if previous:
            figures.update(previous_assessment=str(previous.pk), previous_score=previous.score, rise=rise)
        if revealed_by is not None:  # the late PHQ-9 whose write fired this (and whose retry repeats it)
            figures["revealed_by"] = str(revealed_by.pk)
        return Firing(AlertRule.PHQ9_WORSENING, _evidence(written, assessment=assessment, **figures))

    written_ids = {assessment.pk for assessment in written.assessments}
    firings = []
    for assessment in written.assessments:
        if assessment.instrument != Instrument.PHQ9:
            continue
        firings.append(firing(assessment, _phq9_beside(assessment, later=False), total_counts=True))
        following = _phq9_beside(assessment, later=True)
        # The one after it now rises from this one; its own total fired (or not) when it arrived.
        if following is not None and following.pk not in written_ids:
            firings.append(firing(following, assessment, total_counts=False, revealed_by=assessment))
    return [item for item in firings if item is not None]


# --- Use ------------------------------------------------------------------------------------------


def use_reported(written: Written) -> list[Firing]:
    """A new `use` entry, or an edit that turns an entry into one (an edit of what already was a use
    — a corrected amount — is not a new lapse)."""
    uses = [entry for entry in _live_entries(written) if entry.kind == EntryKind.USE]
    edited = [entry for entry in uses if entry.version > 1]
    previous = _previous_contents(written) if edited else {}
    was_use = {entry_id for entry_id, content in previous.items() if content.get("kind") == EntryKind.USE}
    return [
        Firing(
            AlertRule.USE_REPORTED,
            _evidence(
                written,
                entry=entry,
                substance=entry.substance,
                occurred_at=iso(entry.occurred_at),
                local_date=entry.local_date.isoformat(),
            ),
        )
        for entry in uses
        if entry.pk not in was_use
    ]


# --- Days -----------------------------------------------------------------------------------------


def _today(written: Written) -> date:
    return written.patient.journal_day(_now(written))[0]


def _rollups(written: Written) -> dict[date, tuple]:
    """The patient's rollups around every day the write touched (those an edit moved an entry off
    too) and over the 14 days that end today: one query per write, shared by the day-based rules."""
    if "rollups" not in written._cache:
        days = {entry.local_date for entry in _live_entries(written)} | {day for day, _, _ in _days_left(written)}
        if not days:
            written._cache["rollups"] = {}
        else:
            clinic = written.patient.clinic
            reach = max(clinic.alert_craving_high_days, clinic.alert_mood_low_days) - 1
            today = _today(written)
            first = min(min(days) - timedelta(days=reach), today - timedelta(days=2 * RISING_WINDOW_DAYS - 1))
            last = max(max(days) + timedelta(days=reach), today)
            written._cache["rollups"] = daily_rollups(written.patient, first, last)
    return written._cache["rollups"]


def _runs_through(days: Sequence[date], span: int, qualifies) -> list[list[date]]:
    """For each day, the calendar-consecutive qualifying days around it, clipped to `span - 1` days
    on either side; kept when at least `span` long. Each run once."""
    runs: list[list[date]] = []
    for day in sorted(set(days)):
        if not qualifies(day) or any(day in run for run in runs):
            continue
        run = [day]
        for step in (-1, 1):
            cursor = day + timedelta(days=step)
            while abs((cursor - day).days) < span and qualifies(cursor):
                run.append(cursor)
                cursor += timedelta(days=step)
        if len(run) >= span:
            runs.append(sorted(run))
    return runs


def _latest_entry_of_run(entries, run: list[date]):
    return max((entry for entry in entries if entry.local_date in run), key=lambda entry: entry.occurred_at)


def craving_high(written: Written) -> list[Firing]:
    clinic = written.patient.clinic
    level, span = clinic.alert_craving_high_level, clinic.alert_craving_high_days
    triggers = [e for e in _live_entries(written) if e.craving is not None and e.craving >= level]
    if not triggers:
        return []
    rollups = _rollups(written)

    def qualifies(day: date) -> bool:
        row = rollups.get(day)
        return row is not None and row.craving_max is not None and row.craving_max >= level

    return [
        Firing(
            AlertRule.CRAVING_HIGH,
            _evidence(
                written,
                entry=_latest_entry_of_run(triggers, run),
                days=[day.isoformat() for day in run],
                day_max=[rollups[day].craving_max for day in run],
                level=level,
            ),
        )
        for run in _runs_through([e.local_date for e in triggers], span, qualifies)
    ]


def _mean(total, count) -> Decimal:
    return Decimal(total) / Decimal(count)


def mood_low(written: Written) -> list[Firing]:
    clinic = written.patient.clinic
    level, span = clinic.alert_mood_low_level, clinic.alert_mood_low_days
    # (day, entry): the entry could have brought that day's mean mood to the level
    triggers = [
        (e.local_date, e) for e in _live_entries(written) if e.mood is not None and (e.mood <= level or e.version > 1)
    ]
    triggers += [(day, e) for day, e, before in _days_left(written) if (before.get("mood") or 0) > level]
    if not triggers:
        return []
    rollups = _rollups(written)

    def qualifies(day: date) -> bool:
        row = rollups.get(day)
        return row is not None and row.mood_count > 0 and _mean(row.mood_sum, row.mood_count) <= level

    return [
        Firing(
            AlertRule.MOOD_LOW,
            _evidence(
                written,
                entry=max((e for day, e in triggers if day in run), key=lambda entry: entry.occurred_at),
                days=[day.isoformat() for day in run],
                day_mean=[round(float(_mean(rollups[d].mood_sum, rollups[d].mood_count)), 2) for d in run],
                level=level,
            ),
        )
        for run in _runs_through([day for day, _ in triggers], span, qualifies)
    ]


def craving_rising(written: Written) -> list[Firing]:
    clinic = written.patient.clinic
    today = _today(written)
    recent_first = today - timedelta(days=RISING_WINDOW_DAYS - 1)
    previous_first = recent_first - timedelta(days=RISING_WINDOW_DAYS)
    triggers = [e for e in _live_entries(written) if e.craving is not None and previous_first <= e.local_date <= today]
    if not triggers:
        return []
    rollups = _rollups(written)

    def window(first: date) -> tuple[int, int]:
        rows = [rollups.get(first + timedelta(days=offset)) for offset in range(RISING_WINDOW_DAYS)]
        return sum(r.craving_sum for r in rows if r), sum(r.craving_count for r in rows if r)

    recent_sum, recent_count = window(recent_first)
    previous_sum, previous_count = window(previous_first)
    enough = clinic.alert_craving_rise_min_entries
    if recent_count < enough or previous_count < enough:
        return []
    recent_mean, previous_mean = _mean(recent_sum, recent_count), _mean(previous_sum, previous_count)
    if recent_mean - previous_mean < clinic.alert_craving_rise_min:
        return []
    latest = max(triggers, key=lambda entry: entry.occurred_at)
    return [
        Firing(
            AlertRule.CRAVING_RISING,
            _evidence(
                written,
                entry=latest,
                window=[recent_first.isoformat(), today.isoformat()],
                mean_7d=round(float(recent_mean), 2),
                mean_prev_7d=round(float(previous_mean), 2),
                cravings_7d=recent_count,
                cravings_prev_7d=previous_count,
                rise_min=float(clinic.alert_craving_rise_min),
            ),
        )
    ]


ALL_RULES = [phq9_self_harm, use_reported, craving_high, phq9_worsening, craving_rising, mood_low]
