"""Trends (SPEC §8): a patient's journal in daily figures, windows and session-anchored views.

Daily figures come from DailyRollup (one row per journal day, kept exact by every write), so a
365-day trend reads at most ~730 small rows, never every entry. The few figures a rollup cannot hold
(triggers, hours of day, the craving before each use) are aggregated by SQL over the range's
entries through the (patient, local_date) index. Python only walks days, never entries.

A trend is one statement (`_trend_reads`) whose answer is one JSON document: rollups, entry
aggregates, the last use, assessments and sessions. As eight queries they cost more in round trips,
ORM query building and per-row type loading than PostgreSQL took to answer them, and the entry
aggregates now share one scan of the range's entries. Only a check-in streak longer than the days
read costs a second query.

Means are entry-weighted: a window's craving mean is sum(craving) / count(craving) over the
entries of its days, the same for every window (a day, 7 days, a session's pre and post).
"""

import uuid
from collections.abc import Iterable
from datetime import UTC, date, datetime, timedelta
from itertools import accumulate

import orjson
from django.db import connection
from django.utils import timezone

from accounts.models import Patient
from backend.db import column_value
from journal.models import Assessment, DailyRollup, Entry, EntryKind, TherapySession
from journal.selectors.rollups import ROLLUP_DAY_COLUMNS, RollupSums, as_date, daily_rollups
from journal.selectors.sessions import sessions_of

DEFAULT_DAYS = 30
MAX_DAYS = 731
ROLLING_DAYS = 7


def journal_today(patient: Patient, now: datetime | None = None) -> date:
    return patient.journal_day(now or timezone.now())[0]


def default_range(patient: Patient, now: datetime | None = None) -> tuple[date, date]:
    today = journal_today(patient, now)
    return today - timedelta(days=DEFAULT_DAYS - 1), today


def _as_utc(value) -> datetime:
    """A timestamp from the JSON document: ISO 8601 with an offset (PostgreSQL) or naive UTC (SQLite)."""
    moment = datetime.fromisoformat(value)
    return moment.astimezone(UTC) if moment.tzinfo else moment.replace(tzinfo=UTC)


def _as_utc_text(value) -> str:
    """A timestamp as the API writes it (ISO 8601, `Z`): what DRF's encoder makes of a UTC datetime."""
    return _as_utc(value).isoformat()[:-6] + "Z"


def _as_uuid_text(value: str) -> str:
    # PostgreSQL writes uuids as Python does; SQLite keeps 32 hex digits.
    return value if len(value) == 36 else str(uuid.UUID(value))


# --- The one statement ----------------------------------------------------------------------------

