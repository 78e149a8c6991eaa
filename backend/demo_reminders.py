"""The demo patients' reminders (seed_demo): schedules, phones, a month of prompts that agree with the
journal already seeded, and the next prompts planned so `make run` has some to send.

Like the histories, everything is built in memory and written with one bulk insert per table, and the
same seed and the same day give the same prompts. A check-in prompt is completed when its journal day
has a check-in logged after it went out, skipped (`already_done`) when the check-in came first, and
expired when none came; the history's entries keep `prompt_id` null.
"""

import random
import uuid
from dataclasses import dataclass
from datetime import datetime, time, timedelta

from django.db.models import F

from accounts.models import Patient, PatientStatus, User
from backend import demo_histories as stories
from journal.models import Assessment, Entry, EntryKind, Instrument
from reminders import planning
from reminders.models import WEEKDAYS, Device, Platform, Prompt, PromptKind, PromptStatus, Schedule, ScheduleKind
from reminders.services.schedules import QUIET_HOURS, prompts_plan, schedule_instant

PROMPT_HISTORY_DAYS = 30
CHECK_IN_EXPIRES_AFTER = 180  # long enough for the latest check-in a story logs (an hour after its usual)
PHQ9_TIME, PHQ9_EXPIRES_AFTER = time(17, 30), 240  # the weekly questionnaires are answered 18:00–19:59
CUSTOM_EXPIRES_AFTER = 1440  # a daily nudge stays open until the next one
QUIET = (time(22, 30), time(7, 0))
ALREADY_DONE = "already_done"
FAILED_DAYS_AGO = 4  # the day push kept failing for the stories in FAILED_PUSH


@dataclass(frozen=True)
class Plan:
    """One patient's reminder settings, on top of the daily check-in and the Sunday PHQ-9."""

    window: bool = False  # the check-in fires at a random time in a two-hour window, not a fixed time
    quiet_hours: bool = False
    device: bool = True  # False: no phone registered, so prompts go out by email
    custom: tuple[time, str] | None = None  # a daily neutral nudge


PLANS = {
    stories.IMPROVING_WITH_KETAMINE: Plan(
        custom=(time(12, 0), "Take a slow breath and notice how you are doing right now.")
    ),
    stories.RELAPSING: Plan(window=True, quiet_hours=True),  # window 21:00–23:00: late ones fall in quiet hours
    stories.WORSENING_MOOD: Plan(
        window=True, custom=(time(15, 0), "A moment for yourself: stretch, drink some water.")
    ),
    stories.THOUGHTS_OF_SELF_HARM: Plan(quiet_hours=True),
    stories.STEADY_WITH_KETAMINE: Plan(window=True),
    stories.EARLY_LAPSES_THEN_STABLE: Plan(quiet_hours=True, device=False),
    stories.ANXIOUS_TAPER: Plan(window=True),
}
FAILED_PUSH = (stories.RELAPSING, stories.WORSENING_MOOD)


