"""Prompt planning (SPEC §7): local times across DST, quiet hours, stratified windows, re-planning
when settings, schedules or sessions move, and the beat's bulk planner.

The prompt rows are the oracle: every assertion reads Prompt.objects. Expected instants are
computed here from UTC → local conversions only, never with the production local → UTC path.
"""

import functools
import zoneinfo
from datetime import UTC, date, datetime, time, timedelta
from zoneinfo import ZoneInfo

import pytest
import time_machine
from django.db import connection
from django.test.utils import CaptureQueriesContext
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from accounts.models import PatientStatus
from journal.services.sessions import session_create
from reminders import planning
from reminders.models import WEEKDAYS, Prompt, PromptStatus, Schedule
from reminders.services.schedules import (
    SAMPLING_EXPIRES_AFTER_MINUTES,
    prompts_plan,
    prompts_plan_all,
    prompts_replan,
    schedule_create,
)
from tests.conftest import client_for
from tests.factories import ClinicFactory, PatientFactory, enrolled_patient

pytestmark = pytest.mark.django_db

ALL_ZONES = sorted(zoneinfo.available_timezones())


def _patient(zone_name: str = "America/New_York", clinic=None, **fields):
    return enrolled_patient(clinic or ClinicFactory(), timezone=zone_name, **fields)


def _schedule(patient, **fields) -> Schedule:
    """A schedule row written directly, so nothing is planned until the test says so."""
    values = {"kind": "check_in", "days": list(WEEKDAYS)}
    return Schedule.objects.create(patient=patient, **{**values, **fields})


def _utc(*args) -> datetime:
    return datetime(*args, tzinfo=UTC)


def _local_wall(zone: ZoneInfo, moment: datetime) -> datetime:
    return moment.astimezone(zone).replace(tzinfo=None)


# --- Oracles ---------------------------------------------------------------------------------------


@functools.cache
def _offsets_near(zone: ZoneInfo, day: date) -> frozenset[timedelta]:
    """Every UTC offset the zone uses within 36 hours either side of noon UTC on `day`."""
    noon = _utc(day.year, day.month, day.day, 12)
    return frozenset((noon + timedelta(hours=hour)).astimezone(zone).utcoffset() for hour in range(-36, 37))


def spec_instant(zone: ZoneInfo, day: date, wall: time) -> datetime:
    """SPEC §7 restated: a wall time that occurs (once or twice) fires at its first occurrence; one
    skipped by a spring-forward is read with the offset in force before the jump (the smaller
    one), e.g. 02:30 in New York on the change day → 03:30 EDT. Valid where a zone changes offset
    at most once in three days (true of the matrix zones)."""
    naive = datetime.combine(day, wall)
    offsets = _offsets_near(zone, day)
    occurrences = sorted(
        (naive - offset).replace(tzinfo=UTC)
        for offset in offsets
        if _local_wall(zone, (naive - offset).replace(tzinfo=UTC)) == naive
    )
    if occurrences:
        return occurrences[0]
    return (naive - min(offsets)).replace(tzinfo=UTC)


def scanned_instant(zone: ZoneInfo, day: date, wall: time) -> datetime:
    """The same rule for any zone, by scanning UTC minute by minute: the first instant whose local
    clock reads `day wall` or later. Reading exactly `wall` there, that is its first occurrence;
    reading later, the clock jumped over it, and it fires at `wall` read with the offset the
    clock had just before the jump (so 02:30 in a 02:00→03:00 gap fires at 03:30, not 03:00)."""
    naive = datetime.combine(day, wall)
    moment = (naive - timedelta(hours=15)).replace(tzinfo=UTC)
    while _local_wall(zone, moment) < naive:
        moment += timedelta(minutes=1)
    if _local_wall(zone, moment) == naive:
        return moment
    before = (moment - timedelta(minutes=1)).astimezone(zone).utcoffset()
    return (naive - before).replace(tzinfo=UTC)