# Each part is one JSON value. Rows are aggregated in the order of their subquery, which PostgreSQL
# and SQLite both keep; the rollups come as columns (a list per column, the day as its offset from
# the first day read), which is cheaper to build and to load than 730 small rows. `e` is the range's
# live entries, scanned once. Triggers are counted per distinct trigger list first, so only a few
# lists are taken apart, not every entry's.
_TREND_SQL = """
WITH e AS (
    SELECT id, patient_id, occurred_at, local_hour, kind, substance, craving, triggers FROM {entry}
    WHERE patient_id = %s AND local_date >= %s AND local_date <= %s AND deleted_at IS NULL
)
SELECT {object}(
    'rollups', {json}((SELECT {row}({rollup_columns}) FROM {rollup}
        WHERE patient_id = %s AND local_date >= %s AND local_date <= %s)),
    'last_use', (SELECT MAX(local_date) FROM {rollup} WHERE patient_id = %s AND uses > 0 AND local_date <= %s),
    'triggers', {json}((SELECT {rows}({row}(s.word, s.n, s.mean)) FROM (
        SELECT {word} AS word, SUM(g.n) AS n, {mean} AS mean
        FROM (SELECT {words_key} AS words, COUNT(*) AS n, SUM(craving) AS total, COUNT(craving) AS counted
              FROM e GROUP BY {words_key}) g, {words}
        GROUP BY {word} ORDER BY SUM(g.n) DESC, {word}) s)),
    'hours', {json}((SELECT {rows}({row}(s.local_hour, s.n, s.mean)) FROM (
        SELECT local_hour, COUNT(*) AS n, AVG(craving) AS mean FROM e GROUP BY local_hour) s)),
    'uses', {json}((SELECT {rows}({row}(s.id, s.occurred_at, s.substance, s.craving_before)) FROM (
        SELECT e.id, e.occurred_at, e.substance, (
            SELECT MAX(b.craving) FROM {entry} b WHERE b.patient_id = e.patient_id AND b.deleted_at IS NULL
            AND b.occurred_at < e.occurred_at AND b.occurred_at >= {day_before}
        ) AS craving_before
        FROM e WHERE e.kind = '{use}' ORDER BY e.occurred_at, e.id) s)),
    'assessments', {json}((SELECT {rows}({row}(s.id, s.instrument, s.completed_at, s.score, s.severity)) FROM (
        SELECT id, instrument, completed_at, score, severity FROM {assessment}
        WHERE patient_id = %s AND local_date >= %s AND local_date <= %s ORDER BY completed_at, id) s)),
    'sessions', {json}((SELECT {rows}({row}(s.id, s.kind, s.starts_at, s.local_date, s.duration_minutes)) FROM (
        SELECT id, kind, starts_at, local_date, duration_minutes FROM {session}
        WHERE patient_id = %s AND local_date >= %s AND local_date <= %s AND deleted_at IS NULL
        ORDER BY starts_at, id) s))
){text}
"""
_VENDOR_SQL = {
    "postgresql": {
        "object": "json_build_object",
        "text": "::text",
        "json": "",
        "rows": "json_agg",
        "row": "json_build_array",
        "column": "array_agg",
        "day_number": "local_date - %s::date",
        "words_key": "triggers::text",  # jsonb hashes slower than its text
        "words": "jsonb_array_elements_text(g.words::jsonb) AS t(word)",
        "word": "t.word",
        # what AVG(craving) would give: PostgreSQL's AVG of integers is numeric sum / numeric count
        "mean": "SUM(g.total) / NULLIF(SUM(g.counted), 0)",
        "day_before": "e.occurred_at - INTERVAL '24 hours'",
    },
    "sqlite": {  # the embedded demo; a subquery's JSON reaches json_object() as text unless json() marks it
        "object": "json_object",
        "text": "",
        "json": "json",
        "rows": "json_group_array",
        "row": "json_array",
        "column": "json_group_array",
        "day_number": "CAST(julianday(local_date) - julianday(%s) AS INTEGER)",
        "words_key": "triggers",
        "words": "json_each(g.words) AS t",
        "word": "t.value",
        "mean": "CAST(SUM(g.total) AS REAL) / NULLIF(SUM(g.counted), 0)",
        "day_before": "strftime('%%Y-%%m-%%d %%H:%%M:%%f', e.occurred_at, '-24 hours')",
    },
}
_statements: dict[str, str] = {}


def _trend_statement(vendor: str) -> str:
    if vendor not in _statements:
        sql = _VENDOR_SQL[vendor]
        columns = [sql["day_number"], *ROLLUP_DAY_COLUMNS[1:]]
        _statements[vendor] = _TREND_SQL.format(
            **sql,
            entry=Entry._meta.db_table,
            rollup=DailyRollup._meta.db_table,
            assessment=Assessment._meta.db_table,
            session=TherapySession._meta.db_table,
            use=EntryKind.USE,
            rollup_columns=", ".join(f"{sql['column']}({column})" for column in columns),
        )
    return _statements[vendor]


def trend_params(patient_id, first, last, known_from, known_to, today) -> list:
    """The statement's parameters, in its order (bench/insight.py runs it bare with these too)."""
    in_range = [patient_id, first, last]
    # `e`; the rollups' day numbers, the rollups of the known days; the last use; assessments; sessions
    return [*in_range, known_from, patient_id, known_from, known_to, patient_id, today, *in_range, *in_range]


def _trend_reads(patient: Patient, *, first: date, last: date, known: tuple[date, date], today: date) -> dict:
    """Everything a trend reads, in one round trip: each part a list (of rows; of columns for the
    rollups), and the last use day up to today (ISO text or None)."""
    patient_id = column_value(Entry, "patient", patient.pk)
    first, last, known_from, known_to, today = map(connection.ops.adapt_datefield_value, (first, last, *known, today))
    params = trend_params(patient_id, first, last, known_from, known_to, today)
    with connection.cursor() as cursor:
        cursor.execute(_trend_statement(connection.vendor), params)
        (document,) = cursor.fetchone()
    reads = orjson.loads(document)  # the standard library's parser took a tenth of the request
    last_use = reads.pop("last_use")
    return {name: rows or [] for name, rows in reads.items()} | {"last_use": last_use}  # PostgreSQL: null, no rows


# --- Days and windows -----------------------------------------------------------------------------


