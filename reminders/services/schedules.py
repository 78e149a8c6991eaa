"""Schedules and the prompts they plan (SPEC §7).

Prompts exist as rows `PROMPT_PLAN_DAYS` journal days ahead: the beat's `plan_prompts` tops them
up for every active patient, and every change that moves them (a schedule written, the profile's
time zone, quiet hours or status, a ketamine session) re-plans the patient's future prompts in
the same transaction. Uniqueness per (source, journal day, slot) is the database's: planning
inserts with ON CONFLICT DO NOTHING, so planning twice, or two planners racing, never makes a
second prompt.

Re-planning replaces only what planning owns: future prompts nobody has started to deliver
(`_replaceable`). Anything sent, answered, expired, failed, leased or skipped for another reason
than quiet hours stays as it is — it is history, or a sender holds it.

Planning reads enabled schedules only. A deleted schedule is kept (its past prompts are history)
but disabled, and the `schedule_deleted_is_disabled` constraint holds it so: no planner needs to
know about deletion.

Every planner locks the patient row first. Settings changes (accounts.services.patient_update)
update that row in their transaction, so a planner never writes prompts from a time zone or
quiet hours that a concurrent change is replacing.
"""

import logging
from collections import defaultdict
from collections.abc import Iterable, Set
from datetime import datetime, timedelta
from typing import Any

from django.conf import settings
from django.db import transaction
from django.db.models import Exists, OuterRef, Q
from django.utils import timezone
from rest_framework import exceptions

from accounts.models import Clinic, Patient, PatientStatus, User
from journal.models import Instrument, SessionKind, TherapySession
from reminders import planning
from reminders.models import WEEKDAYS, Prompt, PromptKind, PromptStatus, Schedule, ScheduleKind

logger = logging.getLogger(__name__)

QUIET_HOURS = "quiet_hours"  # Prompt.skip_reason of a prompt planned inside quiet hours
# A craving check asks about this moment; an answer an hour later describes another one.
SAMPLING_EXPIRES_AFTER_MINUTES = 60
# "At least 60 minutes apart (the same for schedule windows)": a window schedule's one daily
# prompt keeps this gap from the previous day's (see planning.window_problem).
SCHEDULE_WINDOW_MIN_GAP_MINUTES = 60
EXPIRES_AFTER_MINUTES_MIN = 15
EXPIRES_AFTER_MINUTES_MAX = 1440
EXPIRES_AFTER_MINUTES_DEFAULT = 120
MESSAGE_MAX_LENGTH = 200
# Rows per INSERT: a batch of patients plans in a handful of statements, whatever its size.
_INSERT_CHUNK = 2000


# --- Planning -------------------------------------------------------------------------------------


def schedule_instant(schedule: Schedule, zone, day):
    """When a schedule's prompt fires on a journal day: its fixed time, or its window's random
    (deterministic per schedule and day) time, as the SPEC's instant in the patient's zone."""
    if schedule.time is not None:
        wall = schedule.time
    else:
        wall = planning.stratified_times(
            source_id=schedule.pk,
            day=day,
            start=schedule.window_start,
            end=schedule.window_end,
            count=1,
            min_gap_minutes=SCHEDULE_WINDOW_MIN_GAP_MINUTES,
        )[0]
    return planning.local_instant(zone, day, wall)


def _plan_days() -> int:
    return settings.PROMPT_PLAN_DAYS


def _gets_prompts(patient: Patient) -> bool:
    """SPEC §1: paused or discharged patients get no prompts; nor does anyone without a live
    account to receive them."""
    user = patient.user
    return patient.status == PatientStatus.ACTIVE and user is not None and user.is_active


def _patient_locked(patient_id) -> Patient:
    return Patient.objects.select_for_update(of=("self",)).select_related("user", "clinic").get(pk=patient_id)


def _replaceable(now: datetime) -> Q:
    """Prompts that planning owns and may delete to plan again: still in the future, never
    attempted, not held by a sender, and either waiting to go out or skipped by the planner
    itself for quiet hours (new quiet hours may free them)."""
    not_leased = Q(lease_owner="") | Q(lease_until__lt=now)
    planned = Q(status=PromptStatus.SCHEDULED) | Q(status=PromptStatus.SKIPPED, skip_reason=QUIET_HOURS)
    return Q(scheduled_for__gt=now, attempts=0, sent_at__isnull=True) & planned & not_leased


