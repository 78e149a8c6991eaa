"""Trends (SPEC §8): a patient's journal in daily figures, windows and session-anchored views.

Daily figures come from DailyRollup (one row per journal day, kept exact by every write), so a
365-day trend reads ~730 small rows, never every entry. The few figures a rollup cannot hold
(triggers, hours of day, the craving before each use) are aggregated by SQL over the range's
entries through the (patient, local_date) index. Python only walks days, never entries.

Means are entry-weighted: a window's craving mean is sum(craving) / count(craving) over the
entries of its days, the same for every window (a day, 7 days, a session's pre and post).
"""

import uuid
from collections.abc import Iterable
from datetime import UTC, date, datetime, timedelta

from django.db import connection
from django.utils import timezone
from django.utils.dateparse import parse_datetime

from accounts.models import Patient
from journal.models import Assessment, DailyRollup, Entry, EntryKind
from journal.selectors.rollups import RollupSums, daily_rollups, fetch_patient_days
from journal.selectors.sessions import sessions_of

DEFAULT_DAYS = 30
MAX_DAYS = 731
ROLLING_DAYS = 7


def _dates(first: date, last: date) -> list[date]:
    return [first + timedelta(days=n) for n in range((last - first).days + 1)]


def journal_today(patient: Patient, now: datetime | None = None) -> date:
    return patient.journal_day(now or timezone.now())[0]


def default_range(patient: Patient, now: datetime | None = None) -> tuple[date, date]:
    today = journal_today(patient, now)
    return today - timedelta(days=DEFAULT_DAYS - 1), today


def _as_utc_text(value) -> str:
    """A timestamp column as the API writes it (ISO 8601, `Z`); SQLite answers naive UTC text."""
    moment = value if isinstance(value, datetime) else parse_datetime(value)
    text = (moment if moment.tzinfo else moment.replace(tzinfo=UTC)).astimezone(UTC).isoformat()
    return text[:-6] + "Z"


def _as_uuid_text(value) -> str:
    return str(value if isinstance(value, uuid.UUID) else uuid.UUID(value))


def _day_row(day: date, rollup) -> dict:
    if rollup is None:
        return {"date": day.isoformat(), "entries": 0, "craving_mean": None, "craving_max": None, "mood_mean": None,
                "anxiety_mean": None, "sleep_hours": None, "used": False, "check_in": False}  # fmt: skip
    # Inline, not mean(): this runs for every day of up to two years, four means each.
    craving_count, mood_count = rollup.craving_count, rollup.mood_count
    anxiety_count, sleep_count = rollup.anxiety_count, rollup.sleep_count
    return {
        "date": day.isoformat(),  # a string already: the JSON encoder's fallback for dates is slow
        "entries": rollup.entries,
        "craving_mean": round(rollup.craving_sum / craving_count, 2) if craving_count else None,
        "craving_max": rollup.craving_max,
        "mood_mean": round(rollup.mood_sum / mood_count, 2) if mood_count else None,
        "anxiety_mean": round(rollup.anxiety_sum / anxiety_count, 2) if anxiety_count else None,
        "sleep_hours": round(float(rollup.sleep_sum) / sleep_count, 2) if sleep_count else None,
        "used": rollup.uses > 0,
        "check_in": rollup.check_ins > 0,
    }


def _rolling(window: list[date], rollups: dict) -> list[dict]:
    """7-day means ending on each day of the window: a sliding sum, one day in and one day out."""
    sums = RollupSums.over(rollups.get(window[0] - timedelta(days=back)) for back in range(1, ROLLING_DAYS))
    rolling = []
    for day in window:
        sums.add(rollups.get(day))
        rolling.append({"date": day.isoformat(), "craving_mean": sums.craving_mean, "mood_mean": sums.mood_mean})
        sums.add(rollups.get(day - timedelta(days=ROLLING_DAYS - 1)), sign=-1)
    return rolling


