"""Reading daily rollups (journal.models.DailyRollup): one patient's days, and sums over a window of
days. Session trends and the alert rules read rollups through here as named tuples (a write reads a
few dozen rows, where model instances would cost more than the query); the triage list reads many
patients' recent weeks summed in SQL (recent_windows). A range trend reads its rollups inside its
one statement (journal.selectors.trends), in the same columns (ROLLUP_DAY_COLUMNS)."""

from collections import namedtuple
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import date
from functools import cache

from django.db import connection

from accounts.models import Patient
from backend.db import column_value, sum_recent_days
from journal.models import DailyRollup, Entry

ROLLUP_DAY_COLUMNS = (
    "local_date", "entries", "check_ins", "uses", "craving_sum", "craving_count", "craving_max", "mood_sum",
    "mood_count", "anxiety_sum", "anxiety_count", "sleep_sum", "sleep_count",
)  # fmt: skip
RollupDay = namedtuple("RollupDay", ROLLUP_DAY_COLUMNS)


def mean(total: int, count: int) -> float | None:
    return round(total / count, 2) if count else None


def fetch_patient_days(sql: str, patient: Patient, first: date, last: date) -> list[tuple]:
    """Runs plain SQL whose parameters are (patient, first day, last day): for per-patient reads
    where building each query through the ORM would cost more than PostgreSQL takes."""
    params = [column_value(Entry, "patient", patient.pk), *map(connection.ops.adapt_datefield_value, (first, last))]
    with connection.cursor() as cursor:
        cursor.execute(sql, params)
        return cursor.fetchall()


def as_date(value) -> date:
    return value if isinstance(value, date) else date.fromisoformat(value)  # SQLite answers text


def daily_rollups(patient: Patient, first: date, last: date) -> dict[date, RollupDay]:
    """A patient's rollup rows by day."""
    rows = fetch_patient_days(
        f"SELECT {', '.join(ROLLUP_DAY_COLUMNS)} FROM {DailyRollup._meta.db_table} "  # noqa: S608 - model names
        "WHERE patient_id = %s AND local_date >= %s AND local_date <= %s",
        patient, first, last,
    )  # fmt: skip
    return {day.local_date: day for day in (RollupDay(as_date(row[0]), *row[1:]) for row in rows)}


@dataclass
class RollupSums:
    """Sums and counts over some days: add (or take away) days, read entry-weighted means."""

    entries: int = 0
    check_in_days: int = 0
    use_days: int = 0
    craving_sum: int = 0
    craving_count: int = 0
    mood_sum: int = 0
    mood_count: int = 0

    def add(self, day: RollupDay | None, sign: int = 1) -> None:
        if day is not None:
            self.entries += sign * day.entries
            self.check_in_days += sign * (day.check_ins > 0)
            self.use_days += sign * (day.uses > 0)
            self.craving_sum += sign * day.craving_sum
            self.craving_count += sign * day.craving_count
            self.mood_sum += sign * day.mood_sum
            self.mood_count += sign * day.mood_count

    @classmethod
    def over(cls, days: Iterable[RollupDay | None]) -> "RollupSums":
        sums = cls()
        for day in days:
            sums.add(day)
        return sums

    @property
    def craving_mean(self) -> float | None:
        return mean(self.craving_sum, self.craving_count)

    @property
    def mood_mean(self) -> float | None:
        return mean(self.mood_sum, self.mood_count)


# --- Recent weeks of many patients, summed in SQL -------------------------------------------------
#
# The triage list needs, for each of up to 2,000 patients, this week's and last week's sums and the
# last 14 days' craving: reading their ~15 rollup rows each into Python cost most of its time, so the
# database sums them (backend.db.sum_recent_days), one row a patient.

# How each RollupSums field sums a day's columns; RollupSums.add is the same rule in Python, and a
# test holds recent_windows equal to RollupSums.over(daily_rollups(…)) on random worlds.
_SUMMED = {
    "entries": "entries",
    "check_in_days": "CASE WHEN check_ins > 0 THEN 1 ELSE 0 END",
    "use_days": "CASE WHEN uses > 0 THEN 1 ELSE 0 END",
    "craving_sum": "craving_sum",
    "craving_count": "craving_count",
    "mood_sum": "mood_sum",
    "mood_count": "mood_count",
}


@dataclass
class RecentWindows:
    this_week: RollupSums  # the patient's journal day and the days before it, `week` days in all
    last_week: RollupSums  # the `week` days before those
    craving_daily: list[float | None]  # mean craving of each of the last `days` days, oldest first


@cache
def _window_columns(week: int, days: int) -> tuple[str, ...]:
    columns = [
        f"SUM(CASE WHEN {{back}} {test} THEN {summed} ELSE 0 END)"
        for test in (f"< {week}", f"BETWEEN {week} AND {2 * week - 1}")
        for summed in _SUMMED.values()
    ]
    for day in range(days - 1, -1, -1):
        columns += [f"MAX(CASE WHEN {{back}} = {day} THEN {name} END)" for name in ("craving_sum", "craving_count")]
    return tuple(columns)


def recent_windows(today_by_patient: dict, *, week: int, days: int) -> dict:
    """{patient_id: RecentWindows} over each patient's last `days` journal days (at least two weeks)
    up to their `today`; patients without a rollup in them are absent. One query."""
    assert days >= 2 * week
    sums = sum_recent_days(DailyRollup, today_by_patient, days, _window_columns(week, days))
    fields = len(_SUMMED)
    return {
        patient_id: RecentWindows(
            this_week=RollupSums(**dict(zip(_SUMMED, values[:fields], strict=True))),
            last_week=RollupSums(**dict(zip(_SUMMED, values[fields : 2 * fields], strict=True))),
            craving_daily=[
                None if total is None else mean(total, count)
                for total, count in zip(values[2 * fields :: 2], values[2 * fields + 1 :: 2], strict=True)
            ],
        )
        for patient_id, values in sums.items()
    }