def _prompt(
    *,
    patient: Patient,
    at: datetime,
    local_date,
    slot: int,
    kind: str,
    expires_after_minutes: int,
    schedule: Schedule | None = None,
    session: TherapySession | None = None,
    instrument: str | None = None,
    message: str = "",
) -> Prompt:
    local_wall = at.astimezone(patient.zone).time()
    quiet = planning.in_quiet_hours(local_wall, patient.quiet_hours_start, patient.quiet_hours_end)
    return Prompt(
        patient=patient,
        schedule=schedule,
        session=session,
        kind=kind,
        instrument=instrument,
        message=message,
        local_date=local_date,
        slot=slot,
        scheduled_for=at,
        next_attempt_at=at,
        expires_at=at + timedelta(minutes=expires_after_minutes),
        status=PromptStatus.SKIPPED if quiet else PromptStatus.SCHEDULED,
        skip_reason=QUIET_HOURS if quiet else "",
    )


def _schedule_prompts(
    patient: Patient,
    schedules: Iterable[Schedule],
    *,
    now: datetime,
    days: int,
    planned: Set[tuple] = frozenset(),
) -> list[Prompt]:
    """The prompts of these schedules on the patient's journal days today … today+days-1 (today
    in the patient's zone at `now`), leaving out instants already past and the (schedule, day,
    slot) keys in `planned`, which exist already."""
    zone = patient.zone
    today = now.astimezone(zone).date()
    last = today + timedelta(days=days - 1)
    prompts = []
    for schedule in schedules:
        if not schedule.enabled:
            continue
        for day in planning.due_days(schedule.days, today, last):
            if (schedule.pk, day, 0) in planned:
                continue
            at = schedule_instant(schedule, zone, day)
            if at < now:
                continue
            prompts.append(
                _prompt(
                    patient=patient,
                    schedule=schedule,
                    at=at,
                    local_date=day,
                    slot=0,
                    kind=schedule.kind,
                    instrument=schedule.instrument,
                    message=schedule.message,
                    expires_after_minutes=schedule.expires_after_minutes,
                )
            )
    return prompts


def _sampling_count(clinic: Clinic) -> int:
    """How many craving checks a sampling day holds: the clinic's number, or fewer when its
    window cannot hold that many with the gap (then logged, so the setting gets fixed)."""
    wanted = clinic.sampling_prompts_per_day
    for count in range(wanted, 0, -1):
        problem = planning.window_problem(
            clinic.sampling_window_start,
            clinic.sampling_window_end,
            count=count,
            min_gap_minutes=clinic.sampling_min_gap_minutes,
        )
        if problem is None:
            if count < wanted:
                logger.warning("clinic %s: sampling window holds only %d of %d prompts", clinic.pk, count, wanted)
            return count
        if problem != "window_too_short":
            break
    if wanted:
        logger.error("clinic %s: sampling window cannot hold craving checks; none planned", clinic.pk)
    return 0


def _session_prompts(patient: Patient, session: TherapySession, *, now: datetime) -> list[Prompt]:
    """Intensive sampling after a ketamine session: craving checks on the clinic's number of
    journal days after the session's day, stratified in the clinic's window."""
    clinic = patient.clinic
    count = _sampling_count(clinic)
    if not count:
        return []
    prompts = []
    for offset in range(1, clinic.sampling_days + 1):
        day = session.local_date + timedelta(days=offset)
        walls = planning.stratified_times(
            source_id=session.pk,
            day=day,
            start=clinic.sampling_window_start,
            end=clinic.sampling_window_end,
            count=count,
            min_gap_minutes=clinic.sampling_min_gap_minutes,
        )
        for slot, wall in enumerate(walls):
            at = planning.local_instant(patient.zone, day, wall)
            if at < now:
                continue
            prompts.append(
                _prompt(
                    patient=patient,
                    session=session,
                    at=at,
                    local_date=day,
                    slot=slot,
                    kind=PromptKind.CRAVING_CHECK,
                    expires_after_minutes=SAMPLING_EXPIRES_AFTER_MINUTES,
                )
            )
    return prompts