def _slope_per_week(days: list[dict]) -> float | None:
    """Least-squares slope of the daily craving means against the day number, per 7 days."""
    points = [(n, day["craving_mean"]) for n, day in enumerate(days) if day["craving_mean"] is not None]
    if len(points) < 2:
        return None
    mean_x = sum(x for x, _ in points) / len(points)
    mean_y = sum(y for _, y in points) / len(points)
    spread = sum((x - mean_x) ** 2 for x, _ in points)
    slope = sum((x - mean_x) * (y - mean_y) for x, y in points) / spread
    return round(slope * 7, 3)


def _check_in_days_before(patient: Patient, day: date) -> list[date]:
    return list(
        DailyRollup.objects.filter(patient=patient, check_ins__gt=0, local_date__lte=day)
        .order_by("-local_date")
        .values_list("local_date", flat=True)[:MAX_DAYS]
    )


def _current_streak(patient: Patient, today: date, rollups: dict, known: tuple[date, date]) -> int:
    """Consecutive journal days with a check-in, ending today or yesterday. Walks the rollups
    already read (`known` is their range); only a streak reaching past them costs a query."""
    known_from, known_to = known
    if not known_from <= today <= known_to:
        days = _check_in_days_before(patient, today)
        expected = today if days and days[0] == today else today - timedelta(days=1)
        streak = 0
        for day in days:
            if day != expected:
                break
            streak, expected = streak + 1, expected - timedelta(days=1)
        return streak

    def checked_in(day: date) -> bool:
        row = rollups.get(day)
        return row is not None and row.check_ins > 0

    day = today if checked_in(today) else today - timedelta(days=1)
    streak = 0
    while day >= known_from and checked_in(day):
        streak, day = streak + 1, day - timedelta(days=1)
    if day >= known_from:  # the walk ended on a day without a check-in
        return streak
    for check_in_day in _check_in_days_before(patient, day):
        if check_in_day != day:
            break
        streak, day = streak + 1, day - timedelta(days=1)
    return streak


def _last_use_day(patient: Patient, today: date, rollups: dict, known: tuple[date, date]) -> date | None:
    """The latest journal day up to today with a use: from the rollups read when they reach today,
    else (or when none of them has one) from a query for the days before them."""
    known_from, known_to = known
    before = today
    if known_from <= today <= known_to:
        seen = [day for day, row in rollups.items() if row.uses and day <= today]
        if seen:
            return max(seen)
        before = known_from - timedelta(days=1)
    return (
        DailyRollup.objects.filter(patient=patient, uses__gt=0, local_date__lte=before)
        .order_by("-local_date")
        .values_list("local_date", flat=True)
        .first()
    )


def _triggers(patient: Patient, first: date, last: date) -> list[dict]:
    """Each trigger word: how many entries named it and their craving mean (SQL over the JSON arrays)."""
    table = Entry._meta.db_table
    if connection.vendor == "postgresql":
        words, word = "jsonb_array_elements_text(e.triggers) AS t(word)", "t.word"
    else:
        words, word = "json_each(e.triggers) AS t", "t.value"  # SQLite, for the embedded demo
    sql = (
        f"SELECT {word}, COUNT(*), AVG(e.craving) FROM {table} e, {words} "  # noqa: S608 - names from the model
        "WHERE e.patient_id = %s AND e.local_date >= %s AND e.local_date <= %s AND e.deleted_at IS NULL "
        f"GROUP BY {word} ORDER BY COUNT(*) DESC, {word}"
    )
    rows = fetch_patient_days(sql, patient, first, last)
    return [
        {"trigger": trigger, "count": count, "craving_mean": round(float(mean), 2) if mean is not None else None}
        for trigger, count, mean in rows
    ]


def _live_entries(patient: Patient, first: date, last: date):
    return Entry.objects.filter(patient=patient, local_date__gte=first, local_date__lte=last, deleted_at__isnull=True)