# --- local_instant -------------------------------------------------------------------------------

CHANGE_DAYS = [
    # zone, day, wall time, the instant (from the tz database by hand), why
    ("America/New_York", date(2026, 3, 8), time(2, 30), _utc(2026, 3, 8, 7, 30), "gap → 03:30 EDT"),
    ("America/New_York", date(2026, 11, 1), time(1, 30), _utc(2026, 11, 1, 5, 30), "twice → first (EDT)"),
    ("Europe/London", date(2026, 3, 29), time(1, 30), _utc(2026, 3, 29, 1, 30), "gap → 02:30 BST"),
    ("Europe/London", date(2026, 10, 25), time(1, 30), _utc(2026, 10, 25, 0, 30), "twice → first (BST)"),
    ("Australia/Sydney", date(2026, 10, 4), time(2, 30), _utc(2026, 10, 3, 16, 30), "gap → 03:30 AEDT"),
    ("Australia/Sydney", date(2026, 4, 5), time(2, 30), _utc(2026, 4, 4, 15, 30), "twice → first (AEDT)"),
    ("Australia/Lord_Howe", date(2026, 10, 4), time(2, 15), _utc(2026, 10, 3, 15, 45), "30-min gap → 02:45"),
    ("Australia/Lord_Howe", date(2026, 4, 5), time(1, 30), _utc(2026, 4, 4, 14, 30), "twice → first (+11)"),
    ("Pacific/Chatham", date(2026, 9, 27), time(3, 0), _utc(2026, 9, 26, 14, 15), "gap at 02:45 → 04:00"),
    ("Pacific/Chatham", date(2026, 4, 5), time(3, 0), _utc(2026, 4, 4, 13, 15), "twice → first (+13:45)"),
    ("Asia/Kolkata", date(2026, 3, 8), time(9, 0), _utc(2026, 3, 8, 3, 30), "no DST"),
]


@pytest.mark.parametrize(("zone_name", "day", "wall", "expected", "why"), CHANGE_DAYS)
def test_local_instant_on_change_days(zone_name, day, wall, expected, why):
    zone = ZoneInfo(zone_name)
    assert planning.local_instant(zone, day, wall) == expected, why
    assert spec_instant(zone, day, wall) == expected, why
    assert scanned_instant(zone, day, wall) == expected, why


@settings(max_examples=300, deadline=None)
@given(
    zone_name=st.sampled_from(ALL_ZONES),
    day=st.dates(min_value=date(2000, 1, 1), max_value=date(2037, 12, 31)),
    wall=st.times().map(lambda t: t.replace(second=0, microsecond=0)),
)
def test_local_instant_is_the_first_instant_at_that_wall_time_or_the_gap_shifted_forward(zone_name, day, wall):
    zone = ZoneInfo(zone_name)
    assert planning.local_instant(zone, day, wall) == scanned_instant(zone, day, wall)


# --- The year-long DST matrix ----------------------------------------------------------------------

MATRIX_ZONES = [
    "America/New_York",
    "Europe/London",
    "Australia/Sydney",
    "Australia/Lord_Howe",
    "Asia/Kolkata",
    "Pacific/Chatham",
]
# 02:30 and 01:30 hit the gaps and repeats of most zones, 09:00 none; Lord Howe's 30-minute gap
# needs 02:15, and Chatham's change at 02:45 needs 03:00.
MATRIX_TIMES = [time(2, 30), time(1, 30), time(9, 0)]
EXTRA_TIMES = {"Australia/Lord_Howe": [time(2, 15)], "Pacific/Chatham": [time(3, 0)]}
MATRIX_WINDOW = (time(1, 0), time(4, 0))
MATRIX_WINDOW_DAYS = ["mon", "thu", "sun"]  # every 2026 change day above is a Sunday
YEAR = [date(2026, 1, 1) + timedelta(days=offset) for offset in range(365)]