def demo_reminders_create(
    *, histories: list[tuple[Patient, stories.Story]], clinician: User, now: datetime, seed: str
) -> int:
    """Writes every enrolled patient's schedules, device and prompt history, then plans their next
    prompts; returns the number of prompts written."""
    rng = random.Random(f"{seed}:reminders")
    patients = Patient.objects.select_related("user", "clinic").in_bulk([p.pk for p, _ in histories])
    enrolled = [(patients[p.pk], story) for p, story in histories if patients[p.pk].user is not None]

    quiet = [p.pk for p, story in enrolled if _plan(story).quiet_hours]
    Patient.objects.filter(pk__in=quiet).update(quiet_hours_start=QUIET[0], quiet_hours_end=QUIET[1])
    schedules, devices = [], []
    for number, (patient, story) in enumerate(enrolled, start=1):
        if patient.pk in quiet:
            patient.quiet_hours_start, patient.quiet_hours_end = QUIET
        schedules += _schedules(patient, story, clinician, rng)
        if _plan(story).device:
            platform = Platform.ANDROID if number % 3 else Platform.IOS
            devices.append(Device(id=_id(rng), user=patient.user, platform=platform, token=f"demo-fcm-token-{number}"))
    Schedule.objects.bulk_create(schedules)
    Device.objects.bulk_create(devices)
    now - timedelta(days=stories.CREATED_DAYS_AGO)  # set up when the patient joined
    Schedule.objects.filter(pk__in=[s.pk for s in schedules]).update(
        created_at=now - timedelta(days=stories.CREATED_DAYS_AGO),
        updated_at=now - timedelta(days=stories.CREATED_DAYS_AGO),
    )

    prompts = _History(enrolled=enrolled, schedules=schedules, rng=rng, now=now).prompts
    Prompt.objects.bulk_create(prompts)
    # Planned a day or two before they were due, not when the demo was seeded.
    Prompt.objects.filter(patient__in=[p.pk for p, _ in enrolled]).update(
        created_at=F("scheduled_for") - timedelta(days=1)
    )
    for patient, _ in enrolled:
        if patient.status == PatientStatus.ACTIVE:
            prompts_plan(patient=patient, now=now)
    return len(prompts)


def _plan(story: stories.Story) -> Plan:
    return PLANS.get(story, Plan())


def _id(rng: random.Random) -> uuid.UUID:
    return uuid.UUID(int=rng.getrandbits(128), version=4)


def _schedules(patient: Patient, story: stories.Story, clinician: User, rng: random.Random) -> list[Schedule]:
    plan, hour = _plan(story), story.check_in_hour
    common = {"patient": patient, "created_by": clinician}
    if plan.window:  # the two hours around the story's usual check-in
        timing = {"window_start": time(hour - 1, 0), "window_end": time(hour + 1, 0)}
    else:  # half an hour before it
        timing = {"time": time(hour - 1, 30)}
    schedules = [
        Schedule(
            id=_id(rng),
            kind=ScheduleKind.CHECK_IN,
            days=list(WEEKDAYS),
            expires_after_minutes=CHECK_IN_EXPIRES_AFTER,
            **timing,
            **common,
        ),
        Schedule(
            id=_id(rng),
            kind=ScheduleKind.ASSESSMENT,
            instrument=Instrument.PHQ9,
            days=["sun"],
            time=PHQ9_TIME,
            expires_after_minutes=PHQ9_EXPIRES_AFTER,
            **common,
        ),
    ]
    if plan.custom:
        at, message = plan.custom
        schedules.append(
            Schedule(
                id=_id(rng),
                kind=ScheduleKind.CUSTOM,
                message=message,
                days=list(WEEKDAYS),
                time=at,
                expires_after_minutes=CUSTOM_EXPIRES_AFTER,
                **common,
            )
        )
    return schedules