def _hours(patient: Patient, first: date, last: date) -> list[dict]:
    rows = fetch_patient_days(
        f"SELECT local_hour, COUNT(*), AVG(craving) FROM {Entry._meta.db_table} "  # noqa: S608 - from the model
        "WHERE patient_id = %s AND local_date >= %s AND local_date <= %s AND deleted_at IS NULL GROUP BY local_hour",
        patient, first, last,
    )  # fmt: skip
    by_hour = {hour: (count, mean) for hour, count, mean in rows}
    return [
        {"hour": hour, "entries": by_hour.get(hour, (0,))[0], "craving_mean": _round(by_hour.get(hour, (0, None))[1])}
        for hour in range(24)
    ]


def _round(value) -> float | None:
    return round(float(value), 2) if value is not None else None


def _uses(patient: Patient, first: date, last: date) -> list[dict]:
    """Use entries in range with the highest craving reported in the 24 hours before each."""
    if connection.vendor == "postgresql":
        day_before = "e.occurred_at - INTERVAL '24 hours'"
    else:  # SQLite (the embedded demo) keeps timestamps as UTC text
        day_before = "strftime('%%Y-%%m-%%d %%H:%%M:%%f', e.occurred_at, '-24 hours')"
    table = Entry._meta.db_table
    rows = fetch_patient_days(
        f"SELECT e.id, e.occurred_at, e.substance, (SELECT MAX(b.craving) FROM {table} b "  # noqa: S608 - names from the model
        f"WHERE b.patient_id = e.patient_id AND b.deleted_at IS NULL AND b.occurred_at < e.occurred_at "
        f"AND b.occurred_at >= {day_before}) FROM {table} e "
        "WHERE e.patient_id = %s AND e.local_date >= %s AND e.local_date <= %s AND e.deleted_at IS NULL "
        f"AND e.kind = '{EntryKind.USE}' ORDER BY e.occurred_at, e.id",
        patient, first, last,
    )  # fmt: skip
    return [
        {"id": _as_uuid_text(pk), "occurred_at": _as_utc_text(occurred_at), "substance": substance,
         "craving_before": craving_before}
        for pk, occurred_at, substance, craving_before in rows
    ]  # fmt: skip


def _assessments(patient: Patient, first: date, last: date) -> list[dict]:
    rows = fetch_patient_days(
        f"SELECT id, instrument, completed_at, score, severity FROM {Assessment._meta.db_table} "  # noqa: S608
        "WHERE patient_id = %s AND local_date >= %s AND local_date <= %s ORDER BY completed_at, id",
        patient, first, last,
    )  # fmt: skip
    return [
        {"id": _as_uuid_text(pk), "instrument": instrument, "completed_at": _as_utc_text(completed_at),
         "score": score, "severity": severity}
        for pk, instrument, completed_at, score, severity in rows
    ]  # fmt: skip


def _sessions(patient: Patient, first: date, last: date) -> list[dict]:
    rows = sessions_of(patient).filter(local_date__gte=first, local_date__lte=last)
    return list(rows.values("id", "kind", "starts_at", "local_date", "duration_minutes"))


def trends_of(patient: Patient, *, first: date, last: date, now: datetime | None = None) -> dict:
    """SPEC §8's trends over the journal days first…last (inclusive)."""
    today = journal_today(patient, now)
    length = (last - first).days + 1
    previous_first = first - timedelta(days=length)
    # One read covers the range, the window before it, the rolling lead-in and (when the range
    # ends near today) what the streak and the last use need.
    known_from = min(previous_first, first - timedelta(days=ROLLING_DAYS - 1))
    known_to = today if last <= today <= last + timedelta(days=MAX_DAYS) else last
    rollups = daily_rollups(patient, known_from, known_to)
    known = (known_from, known_to)

    window = _dates(first, last)
    days = [_day_row(day, rollups.get(day)) for day in window]
    rolling = _rolling(window, rollups)

    current = RollupSums.over(rollups.get(day) for day in window)
    previous = RollupSums.over(rollups.get(day) for day in _dates(previous_first, first - timedelta(days=1)))
    last_use = _last_use_day(patient, today, rollups, known)
    summary = {
        "craving_mean": current.craving_mean,
        "craving_mean_prev": previous.craving_mean,
        "mood_mean": current.mood_mean,
        "mood_mean_prev": previous.mood_mean,
        "craving_slope_per_week": _slope_per_week(days),
        "use_days": sum(1 for day in days if day["used"]),
        "days_since_last_use": (today - last_use).days if last_use else None,
        "check_in_days": sum(1 for day in days if day["check_in"]),
        "current_streak": _current_streak(patient, today, rollups, known),
    }
    return {
        "from": first,
        "to": last,
        "days": days,
        "rolling_7d": rolling,
        "summary": summary,
        "triggers": _triggers(patient, first, last),
        "hours": _hours(patient, first, last),
        "assessments": _assessments(patient, first, last),
        "sessions": _sessions(patient, first, last),
        "uses": _uses(patient, first, last),
    }


