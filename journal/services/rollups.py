"""Daily rollups (journal.models.DailyRollup), kept exact in the transaction of every entry write.

Edits, deletes and syncs call `rollups_refresh` with the journal days they touched: the days are
recomputed from the patient's live entries (an indexed read of a few rows), so moves between days
and deletions need no delta arithmetic that could drift. A single new entry, the hottest write,
only adds to its day: on PostgreSQL the entry insert and the rollup upsert are one statement
(journal.services.entries, with ROLLUP_ADD_NEW_ENTRY). The same aggregate SQL rebuilds everything
(`rollups_rebuild`, the `rebuild_rollups` command), and a test proves incremental == rebuilt after
random writes.
"""

from collections.abc import Iterable
from datetime import date

from django.db import connection, transaction

from backend.db import column_value
from journal.models import DailyRollup, Entry

_COLUMNS = (
    "patient_id, local_date, entries, check_ins, uses, craving_sum, craving_count, craving_max, "
    "mood_sum, mood_count, anxiety_sum, anxiety_count, sleep_sum, sleep_count"
)
_AGGREGATES = (
    "patient_id, local_date, COUNT(*), "
    "SUM(CASE WHEN kind = 'check_in' THEN 1 ELSE 0 END), SUM(CASE WHEN kind = 'use' THEN 1 ELSE 0 END), "
    "COALESCE(SUM(craving), 0), COUNT(craving), MAX(craving), COALESCE(SUM(mood), 0), COUNT(mood), "
    "COALESCE(SUM(anxiety), 0), COUNT(anxiety), COALESCE(SUM(sleep_hours), 0), COUNT(sleep_hours)"
)
_UPDATES = ", ".join(
    f"{column} = EXCLUDED.{column}" for column in _COLUMNS.split(", ") if column not in ("patient_id", "local_date")
)
_ROLLUP = DailyRollup._meta.db_table
_ENTRY = Entry._meta.db_table


# Adds one new entry's values to its day, reading the row an `INSERT … RETURNING` named `new` gave
# back (journal.services.entries puts both in one statement). Creates only add, so this is exact.
ROLLUP_ADD_NEW_ENTRY = (
    f"INSERT INTO {_ROLLUP} ({_COLUMNS}) "  # noqa: S608 - names from the models
    "SELECT patient_id, local_date, 1, CASE WHEN kind = 'check_in' THEN 1 ELSE 0 END, "
    "CASE WHEN kind = 'use' THEN 1 ELSE 0 END, COALESCE(craving, 0), "
    "CASE WHEN craving IS NULL THEN 0 ELSE 1 END, craving, "
    "COALESCE(mood, 0), CASE WHEN mood IS NULL THEN 0 ELSE 1 END, "
    "COALESCE(anxiety, 0), CASE WHEN anxiety IS NULL THEN 0 ELSE 1 END, COALESCE(sleep_hours, 0), "
    "CASE WHEN sleep_hours IS NULL THEN 0 ELSE 1 END FROM new "
    f"ON CONFLICT (patient_id, local_date) DO UPDATE SET entries = {_ROLLUP}.entries + 1, "
    f"check_ins = {_ROLLUP}.check_ins + EXCLUDED.check_ins, uses = {_ROLLUP}.uses + EXCLUDED.uses, "
    f"craving_sum = {_ROLLUP}.craving_sum + EXCLUDED.craving_sum, "
    f"craving_count = {_ROLLUP}.craving_count + EXCLUDED.craving_count, "
    f"craving_max = GREATEST({_ROLLUP}.craving_max, EXCLUDED.craving_max), "
    f"mood_sum = {_ROLLUP}.mood_sum + EXCLUDED.mood_sum, mood_count = {_ROLLUP}.mood_count + EXCLUDED.mood_count, "
    f"anxiety_sum = {_ROLLUP}.anxiety_sum + EXCLUDED.anxiety_sum, "
    f"anxiety_count = {_ROLLUP}.anxiety_count + EXCLUDED.anxiety_count, "
    f"sleep_sum = {_ROLLUP}.sleep_sum + EXCLUDED.sleep_sum, sleep_count = {_ROLLUP}.sleep_count + EXCLUDED.sleep_count"
)


def _patient_param(patient_id):
    return column_value(Entry, "patient", patient_id)


def _day_param(day: date):
    return connection.ops.adapt_datefield_value(day)


def rollups_refresh(*, patient_id, days: Iterable[date], days_may_empty: bool = False) -> None:
    """Recomputes these journal days of one patient. `days_may_empty`: an edit or delete may have
    taken a day's last entry away, so rows of days with no live entry left are deleted too."""
    days = sorted(set(days))
    if not days:
        return
    in_days = ", ".join(["%s"] * len(days))
    with connection.cursor() as cursor:
        # WHERE before GROUP BY and ON CONFLICT: SQLite needs the WHERE to parse an upsert after SELECT.
        cursor.execute(
            f"INSERT INTO {_ROLLUP} ({_COLUMNS}) SELECT {_AGGREGATES} FROM {_ENTRY} "  # noqa: S608 - tables from models
            f"WHERE patient_id = %s AND local_date IN ({in_days}) AND deleted_at IS NULL "
            f"GROUP BY patient_id, local_date "
            f"ON CONFLICT (patient_id, local_date) DO UPDATE SET {_UPDATES}",
            [_patient_param(patient_id), *map(_day_param, days)],
        )
        if days_may_empty:
            cursor.execute(
                f"DELETE FROM {_ROLLUP} WHERE patient_id = %s AND local_date IN ({in_days}) AND NOT EXISTS ("  # noqa: S608
                f"SELECT 1 FROM {_ENTRY} e WHERE e.patient_id = {_ROLLUP}.patient_id "
                f"AND e.local_date = {_ROLLUP}.local_date AND e.deleted_at IS NULL)",
                [_patient_param(patient_id), *map(_day_param, days)],
            )


@transaction.atomic
def rollups_rebuild(*, patient_ids: Iterable | None = None) -> int:
    """Recomputes every rollup (or those of some patients) from the entries; returns the row count.

    The patients keep writing meanwhile (an operator runs this on a live system). On PostgreSQL the
    rollup table is locked against writes first (SHARE ROW EXCLUSIVE): every entry write also
    writes its rollups in its transaction, so writes in flight finish before the rebuild reads and
    later ones wait for it, then add to the rebuilt rows — none is counted twice or lost between
    the DELETE's and the INSERT's snapshots. Reads go on. (SQLite takes one writer at a time.)"""
    if connection.vendor == "postgresql":
        with connection.cursor() as cursor:
            cursor.execute(f"LOCK TABLE {_ROLLUP} IN SHARE ROW EXCLUSIVE MODE")
    where, params = "deleted_at IS NULL", []
    rollups = DailyRollup.objects.all()
    if patient_ids is not None:
        patient_ids = list(patient_ids)
        if not patient_ids:
            return 0
        where += f" AND patient_id IN ({', '.join(['%s'] * len(patient_ids))})"
        params = [_patient_param(patient_id) for patient_id in patient_ids]
        rollups = rollups.filter(patient_id__in=patient_ids)
    rollups.delete()
    with connection.cursor() as cursor:
        cursor.execute(
            f"INSERT INTO {_ROLLUP} ({_COLUMNS}) SELECT {_AGGREGATES} FROM {_ENTRY} "  # noqa: S608
            f"WHERE {where} GROUP BY patient_id, local_date "
            f"ON CONFLICT (patient_id, local_date) DO UPDATE SET {_UPDATES}",
            params,
        )
        return cursor.rowcount
