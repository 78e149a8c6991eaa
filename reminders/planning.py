"""When prompts fire (SPEC §7): pure functions over zones, journal days and wall-clock times.

Nothing here touches the database or reads the clock; callers pass `now`, days and zones in, so
the DST rules and the random-but-repeatable times can be tested over whole years in memory.
"""

import hashlib
from datetime import UTC, date, datetime, time, timedelta
from zoneinfo import ZoneInfo

from reminders.models import WEEKDAYS

MINUTES_PER_DAY = 24 * 60


def local_instant(zone: ZoneInfo, day: date, wall_time: time) -> datetime:
    """The UTC instant a wall-clock time on a journal day fires at.

    SPEC §7: a time that does not exist that day (the spring-forward gap) fires at the instant
    zoneinfo gives it with fold=0, i.e. read with the offset in force before the jump (02:30 on
    America/New_York's spring-forward day is 03:30 EDT); a time that occurs twice fires once, at
    its first occurrence (fold=0 again). Both fall out of zoneinfo's fold=0 reading.
    """
    naive = datetime.combine(day, wall_time.replace(tzinfo=None, fold=0))
    return naive.replace(tzinfo=zone).astimezone(UTC)


def due_days(schedule_days, from_day: date, to_day: date) -> list[date]:
    """The days in [from_day, to_day] whose weekday code ("mon" … "sun") is in schedule_days."""
    wanted = set(schedule_days)
    count = (to_day - from_day).days + 1
    days = (from_day + timedelta(days=offset) for offset in range(max(count, 0)))
    return [day for day in days if WEEKDAYS[day.weekday()] in wanted]


def in_quiet_hours(wall_time: time, start: time | None, end: time | None) -> bool:
    """Whether a local wall time falls in quiet hours [start, end), which may wrap midnight
    (22:00–07:00 holds 23:30 and 06:59, not 07:00)."""
    if start is None or end is None or start == end:
        return False
    wall_time = wall_time.replace(tzinfo=None, fold=0)
    if start < end:
        return start <= wall_time < end
    return wall_time >= start or wall_time < end


def quiet_hours_end(zone: ZoneInfo, moment: datetime, start: time | None, end: time | None) -> datetime | None:
    """When the quiet hours that `moment` falls in end (the next `end` on the patient's wall clock,
    read like any planned time), or None when `moment` is outside quiet hours."""
    local = moment.astimezone(zone)
    if not in_quiet_hours(local.time(), start, end):
        return None
    ends = local_instant(zone, local.date(), end)
    if ends <= moment:
        # An end inside the hour that repeats at fall-back, reached on its second pass: the end's
        # second occurrence is still ahead (01:15 EST, quiet until 01:30 → 01:30 EST, not tomorrow).
        again = datetime.combine(local.date(), end.replace(tzinfo=None, fold=1)).replace(tzinfo=zone)
        if again.astimezone(UTC) > moment and again.utcoffset() != ends.astimezone(zone).utcoffset():
            return again.astimezone(UTC)
        # Wrapped past midnight (23:30 in 22:00–07:00): they end tomorrow.
        ends = local_instant(zone, local.date() + timedelta(days=1), end)
    return ends


# --- Stratified random times in a window ----------------------------------------------------------


def _minutes(value: time) -> int:
    return value.hour * 60 + value.minute


def window_problem(start: time, end: time, *, count: int, min_gap_minutes: int) -> str | None:
    """Why `count` stratified prompts a day cannot fit in [start, end), or None when they can.

    The window must not wrap midnight; each of its `count` equal blocks must be at least the gap
    long (so one time per block can always keep the gap); and it must leave at least the gap
    before the same window the next day (so the last prompt of a day and the first of the next
    keep it too). Returns an error code: "not_after_start", "window_too_short", "window_too_long".
    """
    length = _minutes(end) - _minutes(start)
    if length <= 0:
        return "not_after_start"
    if count < 1 or length // count < max(min_gap_minutes, 1):
        return "window_too_short"
    if length > MINUTES_PER_DAY - min_gap_minutes:
        return "window_too_long"
    return None


def _draw(source_id, day: date, slot: int, below: int) -> int:
    """A number in [0, below) fixed by (source, journal day, slot): re-planning draws it again."""
    digest = hashlib.sha256(f"{source_id}:{day.isoformat()}:{slot}".encode()).digest()
    return int.from_bytes(digest[:8], "big") % below


def stratified_times(*, source_id, day: date, start: time, end: time, count: int, min_gap_minutes: int) -> list[time]:
    """`count` wall times in [start, end): the window cut into equal blocks, one random minute in
    each, consecutive times at least `min_gap_minutes` apart.

    Each block's draw depends only on (source_id, day, slot), so planning again gives the same
    times. A draw that comes too close to the previous time is pushed forward to keep the gap;
    `window_problem` guarantees each block is at least the gap long, so the pushed time stays
    inside its own block. Raises ValueError when the window cannot hold them.
    """
    problem = window_problem(start, end, count=count, min_gap_minutes=min_gap_minutes)
    if problem:
        raise ValueError(f"{count} prompts {min_gap_minutes} minutes apart do not fit in {start}–{end}: {problem}")
    first, length = _minutes(start), _minutes(end) - _minutes(start)
    bounds = [first + (slot * length) // count for slot in range(count + 1)]
    minutes: list[int] = []
    for slot in range(count):
        low, high = bounds[slot], bounds[slot + 1]
        minute = low + _draw(source_id, day, slot, high - low)
        if minutes:
            minute = max(minute, minutes[-1] + min_gap_minutes)
        minutes.append(minute)
    return [time(minute // 60, minute % 60) for minute in minutes]