def _planned_keys(schedule_ids: list, *, now: datetime, days: int) -> set[tuple]:
    """(schedule, journal day, slot) of the prompts that already exist on the days a plan from
    `now` can reach in any zone, so the beat, which finds nearly all of them planned, builds and
    sends only the few that are new. (The unique constraint still has the last word.)"""
    first, last = now.date() - timedelta(days=1), now.date() + timedelta(days=days)
    return set(
        Prompt.objects.filter(schedule_id__in=schedule_ids, local_date__range=(first, last)).values_list(
            "schedule_id", "local_date", "slot"
        )
    )


def _insert(prompts: list[Prompt]) -> None:
    if prompts:
        Prompt.objects.bulk_create(prompts, ignore_conflicts=True, batch_size=_INSERT_CHUNK)


@transaction.atomic
def prompts_plan(*, patient: Patient, now: datetime, days: int | None = None) -> None:
    """Creates the patient's schedule prompts for journal days today … today+days-1 (default
    PROMPT_PLAN_DAYS). Idempotent: a prompt already planned for a (schedule, day, slot) stays."""
    patient = _patient_locked(patient.pk)
    if not _gets_prompts(patient):
        return
    days = days or _plan_days()
    schedules = list(Schedule.objects.filter(patient=patient, enabled=True))
    planned = _planned_keys([schedule.pk for schedule in schedules], now=now, days=days)
    _insert(_schedule_prompts(patient, schedules, now=now, days=days, planned=planned))


def _recent_ketamine_sessions(patient: Patient, *, now: datetime):
    """Live ketamine sessions whose sampling days may still lie ahead (a day's margin for zones)."""
    today = now.astimezone(patient.zone).date()
    since = today - timedelta(days=patient.clinic.sampling_days + 1)
    return TherapySession.objects.filter(
        patient=patient, kind=SessionKind.KETAMINE, local_date__gte=since, deleted_at__isnull=True
    )


@transaction.atomic
def prompts_replan(*, patient: Patient, now: datetime | None = None) -> None:
    """Moves every future prompt of the patient: after a time-zone, quiet-hours or status change.

    Deletes the future prompts planning owns (see `_replaceable`) and plans schedules and
    ketamine sampling again from the settings as they are now. A paused or discharged patient,
    or one whose account is closed, is left with no future prompts.
    """
    now = now or timezone.now()
    patient = _patient_locked(patient.pk)
    Prompt.objects.filter(_replaceable(now), patient=patient).delete()
    if not _gets_prompts(patient):
        return
    prompts = _schedule_prompts(
        patient, Schedule.objects.filter(patient=patient, enabled=True), now=now, days=_plan_days()
    )
    for session in _recent_ketamine_sessions(patient, now=now):
        prompts += _session_prompts(patient, session, now=now)
    _insert(prompts)


@transaction.atomic
def session_prompts_sync(*, session: TherapySession, deleted: bool, now: datetime | None = None) -> None:
    """Makes a session's intensive-sampling prompts follow it: created for a ketamine session,
    moved with it, cancelled when it is deleted or stops being ketamine. Prompts already sent
    (or otherwise past planning's hands) stay."""
    now = now or timezone.now()
    patient = _patient_locked(session.patient_id)
    Prompt.objects.filter(_replaceable(now), session_id=session.pk).delete()
    if deleted or session.deleted_at is not None or session.kind != SessionKind.KETAMINE or not _gets_prompts(patient):
        return
    _insert(_session_prompts(patient, session, now=now))


def _plannable_patients():
    enabled = Schedule.objects.filter(patient=OuterRef("pk"), enabled=True)
    return Patient.objects.filter(Exists(enabled), status=PatientStatus.ACTIVE, user__is_active=True)