class _History:
    """The prompts of the last PROMPT_HISTORY_DAYS journal days (today's up to now), as delivery and
    the answers in the journal would have left them."""

    def __init__(self, *, enrolled, schedules: list[Schedule], rng: random.Random, now: datetime):
        self.rng, self.now = rng, now
        self.prompts: list[Prompt] = []
        since = now.date() - timedelta(days=PROMPT_HISTORY_DAYS + 1)
        self.check_ins: dict[tuple, datetime] = {}  # (patient, journal day) -> the first check-in
        live = Entry.objects.filter(patient__in=[p.pk for p, _ in enrolled], deleted_at__isnull=True)
        for patient_id, day, occurred_at in (
            live.filter(kind=EntryKind.CHECK_IN, local_date__gte=since)
            .order_by("-occurred_at")
            .values_list("patient_id", "local_date", "occurred_at")
        ):
            self.check_ins[(patient_id, day)] = occurred_at
        self.phq9s = {
            (patient_id, day): completed_at
            for patient_id, day, completed_at in Assessment.objects.filter(
                patient__in=[p.pk for p, _ in enrolled], instrument=Instrument.PHQ9, local_date__gte=since
            ).values_list("patient_id", "local_date", "completed_at")
        }
        by_patient: dict = {}
        for schedule in schedules:
            by_patient.setdefault(schedule.patient_id, []).append(schedule)
        for number, (patient, story) in enumerate(enrolled, start=1):
            for schedule in by_patient[patient.pk]:
                self._schedule(patient, story, number, schedule)

    def _schedule(self, patient: Patient, story: stories.Story, number: int, schedule: Schedule) -> None:
        today = self.now.astimezone(patient.zone).date()
        first = today - timedelta(days=PROMPT_HISTORY_DAYS - 1)
        if story.stopped_days_ago:  # paused or discharged: no prompts since
            today = today - timedelta(days=story.stopped_days_ago)
        channel = "push" if _plan(story).device else "email"
        for day in planning.due_days(schedule.days, first, today):
            at = schedule_instant(schedule, patient.zone, day)
            if at >= self.now:
                continue  # planned below, with the days ahead
            prompt = Prompt(
                id=_id(self.rng),
                patient=patient,
                schedule=schedule,
                kind=schedule.kind,
                instrument=schedule.instrument,
                message=schedule.message,
                local_date=day,
                slot=0,
                scheduled_for=at,
                next_attempt_at=at,
                expires_at=at + timedelta(minutes=schedule.expires_after_minutes),
                status=PromptStatus.SCHEDULED,
            )
            self._deliver(prompt, patient, story, number, channel, days_ago=(today - day).days)
            self.prompts.append(prompt)

    def _deliver(self, prompt: Prompt, patient: Patient, story, number: int, channel: str, *, days_ago: int) -> None:
        rng, at = self.rng, prompt.scheduled_for
        local_wall = at.astimezone(patient.zone).time()
        if planning.in_quiet_hours(local_wall, patient.quiet_hours_start, patient.quiet_hours_end):
            prompt.status, prompt.skip_reason = PromptStatus.SKIPPED, QUIET_HOURS
            return
        answered = None
        if prompt.kind == PromptKind.CHECK_IN:
            answered = self.check_ins.get((patient.pk, prompt.local_date))
            if answered is not None and answered <= at:
                prompt.status, prompt.skip_reason = PromptStatus.SKIPPED, ALREADY_DONE
                return
        if story in FAILED_PUSH and prompt.kind == PromptKind.CHECK_IN and days_ago == FAILED_DAYS_AGO:
            # FCM answered 503 until the prompt expired.
            prompt.status, prompt.attempts, prompt.channel = PromptStatus.FAILED, 6, channel
            prompt.last_error = "expired_retrying"
            return
        prompt.attempts, prompt.channel = 1, channel
        prompt.sent_at = at + timedelta(seconds=rng.randint(1, 20))
        if prompt.kind == PromptKind.ASSESSMENT:
            answered = self.phq9s.get((patient.pk, prompt.local_date))
        elif prompt.kind == PromptKind.CUSTOM and prompt.expires_at <= self.now and rng.random() < 0.6:
            answered = prompt.sent_at + timedelta(minutes=rng.randint(2, 90))
        if answered is not None and answered <= min(prompt.expires_at, self.now):
            prompt.status = PromptStatus.COMPLETED
            if answered <= prompt.sent_at:  # answered while the push was on its way
                answered = prompt.sent_at + timedelta(minutes=rng.randint(2, 6))
            prompt.completed_at = answered
            seen = prompt.sent_at + timedelta(seconds=rng.randint(2, 60))
            prompt.received_at = seen if channel == "push" else answered  # an email has no receipt but the answer
            return
        seen = days_ago % 2 == 0 if story.quiet_days else rng.random() < 0.5
        if prompt.expires_at > self.now:  # still open: the phone shows it, or not yet
            seen = number % 2 == 1
            prompt.status = PromptStatus.RECEIVED if seen and channel == "push" else PromptStatus.SENT
        else:
            prompt.status = PromptStatus.EXPIRED
        if seen and channel == "push":
            prompt.received_at = prompt.sent_at + timedelta(seconds=rng.randint(2, 600))