class KnownDays:
    """The rollup figures of the days read, one list per column, indexed by day number (0 is the
    first day read). A day without entries has no rollup: zeros, and no craving maximum."""

    def __init__(self, columns: list[list], span: int):
        day_numbers, *values = (column or [] for column in columns)  # PostgreSQL: nulls for no rows
        for name, column in zip(ROLLUP_DAY_COLUMNS[1:], values, strict=True):
            dense = [None if name == "craving_max" else 0] * span
            for number, value in zip(day_numbers, column, strict=True):
                dense[number] = value
            setattr(self, name, dense)
        self.span = span

    def running(self, name: str) -> list:
        """Totals of a column over days[:n] at index n: any window's total is one subtraction."""
        return list(accumulate(getattr(self, name), initial=0))


def _day_rows(known: KnownDays, dates: list[str], start: int) -> list[dict]:
    """The `days` of SPEC §8 for the range, which begins at day number `start`."""
    stop = start + len(dates)
    rows = []
    # Inline, not mean(): this runs for every day of up to two years, four means each.
    columns = [getattr(known, name)[start:stop] for name in ROLLUP_DAY_COLUMNS[1:]]
    for day, figures in zip(dates, zip(*columns, strict=True), strict=True):
        (entries, check_ins, uses, craving_sum, craving_count, craving_max, mood_sum, mood_count, anxiety_sum,
         anxiety_count, sleep_sum, sleep_count) = figures  # fmt: skip
        rows.append(
            {
                "date": day,  # a string already: the JSON encoder's fallback for dates is slow
                "entries": entries,
                "craving_mean": round(craving_sum / craving_count, 2) if craving_count else None,
                "craving_max": craving_max,
                "mood_mean": round(mood_sum / mood_count, 2) if mood_count else None,
                "anxiety_mean": round(anxiety_sum / anxiety_count, 2) if anxiety_count else None,
                "sleep_hours": round(float(sleep_sum) / sleep_count, 2) if sleep_count else None,
                "used": uses > 0,
                "check_in": check_ins > 0,
            }
        )
    return rows


class Windows:
    """Entry-weighted craving and mood means over any run of the known days, from running totals."""

    def __init__(self, known: KnownDays):
        self.craving_sum, self.craving_count = known.running("craving_sum"), known.running("craving_count")
        self.mood_sum, self.mood_count = known.running("mood_sum"), known.running("mood_count")

    def means(self, start: int, stop: int) -> tuple[float | None, float | None]:
        """(craving, mood) over the day numbers start…stop-1."""
        craving_count = self.craving_count[stop] - self.craving_count[start]
        mood_count = self.mood_count[stop] - self.mood_count[start]
        return (
            round((self.craving_sum[stop] - self.craving_sum[start]) / craving_count, 2) if craving_count else None,
            round((self.mood_sum[stop] - self.mood_sum[start]) / mood_count, 2) if mood_count else None,
        )


def _rolling(windows: Windows, dates: list[str], start: int) -> list[dict]:
    """7-day means ending on each day of the range (which begins at day number `start`). Inline, not
    means(): this runs for every day of up to two years."""
    craving_sum, craving_count = windows.craving_sum, windows.craving_count
    mood_sum, mood_count = windows.mood_sum, windows.mood_count
    rolling = []
    for stop, day in enumerate(dates, start + 1):
        begin = stop - ROLLING_DAYS
        cravings, moods = craving_count[stop] - craving_count[begin], mood_count[stop] - mood_count[begin]
        rolling.append(
            {
                "date": day,
                "craving_mean": round((craving_sum[stop] - craving_sum[begin]) / cravings, 2) if cravings else None,
                "mood_mean": round((mood_sum[stop] - mood_sum[begin]) / moods, 2) if moods else None,
            }
        )
    return rolling


def _slope_per_week(days: list[dict]) -> float | None:
    """Least-squares slope of the daily craving means against the day number, per 7 days."""
    xs = [n for n, day in enumerate(days) if day["craving_mean"] is not None]
    if len(xs) < 2:
        return None
    ys = [days[x]["craving_mean"] for x in xs]
    mean_x, mean_y = sum(xs) / len(xs), sum(ys) / len(ys)
    spread = sum([(x - mean_x) ** 2 for x in xs])
    slope = sum([(x - mean_x) * (y - mean_y) for x, y in zip(xs, ys, strict=True)]) / spread
    return round(slope * 7, 3)


def _check_in_days_before(patient: Patient, day: date) -> list[date]:
    return list(
        DailyRollup.objects.filter(patient=patient, check_ins__gt=0, local_date__lte=day)
        .order_by("-local_date")
        .values_list("local_date", flat=True)[:MAX_DAYS]
    )


def _run_back_from(day: date, days: list[date]) -> int:
    """How many of `days` (latest first) run back one by one from `day`."""
    streak = 0
    for check_in_day in days:
        if check_in_day != day:
            break
        streak, day = streak + 1, day - timedelta(days=1)
    return streak