def prompts_plan_all(*, now: datetime, batch_size: int = 500) -> None:
    """Tops up schedule prompts for every active patient with an enabled schedule (the beat's
    `plan_prompts`). A constant number of queries per batch of patients: the batch, its
    schedules, the prompts they already have, one bulk insert.

    Each batch locks its patients with SKIP LOCKED: a patient whose settings are being changed
    right now is re-planned by that change's own transaction, and the beat does not wait for it.
    """
    after = None
    while True:
        with transaction.atomic():
            batch = _plannable_patients().order_by("pk").select_for_update(of=("self",), skip_locked=True)
            if after is not None:
                batch = batch.filter(pk__gt=after)
            patients = list(batch[:batch_size])
            if not patients:
                return
            days = _plan_days()
            schedules = defaultdict(list)
            for schedule in Schedule.objects.filter(patient__in=[p.pk for p in patients], enabled=True):
                schedules[schedule.patient_id].append(schedule)
            planned = _planned_keys([s.pk for group in schedules.values() for s in group], now=now, days=days)
            prompts = []
            for patient in patients:
                prompts += _schedule_prompts(patient, schedules[patient.pk], now=now, days=days, planned=planned)
            _insert(prompts)
        if len(patients) < batch_size:
            return
        after = patients[-1].pk


# --- Schedule writes ------------------------------------------------------------------------------


def _error(errors: dict, field: str, message: str, code: str) -> None:
    errors.setdefault(field, []).append(exceptions.ErrorDetail(message, code=code))


def _schedule_check(schedule: Schedule) -> None:
    """The schedule as it will be stored, checked whole (a PATCH is checked with the stored
    fields it leaves alone). Raises a 400 with a machine code per field."""
    errors: dict[str, list] = {}
    kind = schedule.kind
    if kind not in ScheduleKind.values:
        _error(errors, "kind", "Unknown reminder kind.", "invalid_choice")
    if schedule.instrument is not None and schedule.instrument not in Instrument.values:
        _error(errors, "instrument", "Unknown instrument.", "invalid_choice")
    elif kind == ScheduleKind.ASSESSMENT and not schedule.instrument:
        _error(errors, "instrument", "An assessment reminder needs an instrument.", "required")
    elif kind != ScheduleKind.ASSESSMENT and schedule.instrument:
        _error(errors, "instrument", "Only an assessment reminder has an instrument.", "only_for_assessment")

    schedule.message = (schedule.message or "").strip()
    if len(schedule.message) > MESSAGE_MAX_LENGTH:
        _error(errors, "message", f"At most {MESSAGE_MAX_LENGTH} characters.", "max_length")
    elif kind == ScheduleKind.CUSTOM and not schedule.message:
        _error(errors, "message", "A custom reminder needs a message.", "required")
    elif kind != ScheduleKind.CUSTOM and schedule.message:
        _error(errors, "message", "Only a custom reminder has a message.", "only_for_custom")

    days = schedule.days
    if not isinstance(days, list | tuple) or not days:
        _error(errors, "days", "Give at least one day.", "empty")
    elif any(day not in WEEKDAYS for day in days):
        _error(errors, "days", f"Days are {', '.join(WEEKDAYS)}.", "invalid_choice")
    elif len(set(days)) != len(days):
        _error(errors, "days", "Each day may appear once.", "duplicate")
    else:
        schedule.days = [day for day in WEEKDAYS if day in days]  # stored in week order

    has_window = schedule.window_start is not None or schedule.window_end is not None
    if schedule.time is not None and has_window:
        for field in ("time", "window"):
            _error(errors, field, "Give a time or a window, not both (set the other to null).", "time_and_window")
    elif schedule.time is None and not has_window:
        _error(errors, "time", "Give a time or a window.", "time_or_window_required")
    elif has_window:
        if schedule.window_start is None or schedule.window_end is None:
            _error(errors, "window", "A window needs a start and an end.", "required")
        else:
            problem = planning.window_problem(
                schedule.window_start, schedule.window_end, count=1, min_gap_minutes=SCHEDULE_WINDOW_MIN_GAP_MINUTES
            )
            messages = {
                "not_after_start": "The window must end after it starts, on the same day.",
                "window_too_short": f"A window is at least {SCHEDULE_WINDOW_MIN_GAP_MINUTES} minutes long.",
                "window_too_long": (
                    f"A window leaves at least {SCHEDULE_WINDOW_MIN_GAP_MINUTES} minutes before the next day's, "
                    f"so it is at most {24 * 60 - SCHEDULE_WINDOW_MIN_GAP_MINUTES} minutes long."
                ),
            }
            if problem:
                _error(errors, "window", messages[problem], problem)

    expiry = schedule.expires_after_minutes
    if isinstance(expiry, bool) or not isinstance(expiry, int):
        _error(errors, "expires_after_minutes", "A whole number of minutes is required.", "invalid")
    elif not EXPIRES_AFTER_MINUTES_MIN <= expiry <= EXPIRES_AFTER_MINUTES_MAX:
        code = "min_value" if expiry < EXPIRES_AFTER_MINUTES_MIN else "max_value"
        _error(
            errors,
            "expires_after_minutes",
            f"Between {EXPIRES_AFTER_MINUTES_MIN} and {EXPIRES_AFTER_MINUTES_MAX} minutes.",
            code,
        )
    if not isinstance(schedule.enabled, bool):
        _error(errors, "enabled", "true or false.", "invalid")
    if errors:
        raise exceptions.ValidationError(errors)