def session_trends_of(patient: Patient, *, before: int, after: int, kind: str | None, now: datetime | None = None):
    """Trends anchored on sessions (SPEC §8): day 0 is the session's journal day; `pre` covers
    days −before…−1, `post` 1…after; `average` is, per offset, the mean over the sessions with
    data that day, and the mean of the sessions' deltas."""
    moment = now or timezone.now()
    sessions = sessions_of(patient).filter(starts_at__lte=moment)
    if kind:
        sessions = sessions.filter(kind=kind)
    sessions = list(sessions.values("id", "kind", "starts_at", "local_date"))
    rollups = (
        daily_rollups(
            patient,
            min(s["local_date"] for s in sessions) - timedelta(days=before),
            max(s["local_date"] for s in sessions) + timedelta(days=after),
        )
        if sessions
        else {}
    )
    offsets = range(-before, after + 1)
    results = []
    for session in sessions:
        day0 = session["local_date"]
        pre = RollupSums.over(rollups.get(day0 + timedelta(days=n)) for n in range(-before, 0))
        post = RollupSums.over(rollups.get(day0 + timedelta(days=n)) for n in range(1, after + 1))
        series = []
        for offset in offsets:
            day = RollupSums.over([rollups.get(day0 + timedelta(days=offset))])
            series.append(
                {"offset": offset, "craving_mean": day.craving_mean, "mood_mean": day.mood_mean, "entries": day.entries}
            )
        results.append(
            {
                "id": session["id"],
                "kind": session["kind"],
                "starts_at": session["starts_at"],
                "local_date": day0,
                "pre": _window(pre),
                "post": _window(post),
                "delta": {
                    "craving": _difference(post.craving_mean, pre.craving_mean),
                    "mood": _difference(post.mood_mean, pre.mood_mean),
                },  # fmt: skip
                "days": series,
            }
        )
    return {"before": before, "after": after, "kind": kind, "sessions": results, "average": _average(results, offsets)}


def _window(sums: RollupSums) -> dict:
    return {"craving_mean": sums.craving_mean, "mood_mean": sums.mood_mean, "entries": sums.entries}


def _difference(later, earlier) -> float | None:
    return round(later - earlier, 2) if later is not None and earlier is not None else None


def _mean_of(values: Iterable) -> float | None:
    present = [value for value in values if value is not None]
    return round(sum(present) / len(present), 2) if present else None


def _average(results: list[dict], offsets: range) -> dict:
    days = []
    for index, offset in enumerate(offsets):
        at_offset = [result["days"][index] for result in results]
        days.append(
            {
                "offset": offset,
                "craving_mean": _mean_of(day["craving_mean"] for day in at_offset),
                "mood_mean": _mean_of(day["mood_mean"] for day in at_offset),
                "sessions": sum(1 for day in at_offset if day["entries"]),
            }
        )
    return {
        "sessions": len(results),
        "delta": {
            "craving": _mean_of(result["delta"]["craving"] for result in results),
            "mood": _mean_of(result["delta"]["mood"] for result in results),
        },
        "days": days,
    }