def test_exactly_one_prompt_per_schedule_per_due_day_all_of_2026():
    """The beat's path, a day at a time: at 12:00 UTC every day of 2026, plan every patient's
    today and tomorrow. Each zone's local dates advance by exactly one per step, so every local
    day is planned (as tomorrow, then again as today) with all its instants still ahead."""
    clinic = ClinicFactory()
    patients = {zone_name: _patient(zone_name, clinic=clinic) for zone_name in MATRIX_ZONES}
    fixed, windows = {}, {}
    for zone_name, patient in patients.items():
        walls = MATRIX_TIMES + EXTRA_TIMES.get(zone_name, [])
        fixed[zone_name] = {wall: _schedule(patient, time=wall) for wall in walls}
        windows[zone_name] = _schedule(
            patient, days=MATRIX_WINDOW_DAYS, window_start=MATRIX_WINDOW[0], window_end=MATRIX_WINDOW[1]
        )

    for day in [YEAR[0] - timedelta(days=2), YEAR[0] - timedelta(days=1), *YEAR]:
        prompts_plan_all(now=_utc(day.year, day.month, day.day, 12, 0))

    by_schedule: dict = {}
    rows = Prompt.objects.filter(local_date__year=2026).values_list(
        "schedule_id", "local_date", "slot", "scheduled_for"
    )
    for schedule_id, local_date, slot, scheduled_for in rows:
        assert slot == 0
        by_schedule.setdefault(schedule_id, []).append((local_date, scheduled_for))

    for zone_name in MATRIX_ZONES:
        zone = ZoneInfo(zone_name)
        for wall, schedule in fixed[zone_name].items():
            planned = sorted(by_schedule[schedule.pk])
            assert [local_date for local_date, _ in planned] == YEAR, (zone_name, wall)
            for local_date, scheduled_for in planned:
                assert scheduled_for == spec_instant(zone, local_date, wall), (zone_name, wall, local_date)

        window, (start, end) = windows[zone_name], MATRIX_WINDOW
        planned = sorted(by_schedule[window.pk])
        window_days = [day for day in YEAR if WEEKDAYS[day.weekday()] in MATRIX_WINDOW_DAYS]
        assert [local_date for local_date, _ in planned] == window_days, zone_name
        for local_date, scheduled_for in planned:
            [wall] = planning.stratified_times(
                source_id=window.pk, day=local_date, start=start, end=end, count=1, min_gap_minutes=60
            )
            assert start <= wall < end
            assert scheduled_for == spec_instant(zone, local_date, wall), (zone_name, local_date, wall)

    # Change days by name (every one of 2026's in these zones is a Sunday, so the window has it too).
    for zone_name, day, wall, expected, why in CHANGE_DAYS:
        assert Prompt.objects.get(schedule=fixed[zone_name][wall], local_date=day).scheduled_for == expected, why


@settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(
    zone_name=st.sampled_from(ALL_ZONES),
    day=st.dates(min_value=date(2000, 1, 1), max_value=date(2037, 12, 31)),
    wall=st.times().map(lambda t: t.replace(second=0, microsecond=0)),
)
def test_planning_twice_creates_nothing_new(db, zone_name, day, wall):
    zone = ZoneInfo(zone_name)
    patient = _patient(zone_name)
    schedule = _schedule(patient, time=wall)
    expected = scanned_instant(zone, day, wall)
    now = expected - timedelta(hours=12)  # the patient's today is `day` or the day before

    prompts_plan(patient=patient, now=now)
    first = set(Prompt.objects.filter(schedule=schedule).values_list("id", "local_date", "scheduled_for"))
    prompts_plan(patient=patient, now=now)
    assert set(Prompt.objects.filter(schedule=schedule).values_list("id", "local_date", "scheduled_for")) == first

    # Later the same day (a later beat): the prompts already planned stay as they are.
    prompts_plan(patient=patient, now=now + timedelta(hours=6))
    later = set(Prompt.objects.filter(schedule=schedule).values_list("id", "local_date", "scheduled_for"))
    assert first <= later
    assert [(d, at) for _, d, at in later if d == day] == [(day, expected)]