def _current_streak(patient: Patient, today: date, known: KnownDays, known_from: date) -> int:
    """Consecutive journal days with a check-in, ending today or yesterday. Walks the rollups
    already read; only a streak reaching past them (or days read that miss today) costs a query."""
    n = (today - known_from).days
    if not 0 <= n < known.span:
        days = _check_in_days_before(patient, today)
        return _run_back_from(today if days and days[0] == today else today - timedelta(days=1), days)
    check_ins = known.check_ins
    if not check_ins[n]:
        n -= 1
    streak = 0
    while n >= 0 and check_ins[n]:
        streak, n = streak + 1, n - 1
    if n >= 0:  # the walk ended on a day without a check-in
        return streak
    before = known_from - timedelta(days=1)
    return streak + _run_back_from(before, _check_in_days_before(patient, before))


# --- What a rollup cannot hold --------------------------------------------------------------------


def _round(value) -> float | None:
    return round(float(value), 2) if value is not None else None


def _triggers(rows: list[list]) -> list[dict]:
    return [{"trigger": trigger, "count": count, "craving_mean": _round(mean_)} for trigger, count, mean_ in rows]


def _hours(rows: list[list]) -> list[dict]:
    by_hour = {hour: (count, mean_) for hour, count, mean_ in rows}
    return [
        {"hour": hour, "entries": by_hour.get(hour, (0,))[0], "craving_mean": _round(by_hour.get(hour, (0, None))[1])}
        for hour in range(24)
    ]


def _uses(rows: list[list]) -> list[dict]:
    return [
        {"id": _as_uuid_text(pk), "occurred_at": _as_utc_text(occurred_at), "substance": substance,
         "craving_before": craving_before}
        for pk, occurred_at, substance, craving_before in rows
    ]  # fmt: skip


def _assessments(rows: list[list]) -> list[dict]:
    return [
        {"id": _as_uuid_text(pk), "instrument": instrument, "completed_at": _as_utc_text(completed_at),
         "score": score, "severity": severity}
        for pk, instrument, completed_at, score, severity in rows
    ]  # fmt: skip


def _sessions(rows: list[list]) -> list[dict]:
    """As the ORM would give them (uuid, datetime, date): the dashboard reads them as such."""
    return [
        {"id": uuid.UUID(pk), "kind": kind, "starts_at": _as_utc(starts_at), "local_date": as_date(local_date),
         "duration_minutes": duration}
        for pk, kind, starts_at, local_date, duration in rows
    ]  # fmt: skip


def trends_of(patient: Patient, *, first: date, last: date, now: datetime | None = None) -> dict:
    """SPEC §8's trends over the journal days first…last (inclusive)."""
    today = journal_today(patient, now)
    length = (last - first).days + 1
    previous_first = first - timedelta(days=length)
    # One read covers the range, the window before it, the rolling lead-in and (when the range
    # ends near today) what the streak needs; the last use is looked up on its own in the statement.
    known_from = min(previous_first, first - timedelta(days=ROLLING_DAYS - 1))
    known_to = today if last <= today <= last + timedelta(days=MAX_DAYS) else last
    reads = _trend_reads(patient, first=first, last=last, known=(known_from, known_to), today=today)
    known = KnownDays(reads["rollups"], (known_to - known_from).days + 1)
    windows = Windows(known)

    start = (first - known_from).days  # the range's first day number
    dates = [(first + timedelta(days=n)).isoformat() for n in range(length)]
    days = _day_rows(known, dates, start)
    last_use = as_date(reads["last_use"]) if reads["last_use"] else None
    craving_mean, mood_mean = windows.means(start, start + length)
    craving_mean_prev, mood_mean_prev = windows.means(start - length, start)
    summary = {
        "craving_mean": craving_mean,
        "craving_mean_prev": craving_mean_prev,
        "mood_mean": mood_mean,
        "mood_mean_prev": mood_mean_prev,
        "craving_slope_per_week": _slope_per_week(days),
        "use_days": sum(1 for day in days if day["used"]),
        "days_since_last_use": (today - last_use).days if last_use else None,
        "check_in_days": sum(1 for day in days if day["check_in"]),
        "current_streak": _current_streak(patient, today, known, known_from),
    }
    return {
        "from": first,
        "to": last,
        "days": days,
        "rolling_7d": _rolling(windows, dates, start),
        "summary": summary,
        "triggers": _triggers(reads["triggers"]),
        "hours": _hours(reads["hours"]),
        "assessments": _assessments(reads["assessments"]),
        "sessions": _sessions(reads["sessions"]),
        "uses": _uses(reads["uses"]),
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