_PLAIN_FIELDS = ("kind", "instrument", "message", "days", "time", "expires_after_minutes", "enabled")


def _schedule_apply(schedule: Schedule, data: dict[str, Any]) -> None:
    for field in _PLAIN_FIELDS:
        if field in data:
            setattr(schedule, field, data[field])
    if "window" in data:
        window = data["window"]
        # A half window (a caller that skipped the serializer) is the check's `required`, not a KeyError.
        schedule.window_start = window.get("start") if window else None
        schedule.window_end = window.get("end") if window else None


def _schedule_replan(schedule: Schedule, patient: Patient, *, now: datetime) -> None:
    """Re-plans one schedule's future prompts (the patient row is already locked)."""
    Prompt.objects.filter(_replaceable(now), schedule=schedule).delete()
    if schedule.enabled and _gets_prompts(patient):
        _insert(_schedule_prompts(patient, [schedule], now=now, days=_plan_days()))


@transaction.atomic
def schedule_create(*, patient: Patient, created_by: User | None, data: dict[str, Any]) -> Schedule:
    """A new schedule (SPEC §7), planned at once: its prompts for today and the days ahead."""
    patient = _patient_locked(patient.pk)
    schedule = Schedule(
        patient=patient,
        created_by=created_by,
        days=list(WEEKDAYS),
        expires_after_minutes=EXPIRES_AFTER_MINUTES_DEFAULT,
        enabled=True,
    )
    _schedule_apply(schedule, data)
    _schedule_check(schedule)
    schedule.save()
    _schedule_replan(schedule, patient, now=timezone.now())
    return schedule


def _schedule_live_locked(schedule_id) -> Schedule:
    """The schedule row, locked, unless it is deleted: a PATCH or DELETE that read it before a
    concurrent DELETE committed finds it gone (404) rather than re-enabling or deleting it again."""
    schedule = Schedule.objects.select_for_update().filter(pk=schedule_id, deleted_at__isnull=True).first()
    if schedule is None:
        raise exceptions.NotFound()
    return schedule


@transaction.atomic
def schedule_update(*, schedule: Schedule, data: dict[str, Any]) -> Schedule:
    """Applies the fields present in `data` (a PATCH) and moves the schedule's future prompts."""
    patient = _patient_locked(schedule.patient_id)
    locked = _schedule_live_locked(schedule.pk)
    _schedule_apply(locked, data)
    _schedule_check(locked)
    locked.save()
    _schedule_replan(locked, patient, now=timezone.now())
    return locked


@transaction.atomic
def schedule_delete(*, schedule: Schedule) -> None:
    """Deletes the schedule for the patient and the care team, keeping the row: disabled and
    marked `deleted_at`, it is never listed or planned again. Its future prompts go, as when it
    is disabled; the past ones (sent, answered, expired) stay, since they are the compliance
    history a clinician reads."""
    now = timezone.now()
    patient = _patient_locked(schedule.patient_id)
    locked = _schedule_live_locked(schedule.pk)
    locked.enabled = False
    locked.deleted_at = now
    locked.save(update_fields=["enabled", "deleted_at", "updated_at"])
    _schedule_replan(locked, patient, now=now)