# --- Quiet hours -----------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("wall", "quiet"),
    [(time(21, 59), False), (time(22, 0), True), (time(23, 30), True), (time(0, 0), True), (time(6, 59), True)]
    + [(time(7, 0), False), (time(12, 0), False)],
)
def test_quiet_hours_wrap_midnight_start_inclusive_end_exclusive(wall, quiet):
    assert planning.in_quiet_hours(wall, time(22, 0), time(7, 0)) is quiet
    assert planning.in_quiet_hours(wall, None, None) is False


def test_a_prompt_inside_quiet_hours_is_planned_skipped_with_the_reason():
    patient = _patient("Europe/London", quiet_hours_start=time(22, 0), quiet_hours_end=time(7, 0))
    walls = [time(21, 59), time(23, 30), time(6, 59), time(7, 0)]
    schedules = {wall: _schedule(patient, time=wall) for wall in walls}

    prompts_plan(patient=patient, now=_utc(2026, 6, 10, 0, 0))  # 01:00 BST

    tomorrow = Prompt.objects.filter(local_date=date(2026, 6, 11))
    outcome = {
        wall: list(tomorrow.filter(schedule=schedule).values_list("status", "skip_reason"))
        for wall, schedule in schedules.items()
    }
    assert outcome == {
        time(21, 59): [("scheduled", "")],
        time(23, 30): [("skipped", "quiet_hours")],
        time(6, 59): [("skipped", "quiet_hours")],
        time(7, 0): [("scheduled", "")],
    }


def test_new_quiet_hours_free_prompts_they_no_longer_cover():
    patient = _patient("Europe/London", quiet_hours_start=time(22, 0), quiet_hours_end=time(7, 0))
    schedule = _schedule(patient, time=time(6, 30))
    now = _utc(2026, 6, 10, 12, 0)
    prompts_plan(patient=patient, now=now)
    assert set(Prompt.objects.filter(schedule=schedule).values_list("status", flat=True)) == {"skipped"}

    patient.quiet_hours_start, patient.quiet_hours_end = time(23, 0), time(6, 0)
    patient.save()
    prompts_replan(patient=patient, now=now)
    assert set(Prompt.objects.filter(schedule=schedule).values_list("status", flat=True)) == {"scheduled"}


# --- Stratified windows ----------------------------------------------------------------------------


def _minutes(value: time) -> int:
    return value.hour * 60 + value.minute


def test_stratified_times_are_one_per_block_at_least_the_gap_apart_and_repeatable():
    seen = set()
    for offset in range(200):
        day = date(2026, 1, 1) + timedelta(days=offset)
        times = planning.stratified_times(
            source_id="session-1", day=day, start=time(9, 0), end=time(21, 0), count=3, min_gap_minutes=60
        )
        blocks = [(time(9, 0), time(13, 0)), (time(13, 0), time(17, 0)), (time(17, 0), time(21, 0))]
        assert all(low <= at < high for at, (low, high) in zip(times, blocks, strict=True))
        assert all(_minutes(b) - _minutes(a) >= 60 for a, b in zip(times, times[1:], strict=False))
        again = planning.stratified_times(
            source_id="session-1", day=day, start=time(9, 0), end=time(21, 0), count=3, min_gap_minutes=60
        )
        assert again == times
        seen.add(tuple(times))
    assert len(seen) > 150  # random per day, not one pattern repeated


@settings(max_examples=300, deadline=None)
@given(
    start=st.integers(0, 23 * 60),
    length=st.integers(1, 24 * 60),
    count=st.integers(1, 8),
    gap=st.integers(0, 240),
    source=st.uuids(),
    day=st.dates(min_value=date(2020, 1, 1), max_value=date(2040, 1, 1)),
)
def test_stratified_times_hold_their_rules_whenever_the_window_fits(start, length, count, gap, source, day):
    end = min(start + length, 24 * 60 - 1)
    start_time, end_time = time(start // 60, start % 60), time(end // 60, end % 60)
    problem = planning.window_problem(start_time, end_time, count=count, min_gap_minutes=gap)
    if problem:
        with pytest.raises(ValueError):
            planning.stratified_times(
                source_id=source, day=day, start=start_time, end=end_time, count=count, min_gap_minutes=gap
            )
        return
    times = [
        _minutes(t)
        for t in planning.stratified_times(
            source_id=source, day=day, start=start_time, end=end_time, count=count, min_gap_minutes=gap
        )
    ]
    width = end - start
    bounds = [start + (slot * width) // count for slot in range(count + 1)]
    assert len(times) == count
    assert all(bounds[slot] <= at < bounds[slot + 1] for slot, at in enumerate(times))
    assert all(b - a >= gap for a, b in zip(times, times[1:], strict=False))
    # The next day's window starts at least the gap after this one ends.
    assert 24 * 60 - width >= gap


def test_window_problems_have_codes():
    assert planning.window_problem(time(10), time(9), count=1, min_gap_minutes=60) == "not_after_start"
    assert planning.window_problem(time(10), time(10), count=1, min_gap_minutes=60) == "not_after_start"
    assert planning.window_problem(time(9), time(11), count=3, min_gap_minutes=60) == "window_too_short"
    assert planning.window_problem(time(9), time(12), count=3, min_gap_minutes=60) is None
    assert planning.window_problem(time(0), time(23, 30), count=1, min_gap_minutes=60) == "window_too_long"


def test_due_days_follow_the_weekday_codes():
    # 2026-03-02 is a Monday.
    assert planning.due_days(["mon", "sun"], date(2026, 3, 1), date(2026, 3, 9)) == [
        date(2026, 3, 1),
        date(2026, 3, 2),
        date(2026, 3, 8),
        date(2026, 3, 9),
    ]
    assert planning.due_days(list(WEEKDAYS), date(2026, 3, 2), date(2026, 3, 1)) == []


# --- Re-planning when things move ------------------------------------------------------------------


def test_a_time_zone_change_moves_future_prompts_but_not_sent_ones(cast):
    patient = cast.patient  # America/New_York
    with time_machine.travel(_utc(2026, 6, 10, 12, 0), tick=False):
        schedule = schedule_create(patient=patient, created_by=None, data={"kind": "check_in", "time": time(9, 0)})
    sent = Prompt.objects.get(schedule=schedule, local_date=date(2026, 6, 10))
    assert sent.scheduled_for == _utc(2026, 6, 10, 13, 0)
    Prompt.objects.filter(pk=sent.pk).update(status=PromptStatus.SENT, sent_at=_utc(2026, 6, 10, 13, 0))

    with time_machine.travel(_utc(2026, 6, 10, 14, 0), tick=False):
        response = client_for(patient.user).patch("/api/v1/me/", {"timezone": "Asia/Tokyo"}, format="json")
    assert response.status_code == 200, response.content

    rows = set(Prompt.objects.filter(schedule=schedule).values_list("local_date", "status", "scheduled_for"))
    assert rows == {
        (date(2026, 6, 10), "sent", _utc(2026, 6, 10, 13, 0)),  # untouched
        # 23:00 in Tokyo: today's 09:00 there is past, tomorrow's 09:00 JST replaces New York's.
        (date(2026, 6, 11), "scheduled", _utc(2026, 6, 11, 0, 0)),
    }


def test_replanning_leaves_leased_and_past_prompts_alone():
    patient = _patient("America/New_York")
    schedule = _schedule(patient, time=time(9, 0))
    now = _utc(2026, 6, 10, 4, 0)
    prompts_plan(patient=patient, now=now)
    today, tomorrow = (Prompt.objects.get(schedule=schedule, local_date=date(2026, 6, d)) for d in (10, 11))
    Prompt.objects.filter(pk=today.pk).update(lease_owner="worker-1", lease_until=now + timedelta(minutes=1))

    prompts_replan(patient=patient, now=now)

    assert Prompt.objects.filter(pk=today.pk).exists()
    assert not Prompt.objects.filter(pk=tomorrow.pk).exists()  # re-planned: a new row, same instant
    assert Prompt.objects.get(schedule=schedule, local_date=date(2026, 6, 11)).scheduled_for == tomorrow.scheduled_for


def test_paused_discharged_and_closed_accounts_get_no_prompts():
    now = _utc(2026, 6, 10, 4, 0)
    active = _patient("America/New_York")
    paused = _patient("America/New_York", status=PatientStatus.PAUSED)
    discharged = _patient("America/New_York", status=PatientStatus.DISCHARGED)
    closed = _patient("America/New_York")
    closed.user.is_active = False
    closed.user.save()
    unenrolled = PatientFactory(clinic=active.clinic)
    for patient in (active, paused, discharged, closed, unenrolled):
        _schedule(patient, time=time(9, 0))
        prompts_plan(patient=patient, now=now)
    prompts_plan_all(now=now)
    assert set(Prompt.objects.values_list("patient_id", flat=True)) == {active.pk}


def test_pausing_a_patient_cancels_their_future_prompts(cast):
    with time_machine.travel(_utc(2026, 6, 10, 12, 0), tick=False):
        schedule_create(patient=cast.patient, created_by=None, data={"kind": "check_in", "time": time(9, 0)})
        assert Prompt.objects.filter(patient=cast.patient).count() == 2
        client = client_for(cast.clinician)
        response = client.patch(f"/api/v1/patients/{cast.patient.id}/", {"status": "paused"}, format="json")
        assert response.status_code == 200, response.content
        assert Prompt.objects.filter(patient=cast.patient).count() == 0
        prompts_plan_all(now=_utc(2026, 6, 10, 12, 0))
        assert Prompt.objects.filter(patient=cast.patient).count() == 0

        response = client.patch(f"/api/v1/patients/{cast.patient.id}/", {"status": "active"}, format="json")
        assert Prompt.objects.filter(patient=cast.patient).count() == 2


def test_a_schedule_patch_moves_its_future_prompts_and_keeps_sent_ones(cast):
    with time_machine.travel(_utc(2026, 6, 10, 12, 0), tick=False):
        client = client_for(cast.patient.user)
        created = client.post("/api/v1/reminders/", {"kind": "check_in", "time": "09:00"}, format="json").json()
        sent = Prompt.objects.get(schedule_id=created["id"], local_date=date(2026, 6, 10))
        Prompt.objects.filter(pk=sent.pk).update(status=PromptStatus.SENT, sent_at=sent.scheduled_for)

        response = client.patch(f"/api/v1/reminders/{created['id']}/", {"time": "10:15"}, format="json")
        assert response.status_code == 200, response.content

    rows = set(Prompt.objects.filter(schedule_id=created["id"]).values_list("local_date", "status", "scheduled_for"))
    assert rows == {
        (date(2026, 6, 10), "sent", _utc(2026, 6, 10, 13, 0)),
        (date(2026, 6, 11), "scheduled", _utc(2026, 6, 11, 14, 15)),
    }


def test_disabling_a_schedule_cancels_its_future_prompts(cast):
    with time_machine.travel(_utc(2026, 6, 10, 12, 0), tick=False):
        client = client_for(cast.patient.user)
        created = client.post("/api/v1/reminders/", {"kind": "check_in", "time": "09:00"}, format="json").json()
        assert Prompt.objects.filter(schedule_id=created["id"]).count() == 2
        client.patch(f"/api/v1/reminders/{created['id']}/", {"enabled": False}, format="json")
        assert Prompt.objects.filter(schedule_id=created["id"]).count() == 0


# --- Intensive sampling after ketamine sessions ----------------------------------------------------

KETAMINE = {
    "kind": "ketamine",
    "starts_at": "2026-03-10T09:30:00-04:00",
    "duration_minutes": 120,
    "route": "im",
    "dose_mg": 52.5,
}


def _craving_checks(session_id) -> list[tuple]:
    zone = ZoneInfo("America/New_York")
    return sorted(
        (p.local_date, p.slot, p.scheduled_for.astimezone(zone).time(), p.status, p.expires_at - p.scheduled_for)
        for p in Prompt.objects.filter(session_id=session_id, kind="craving_check")
    )


def _assert_sampling(rows, days: list[date]) -> None:
    assert [(d, slot) for d, slot, *_ in rows] == [(d, slot) for d in days for slot in range(3)]
    for day in days:
        walls = [wall for d, _, wall, _, _ in rows if d == day]
        assert all(time(9, 0) <= wall < time(21, 0) for wall in walls)
        assert all(_minutes(b) - _minutes(a) >= 60 for a, b in zip(walls, walls[1:], strict=False))
    assert {expiry for *_, expiry in rows} == {timedelta(minutes=SAMPLING_EXPIRES_AFTER_MINUTES)}


def test_a_ketamine_session_brings_craving_checks_that_follow_it(cast):
    url = f"/api/v1/patients/{cast.patient.id}/sessions/"
    with time_machine.travel(_utc(2026, 3, 1, 12, 0), tick=False):
        client = client_for(cast.clinician)
        session = client.post(url, KETAMINE, format="json").json()
    rows = _craving_checks(session["id"])
    _assert_sampling(rows, [date(2026, 3, 11), date(2026, 3, 12), date(2026, 3, 13)])
    assert {status for *_, status, _ in rows} == {"scheduled"}

    # One went out already; then the session moves a week on.
    first = Prompt.objects.get(session_id=session["id"], local_date=date(2026, 3, 11), slot=0)
    with time_machine.travel(first.scheduled_for + timedelta(minutes=1), tick=False):
        Prompt.objects.filter(pk=first.pk).update(status=PromptStatus.SENT, sent_at=first.scheduled_for)
        client = client_for(cast.clinician)
        response = client.patch(f"{url}{session['id']}/", {"starts_at": "2026-03-17T09:30:00-04:00"}, format="json")
        assert response.status_code == 200, response.content
    rows = _craving_checks(session["id"])
    first_wall = first.scheduled_for.astimezone(ZoneInfo("America/New_York")).time()
    assert rows[0][:4] == (date(2026, 3, 11), 0, first_wall, "sent")
    _assert_sampling(rows[1:], [date(2026, 3, 18), date(2026, 3, 19), date(2026, 3, 20)])

    # No longer ketamine: the future ones go, the sent one stays.
    with time_machine.travel(_utc(2026, 3, 12, 12, 0), tick=False):
        client = client_for(cast.clinician)
        response = client.patch(
            f"{url}{session['id']}/", {"kind": "integration", "route": None, "dose_mg": None}, format="json"
        )
        assert response.status_code == 200, response.content
    assert [(d, slot, status) for d, slot, _, status, _ in _craving_checks(session["id"])] == [
        (date(2026, 3, 11), 0, "sent")
    ]


def test_deleting_a_ketamine_session_cancels_its_craving_checks(cast):
    url = f"/api/v1/patients/{cast.patient.id}/sessions/"
    with time_machine.travel(_utc(2026, 3, 1, 12, 0), tick=False):
        client = client_for(cast.clinician)
        session = client.post(url, KETAMINE, format="json").json()
        assert Prompt.objects.filter(session_id=session["id"]).count() == 9
        assert client.delete(f"{url}{session['id']}/").status_code == 204
    assert not Prompt.objects.filter(patient=cast.patient).exists()


def test_craving_checks_in_quiet_hours_are_skipped(cast):
    cast.patient.quiet_hours_start, cast.patient.quiet_hours_end = time(9, 0), time(13, 0)
    cast.patient.save()
    with time_machine.travel(_utc(2026, 3, 1, 12, 0), tick=False):
        session = session_create(
            patient=cast.patient,
            created_by=cast.clinician,
            data={"kind": "ketamine", "starts_at": _utc(2026, 3, 10, 14), "duration_minutes": 90},
        )
    rows = Prompt.objects.filter(session=session).values_list("slot", "status", "skip_reason")
    # The first block (09:00–13:00) lies inside quiet hours, the other two after them.
    assert sorted(set(rows)) == [(0, "skipped", "quiet_hours"), (1, "scheduled", ""), (2, "scheduled", "")]
    assert len(rows) == 9


def test_a_session_in_the_past_plans_only_what_is_still_ahead(cast):
    with time_machine.travel(_utc(2026, 3, 12, 12, 0), tick=False):  # 08:00 EDT on the second day
        session = session_create(
            patient=cast.patient,
            created_by=cast.clinician,
            data={"kind": "ketamine", "starts_at": _utc(2026, 3, 10, 14), "duration_minutes": 90},
        )
    assert {p.local_date for p in Prompt.objects.filter(session=session)} == {date(2026, 3, 12), date(2026, 3, 13)}
    assert Prompt.objects.filter(session=session).count() == 6


def test_a_time_zone_change_moves_craving_checks_too(cast):
    with time_machine.travel(_utc(2026, 3, 1, 12, 0), tick=False):
        session = session_create(
            patient=cast.patient,
            created_by=cast.clinician,
            data={"kind": "ketamine", "starts_at": _utc(2026, 3, 10, 14), "duration_minutes": 90},
        )
        before = {(p.local_date, p.slot): p.scheduled_for for p in Prompt.objects.filter(session=session)}
        client_for(cast.patient.user).patch("/api/v1/me/", {"timezone": "Europe/Berlin"}, format="json")
    after = {(p.local_date, p.slot): p.scheduled_for for p in Prompt.objects.filter(session=session)}
    assert after.keys() == before.keys()
    berlin, new_york = ZoneInfo("Europe/Berlin"), ZoneInfo("America/New_York")
    for key, at in after.items():
        # Same wall time (the draw depends on session, day and slot), read in the new zone.
        assert at.astimezone(berlin).time() == before[key].astimezone(new_york).time()


# --- The beat's bulk planner -----------------------------------------------------------------------


def _patients_with_a_schedule(count: int) -> list:
    clinic = ClinicFactory()
    patients = [_patient("America/New_York", clinic=clinic) for _ in range(count)]
    for patient in patients:
        _schedule(patient, time=time(12, 0))
    return patients


def _plan_all_queries(count: int, now: datetime) -> int:
    patients = _patients_with_a_schedule(count)
    with CaptureQueriesContext(connection) as queries:
        prompts_plan_all(now=now)
    assert Prompt.objects.filter(patient__in=patients).count() == 2 * count
    Prompt.objects.all().delete()
    Schedule.objects.all().delete()
    return len(queries)


def test_plan_all_makes_the_same_queries_for_5_and_50_patients(django_assert_max_num_queries):
    now = _utc(2026, 6, 10, 4, 0)  # midnight in New York: today's and tomorrow's noon are ahead
    few = _plan_all_queries(5, now)
    many = _plan_all_queries(50, now)
    assert few == many
    # savepoint, the batch of patients (locked), their schedules, the prompts they have, one insert, release
    _patients_with_a_schedule(50)
    with django_assert_max_num_queries(6):
        prompts_plan_all(now=now)


def test_plan_all_walks_every_batch_and_is_idempotent():
    patients = _patients_with_a_schedule(7)
    now = _utc(2026, 6, 10, 4, 0)
    prompts_plan_all(now=now, batch_size=3)
    prompts_plan_all(now=now, batch_size=2)
    counts = {patient.pk: Prompt.objects.filter(patient=patient).count() for patient in patients}
    assert counts == {patient.pk: 2 for patient in patients}
