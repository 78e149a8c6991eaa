"""A large, realistic clinic for benchmarks (`manage.py generate_load`), written with COPY.

Pure generators build the rows (one patient at a time, from a per-patient random stream, so the
same seed gives the same clinic whatever the chunking), and `load_create` streams them into
PostgreSQL with `COPY … FROM STDIN`, a chunk of patients per statement, so memory stays flat at
a million and a half entries. Server fields are set the way the services would have set them:
the journal day and hour by `Patient.journal_day`, wall-clock times by `planning.local_instant`,
scores by `journal.instruments`, notes encrypted by the note field itself.

Each patient also has a daily check-in prompt for every day of the history (from a schedule turned
off the moment the load was written, so the planner sends nothing more): answered as often as the
patient checks in, expired otherwise, a few failed — the triage list and compliance read them. An
answer is not linked to a check-in entry: the figures read only the prompts' own columns.

Left out on purpose: alerts (rules run inside the write services; a load bypasses them, so item 9
of every PHQ-9 is answered 0 and nothing here should have fired one), entry revisions and
tombstones, and the access log.
"""

import hashlib
import json
import random
import time as clock
import uuid
from collections.abc import Callable, Iterable, Iterator, Sequence
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, time, timedelta
from decimal import Decimal

from django.conf import settings
from django.contrib.auth.hashers import make_password
from django.db import connection, models

from accounts.models import (
    SUBSTANCES,
    CareTeamMembership,
    Clinic,
    ConsentAcceptance,
    EnrollmentCode,
    Patient,
    PatientStatus,
    Role,
    User,
)
from accounts.services import clinician_create
from backend.demo_histories import AMOUNTS, CHECK_IN_NOTES, CRAVING_NOTES, USE_NOTES
from journal.instruments import instrument
from journal.models import (
    COPING,
    TRIGGERS,
    Assessment,
    Entry,
    EntryKind,
    Instrument,
    JournalSequence,
    KetamineRoute,
    SessionKind,
    TherapySession,
)
from journal.services.entries import LATE_AFTER
from journal.services.rollups import rollups_rebuild
from reminders.models import WEEKDAYS, Device, Platform, Prompt, PromptKind, PromptStatus, Schedule, ScheduleKind
from reminders.planning import local_instant
from reminders.services.schedules import EXPIRES_AFTER_MINUTES_DEFAULT

LOAD_CLINIC = "Load Clinic"
CLINICIAN_PASSWORD = "load-test-password-8841"  # noqa: S105 - a throwaway bench login, printed on purpose
PATIENT_PASSWORD = "phone-load-password-7730"  # noqa: S105
SMALL_CLINICIAN = "small@load.interlude.test"  # on the care team of the first SMALL_CARE_TEAM patients
LARGE_CLINICIAN = "large@load.interlude.test"  # on every patient's care team
ADMIN = "admin@load.interlude.test"
SMALL_CARE_TEAM = 200
PATIENTS_WITH_PASSWORD = 300  # the rest cannot sign in (unusable password)
ZONES = ("America/New_York", "America/Chicago", "America/Los_Angeles", "Europe/London", "Australia/Sydney")
NOTE_SHARE = 0.01
JOINED_BEFORE_HISTORY = timedelta(days=7)  # patients joined a week before their first entry
LOAD_REMINDER_MESSAGE = "Time for your load-test reminder"
CHUNK_PATIENTS = 25  # patients per COPY statement: about 36,000 entries at 365 days × 4

_PRIMARY_SUBSTANCES = ("alcohol",) * 5 + ("opioids",) * 2 + ("cocaine", "stimulants", "cannabis", "sedatives")
_CRAVING_HOURS = (8, 10, 11, 12, 13, 14, 15, 16, 17, 17, 18, 18, 19, 19, 20, 20, 21, 21, 22, 23)
_ROUTES = (KetamineRoute.IM, KetamineRoute.IM, KetamineRoute.IV, KetamineRoute.INTRANASAL, KetamineRoute.SUBLINGUAL)
_EMPTY_LIST = "[]"

ENTRY_FIELDS = (
    "id", "patient_id", "kind", "occurred_at", "local_date", "local_hour", "craving", "mood", "anxiety",
    "sleep_hours", "substance", "amount", "triggers", "coping", "note", "prompt_id", "received_at", "late",
    "version", "change_seq", "deleted_at", "created_at", "updated_at",
)  # fmt: skip
ASSESSMENT_FIELDS = (
    "id", "patient_id", "instrument", "answers", "score", "severity", "completed_at", "local_date", "prompt_id",
    "received_at", "late", "created_at",
)  # fmt: skip
SESSION_FIELDS = (
    "id", "patient_id", "kind", "starts_at", "local_date", "duration_minutes", "route", "dose_mg", "notes",
    "created_by_id", "created_at", "updated_at",
)  # fmt: skip
SCHEDULE_FIELDS = (
    "id", "patient_id", "kind", "instrument", "message", "days", "time", "window_start", "window_end",
    "expires_after_minutes", "enabled", "created_by_id", "created_at", "updated_at",
)  # fmt: skip
PROMPT_FIELDS = (
    "id", "patient_id", "schedule_id", "session_id", "kind", "instrument", "message", "local_date", "slot",
    "scheduled_for", "expires_at", "status", "skip_reason", "next_attempt_at", "lease_owner", "lease_until",
    "attempts", "last_error", "channel", "sent_at", "received_at", "completed_at", "created_at",
)  # fmt: skip


# --- One patient ------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Profile:
    """Who one load patient is and how their year goes. Levels are 0–10 scales."""

    number: int  # 1-based: p0001@load.interlude.test
    patient_id: uuid.UUID
    user_id: uuid.UUID
    timezone: str
    substances: tuple[str, ...]
    craving_from: float
    craving_to: float
    mood_from: float
    mood_to: float
    anxiety: float
    engagement: float  # the chance of a daily check-in
    check_in_hour: int
    assessment_weekday: int  # 0 = Monday
    lapse_rate: float  # the chance of a use entry on an average day
    session_relief: float  # how far cravings ebb right after a ketamine session
    route: str
    triggers: tuple[str, ...]
    coping: tuple[str, ...]

    @property
    def email(self) -> str:
        return patient_email(self.number)

    @property
    def display_name(self) -> str:
        return f"Load Patient {self.number:04d}"

    def patient(self) -> Patient:
        """An unsaved Patient, for the app's own journal-day rule."""
        return Patient(id=self.patient_id, timezone=self.timezone, substances=list(self.substances))


def patient_email(number: int) -> str:
    return f"p{number:04d}@load.interlude.test"


def _uuid(rng: random.Random) -> uuid.UUID:
    return uuid.UUID(int=rng.getrandbits(128), version=4)


def _rng(seed: int, *parts) -> random.Random:
    return random.Random(":".join(str(part) for part in (seed, *parts)))


def _clamp(value: float, low: int = 0, high: int = 10) -> int:
    return max(low, min(high, round(value)))


def _some(rng: random.Random, words: Sequence[str], most: int, vocabulary: Sequence[str]) -> list[str]:
    """One to `most` distinct words, in vocabulary order (as a phone would send them)."""
    return sorted(rng.sample(words, rng.randint(1, min(most, len(words)))), key=vocabulary.index)


def profile_for(number: int, *, seed: int) -> Profile:
    rng = _rng(seed, "profile", number)
    primary = rng.choice(_PRIMARY_SUBSTANCES)
    substances = (primary,)
    if rng.random() < 0.35:
        substances += (rng.choice([s for s in SUBSTANCES if s != primary and s != "other"]),)
    craving_from = rng.uniform(3.5, 8.0)
    mood_from = rng.uniform(3.5, 6.5)
    return Profile(
        number=number,
        patient_id=_uuid(rng),
        user_id=_uuid(rng),
        timezone=ZONES[(number - 1) % len(ZONES)],
        substances=substances,
        craving_from=craving_from,
        craving_to=max(1.0, min(9.0, craving_from + rng.uniform(-4.0, 1.0))),
        mood_from=mood_from,
        mood_to=max(2.0, min(9.0, mood_from + rng.uniform(-1.0, 2.5))),
        anxiety=rng.uniform(3.0, 7.0),
        engagement=rng.uniform(0.8, 0.99),
        check_in_hour=rng.choice((8, 20, 21, 21, 22)),
        assessment_weekday=rng.choice((5, 6, 6, 6, 0)),
        lapse_rate=rng.uniform(0.004, 0.03),
        session_relief=rng.uniform(1.2, 3.0),
        route=rng.choice(_ROUTES),
        triggers=tuple(rng.sample(TRIGGERS, 4)),
        coping=tuple(rng.sample(COPING, 3)),
    )


@dataclass
class Day:
    date: date
    craving: float
    mood: float
    anxiety: float
    lapse: bool = False


@dataclass
class History:
    """One patient's rows, ready for COPY (field orders: ENTRY_FIELDS, ASSESSMENT_FIELDS, SESSION_FIELDS)."""

    entries: list[tuple] = field(default_factory=list)
    assessments: list[tuple] = field(default_factory=list)
    sessions: list[tuple] = field(default_factory=list)
    prompts: list[tuple] = field(default_factory=list)  # PROMPT_FIELDS


def _weekday_on_or_after(day: date) -> date:
    while day.weekday() >= 5:
        day += timedelta(days=1)
    return day


def session_rows(
    profile: Profile, rng: random.Random, *, first_day: date, last_day: date, now: datetime, created_by_id
) -> Iterator[tuple]:
    """A ketamine session every two to three weeks (weekdays), each followed by an integration
    session a day or two later; only sessions already over by `now`."""
    patient = profile.patient()
    zone = patient.zone
    day = _weekday_on_or_after(first_day + timedelta(days=rng.randint(2, 12)))
    dose = rng.choice((35, 40, 45))
    while day <= last_day:
        plan = [(SessionKind.KETAMINE, day, rng.choice((9, 13)), 120)]
        integration = _weekday_on_or_after(day + timedelta(days=rng.choice((1, 2))))
        plan.append((SessionKind.INTEGRATION, integration, rng.choice((15, 16)), 60))
        for kind, on, hour, minutes in plan:
            starts_at = local_instant(zone, on, time(hour, rng.choice((0, 0, 15, 30))))
            ends_at = starts_at + timedelta(minutes=minutes)
            if ends_at > now:
                return
            ketamine = kind == SessionKind.KETAMINE
            yield (
                _uuid(rng), profile.patient_id, kind, starts_at, patient.journal_day(starts_at)[0], minutes,
                profile.route if ketamine else None, Decimal(dose) if ketamine else None, "", created_by_id,
                ends_at, ends_at,
            )  # fmt: skip
        dose = min(70, dose + rng.choice((0, 5, 5, 10)))
        day = _weekday_on_or_after(day + timedelta(days=rng.randint(14, 21)))


def history_days(profile: Profile, rng: random.Random, *, first_day: date, count: int, ketamine_days) -> list[Day]:
    """The patient's daily levels: a slow drift from the profile's first to last values, a
    persistent day-to-day wobble, Friday/Saturday cravings, relief for two weeks after each
    ketamine session, and now and then a lapse that pushes cravings up and mood down."""
    days, wobble, after_lapse = [], 0.0, False
    for index in range(count):
        on = first_day + timedelta(days=index)
        t = index / max(count - 1, 1)
        wobble = 0.85 * wobble + rng.gauss(0, 0.7)
        relief = sum(
            profile.session_relief * (1 - (on - k).days / 15) for k in ketamine_days if 0 <= (on - k).days <= 14
        )
        craving = profile.craving_from + (profile.craving_to - profile.craving_from) * t + wobble
        craving += (0.6 if on.weekday() in (4, 5) else 0.0) - min(relief, profile.session_relief * 1.3)
        mood = profile.mood_from + (profile.mood_to - profile.mood_from) * t - 0.4 * wobble + rng.gauss(0, 0.6)
        if after_lapse:
            craving, mood = craving + 1.0, mood - 1.5
        lapse = rng.random() < profile.lapse_rate * (1 + max(0.0, craving - 5) / 3)
        if lapse:
            craving += 2.0
        mood -= 0.25 * max(0.0, craving - 5)
        anxiety = profile.anxiety + 0.3 * (craving - 5) + 0.25 * (5 - mood) + rng.gauss(0, 0.7)
        days.append(Day(on, craving, mood, anxiety, lapse))
        after_lapse = lapse
    return days


def _note(rng: random.Random, texts: Sequence[str], note_share: float, encrypt: Callable[[str], str]) -> str:
    return encrypt(rng.choice(texts)) if rng.random() < note_share else ""


def entry_rows(
    profile: Profile,
    rng: random.Random,
    days: Sequence[Day],
    *,
    entries_per_day: float,
    now: datetime,
    note_share: float = NOTE_SHARE,
) -> Iterator[tuple]:
    """About `entries_per_day` entries a day: a daily check-in (most days), craving entries (more
    on bad days), and a use entry on lapse days. change_seq numbers them 1…n in occurred_at order;
    nothing later than two minutes before `now`."""
    patient = profile.patient()
    zone = patient.zone
    encrypt = Entry._meta.get_field("note").get_prep_value  # the column only ever holds what the field writes
    check_in_chance = min(profile.engagement, entries_per_day)  # fewer than one entry a day: fewer check-ins
    cravings_per_day = max(0.0, entries_per_day - check_in_chance - profile.lapse_rate)
    latest = now - timedelta(minutes=2)
    usual = sum(day.craving for day in days) / max(len(days), 1)
    seq = 0
    for day in days:
        moments = []  # (occurred_at, content in ENTRY_FIELDS order from "kind" to "note", less the journal day)
        if rng.random() < check_in_chance:
            craving, mood = _clamp(day.craving + rng.gauss(0, 0.5)), _clamp(day.mood + rng.gauss(0, 0.5))
            anxiety = _clamp(day.anxiety + rng.gauss(0, 0.5)) if rng.random() < 0.6 else None
            sleep = None
            if rng.random() < 0.5:
                hours = 7.2 - 0.25 * (day.anxiety - 4) + rng.gauss(0, 0.8)
                sleep = Decimal(max(3.0, min(10.5, round(hours * 4) / 4))).quantize(Decimal("0.01"))
            triggers = coping = _EMPTY_LIST
            if craving >= 6 and rng.random() < 0.4:
                triggers = json.dumps(_some(rng, profile.triggers, 2, TRIGGERS))
            if craving >= 5 and rng.random() < 0.4:
                coping = json.dumps(_some(rng, profile.coping, 2, COPING))
            wall = time(max(0, min(23, profile.check_in_hour + rng.choice((-1, 0, 0, 1)))), rng.randint(0, 59))
            at = local_instant(zone, day.date, wall.replace(second=rng.randint(0, 59)))
            note = _note(rng, CHECK_IN_NOTES, note_share, encrypt)
            moments.append((at, EntryKind.CHECK_IN, craving, mood, anxiety, sleep, None, "", triggers, coping, note))
        # Worse days than usual bring more craving entries, better ones fewer: the mean stays on target.
        expected = cravings_per_day * max(0.3, min(2.0, 1 + 0.15 * (day.craving - usual)))
        count = int(expected) + (rng.random() < expected - int(expected))
        for _ in range(count):
            craving = _clamp(day.craving + 1.5 + rng.gauss(0, 1), low=1)
            triggers = json.dumps(_some(rng, profile.triggers, 2, TRIGGERS))
            coping = json.dumps(_some(rng, profile.coping, 2, COPING)) if rng.random() < 0.6 else _EMPTY_LIST
            wall = time(rng.choice(_CRAVING_HOURS), rng.randint(0, 59), rng.randint(0, 59))
            at = local_instant(zone, day.date, wall)
            note = _note(rng, CRAVING_NOTES, note_share, encrypt)
            moments.append((at, EntryKind.CRAVING, craving, None, None, None, None, "", triggers, coping, note))
        if day.lapse:
            substances = profile.substances
            substance = substances[0] if len(substances) == 1 or rng.random() < 0.75 else rng.choice(substances[1:])
            wall = time(rng.randint(18, 23), rng.randint(0, 59), rng.randint(0, 59))
            at = local_instant(zone, day.date, wall)
            amount = rng.choice(AMOUNTS[substance])
            triggers = json.dumps(_some(rng, profile.triggers, 2, TRIGGERS))
            note = _note(rng, USE_NOTES, note_share, encrypt)
            craving = _clamp(day.craving + 1.5)
            moments.append(
                (at, EntryKind.USE, craving, None, None, None, substance, amount, triggers, _EMPTY_LIST, note)
            )
        moments.sort(key=lambda moment: moment[0])
        for occurred_at, kind, craving, mood, anxiety, sleep, substance, amount, triggers, coping, note in moments:
            if occurred_at > latest:
                continue
            if rng.random() < 0.003:  # the phone was offline for a day or two: kept, marked late
                received_at = occurred_at + timedelta(hours=rng.randint(25, 60))
            else:
                received_at = occurred_at + timedelta(seconds=rng.randint(2, 240))
            received_at = min(received_at, now)
            local_date, local_hour = patient.journal_day(occurred_at)
            seq += 1
            yield (
                _uuid(rng), profile.patient_id, kind, occurred_at, local_date, local_hour, craving, mood, anxiety,
                sleep, substance, amount, triggers, coping, note, None, received_at,
                received_at - occurred_at > LATE_AFTER, 1, seq, None, received_at, received_at,
            )  # fmt: skip


def _answers(rng: random.Random, count: int, total: int, *, high: int = 3, free: int | None = None) -> list[int]:
    """`count` answers of 0…`high` adding up to `total` (as near as they can), spread over the first
    `free` items (the rest answered 0)."""
    free = count if free is None else free
    answers = [0] * count
    for _ in range(min(total, high * free)):
        answers[rng.choice([i for i in range(free) if answers[i] < high])] += 1
    return answers


def assessment_rows(profile: Profile, rng: random.Random, days: Sequence[Day], *, now: datetime) -> Iterator[tuple]:
    """A PHQ-9 and a GAD-7 every week on the patient's day, in the evening (a week now and then
    skipped), reflecting the week's mood and anxiety. PHQ-9 item 9 is always 0: see the module doc."""
    patient = profile.patient()
    zone = patient.zone
    phq9, gad7 = instrument(Instrument.PHQ9), instrument(Instrument.GAD7)
    for index in range(6, len(days)):
        day = days[index]
        if day.date.weekday() != profile.assessment_weekday or rng.random() < 0.08:
            continue
        week = days[index - 6 : index + 1]
        mood = sum(d.mood for d in week) / len(week)
        anxiety = sum(d.anxiety for d in week) / len(week)
        completed_at = local_instant(zone, day.date, time(19, rng.randint(0, 55), rng.randint(0, 59)))
        if completed_at > now - timedelta(minutes=10):
            continue
        local_date = patient.journal_day(completed_at)[0]
        for spec, total, offset in (
            (phq9, _clamp((9 - mood) * 2.4 + rng.gauss(0, 1.5), high=24), 0),
            (gad7, _clamp(anxiety * 1.6 + rng.gauss(0, 1.2), high=21), 3),
        ):
            answers = _answers(rng, spec.item_count, total, free=8 if spec is phq9 else None)
            score, severity = spec.score(answers)
            at = completed_at + timedelta(minutes=offset)
            received_at = at + timedelta(seconds=rng.randint(1, 30))
            yield (
                _uuid(rng), profile.patient_id, spec.code, json.dumps(answers), score, severity, at, local_date, None,
                received_at, False, received_at,
            )  # fmt: skip


def patient_history(
    profile: Profile,
    *,
    days: int,
    entries_per_day: float,
    now: datetime,
    seed: int,
    created_by_id=None,
    note_share: float = NOTE_SHARE,
) -> History:
    """Everything one patient logged over the last `days` journal days (ending today in their zone)."""
    rng = _rng(seed, "history", profile.number)
    today = now.astimezone(profile.patient().zone).date()
    first_day = today - timedelta(days=days - 1)
    sessions = list(
        session_rows(profile, rng, first_day=first_day, last_day=today, now=now, created_by_id=created_by_id)
    )
    ketamine_days = [row[4] for row in sessions if row[2] == SessionKind.KETAMINE]
    levels = history_days(profile, rng, first_day=first_day, count=days, ketamine_days=ketamine_days)
    entries = list(entry_rows(profile, rng, levels, entries_per_day=entries_per_day, now=now, note_share=note_share))
    assessments = list(assessment_rows(profile, rng, levels, now=now))
    prompts = list(prompt_history_rows(profile, first_day=first_day, last_day=today, now=now, seed=seed))
    return History(entries=entries, assessments=assessments, sessions=sessions, prompts=prompts)


# --- Check-in prompt history ----------------------------------------------------------------------


def history_schedule_id(profile: Profile, *, seed: int) -> uuid.UUID:
    return _uuid(_rng(seed, "history-schedule", profile.number))


def history_schedule_row(profile: Profile, *, seed: int, created_at: datetime, now: datetime, created_by_id) -> tuple:
    """The daily check-in schedule the prompt history came from: made at `created_at`, before the
    history, and turned off at `now` (SCHEDULE_FIELDS)."""
    return (
        history_schedule_id(profile, seed=seed), profile.patient_id, ScheduleKind.CHECK_IN, None, "",
        json.dumps(list(WEEKDAYS)), time(profile.check_in_hour), None, None, EXPIRES_AFTER_MINUTES_DEFAULT, False,
        created_by_id, created_at, now,
    )  # fmt: skip


def prompt_history_rows(profile: Profile, *, first_day: date, last_day: date, now: datetime, seed: int):
    """One check-in prompt a journal day at the patient's check-in hour, for the days whose prompt
    has expired by `now`: answered as often as the patient checks in (their engagement), else sent
    and expired; 3 % failed (no phone took it). Its own random stream, so the entries of a seed stay
    what they were."""
    rng = _rng(seed, "prompt-history", profile.number)
    zone = profile.patient().zone
    schedule_id = history_schedule_id(profile, seed=seed)
    expires_after = timedelta(minutes=EXPIRES_AFTER_MINUTES_DEFAULT)
    day = first_day
    while day <= last_day:
        at = local_instant(zone, day, time(profile.check_in_hour))
        if at + expires_after > now:
            return
        draw = rng.random()
        sent_at = received_at = completed_at = None
        attempts, last_error, channel = 1, "", "push"
        if draw < 0.03:
            status, attempts, last_error, channel = PromptStatus.FAILED, 3, "UNREGISTERED", ""
        else:
            sent_at = at + timedelta(seconds=rng.randint(1, 20))
            received_at = sent_at + timedelta(seconds=rng.randint(1, 30))
            if rng.random() < profile.engagement:
                status, completed_at = PromptStatus.COMPLETED, sent_at + timedelta(minutes=rng.randint(1, 100))
            else:
                status = PromptStatus.EXPIRED
        yield (
            _uuid(rng), profile.patient_id, schedule_id, None, PromptKind.CHECK_IN, None, "", day, 0, at,
            at + expires_after, status, "", at, "", None, attempts, last_error, channel, sent_at,
            received_at, completed_at, at - timedelta(days=1),
        )  # fmt: skip
        day += timedelta(days=1)


# --- Due prompts ------------------------------------------------------------------------------------


def due_prompt_rows(
    profiles: Sequence[Profile], schedule_ids: Sequence[uuid.UUID], *, count: int, due_at: datetime, seed: int
) -> Iterator[tuple]:
    """`count` scheduled prompts spread evenly over [due_at, due_at + 1 minute) and round-robin over
    `profiles` (the i-th with the i-th schedule). A patient's k-th prompt takes slot k of its
    schedule's journal day: distinct (schedule, journal day, slot) keys, whatever `count` is."""
    rng = _rng(seed, "prompts")
    expires_after = timedelta(minutes=EXPIRES_AFTER_MINUTES_DEFAULT)
    patients = [profile.patient() for profile in profiles]
    step_us = 60_000_000 / count
    for index in range(count):
        which = index % len(profiles)
        at = due_at + timedelta(microseconds=int(index * step_us))
        yield (
            _uuid(rng), profiles[which].patient_id, schedule_ids[which], None, PromptKind.CUSTOM, None,
            LOAD_REMINDER_MESSAGE, patients[which].journal_day(at)[0], index // len(profiles), at, at + expires_after,
            PromptStatus.SCHEDULED, "", at, "", None, 0, "", "", None, None, None, at - timedelta(days=1),
        )  # fmt: skip


# --- Writing ----------------------------------------------------------------------------------------


def copy_rows(model: type[models.Model], fields: Sequence[str], rows: Iterable[tuple]) -> int:
    """Streams rows (values in `fields` order, JSON already as text) into the model's table with
    COPY. Every NOT NULL column must be named: a column the model gains later fails here, loudly,
    instead of as a NULL violation halfway through a load."""
    meta = model._meta
    missing = [
        f.attname
        for f in meta.concrete_fields
        if f.attname not in fields and not f.null and not getattr(f, "db_returning", False)
    ]
    if missing:
        raise RuntimeError(f"loadgen writes {meta.label} without {missing}: teach it those columns")
    quote = connection.ops.quote_name
    columns = ", ".join(quote(meta.get_field(name).column) for name in fields)
    written = 0
    with (
        connection.cursor() as cursor,
        cursor.cursor.copy(f"COPY {quote(meta.db_table)} ({columns}) FROM STDIN") as copy,
    ):
        for row in rows:
            copy.write_row(row)
            written += 1
    return written


LOADED_MODELS = (
    User, Patient, CareTeamMembership, EnrollmentCode, ConsentAcceptance, TherapySession, Entry, Assessment,
    JournalSequence, Schedule, Device, Prompt,
)  # fmt: skip


def tables_analyze() -> None:
    """Fresh planner statistics for what was just loaded, so the first benchmark queries do not run
    on plans made for empty tables while autovacuum catches up."""
    with connection.cursor() as cursor:
        for model in LOADED_MODELS:
            cursor.execute(f"ANALYZE {connection.ops.quote_name(model._meta.db_table)}")


def clinic_delete(clinic_id) -> None:
    """Deletes a clinic and everything that hangs off it with one SQL statement per table, children
    first (an ORM cascade over a million entries would take far longer). Follows the models'
    foreign keys, so tables added later are covered: SET_NULL columns are cleared, everything else
    deleted. The access log refuses deletes (SPEC §11): a clinic someone has read from cannot be
    replaced, only dropped with its database."""
    _delete_where(Clinic, f"{connection.ops.quote_name('id')} = %s", [clinic_id], depth=0)


def _delete_where(model: type[models.Model], where: str, params: list, *, depth: int) -> None:
    if depth > 10:
        raise RuntimeError(f"clinic_delete: foreign keys nest too deep at {model._meta.label}")
    quote = connection.ops.quote_name
    table, pk = quote(model._meta.db_table), quote(model._meta.pk.column)
    rows = f"SELECT {pk} FROM {table} WHERE {where}"  # noqa: S608 - names from the models, values bound
    with connection.cursor() as cursor:
        for relation in model._meta.get_fields(include_hidden=True):  # hidden: related_name="+" counts too
            if not (relation.auto_created and not relation.concrete and (relation.one_to_many or relation.one_to_one)):
                continue  # forward fields; many-to-many ones are covered by their through model's foreign keys
            child, column = relation.related_model, quote(relation.field.column)
            child_where = f"{column} IN ({rows})"
            if relation.on_delete is models.SET_NULL:
                cursor.execute(f"UPDATE {quote(child._meta.db_table)} SET {column} = NULL WHERE {child_where}", params)  # noqa: S608
            elif child is not model or relation.on_delete is not models.CASCADE:
                _delete_where(child, child_where, params, depth=depth + 1)
        cursor.execute(f"DELETE FROM {table} WHERE {where}", params)  # noqa: S608


@dataclass
class LoadResult:
    clinic: Clinic
    patients: int = 0
    entries: int = 0
    assessments: int = 0
    sessions: int = 0
    prompt_history: int = 0  # answered, expired or failed check-in prompts, one a day of the history
    prompts: int = 0  # due ones (--prompts-due)
    notes: int = 0
    seconds: float = 0.0


def load_create(
    *,
    patients: int,
    days: int,
    entries_per_day: float = 4.0,
    seed: int = 1,
    now: datetime,
    prompts_due: int = 0,
    prompts_due_at: datetime | None = None,
    progress: Callable[[str], None] = lambda line: None,
) -> LoadResult:
    """Writes the load clinic. Call inside a transaction: a failed load leaves nothing behind."""
    started = clock.monotonic()
    rng = _rng(seed, "clinic")
    joined = now - timedelta(days=days) - JOINED_BEFORE_HISTORY
    large = clinician_create(
        email=LARGE_CLINICIAN, password=CLINICIAN_PASSWORD, clinic_name=LOAD_CLINIC, display_name="Dr. Large"
    )
    small = clinician_create(
        email=SMALL_CLINICIAN, password=CLINICIAN_PASSWORD, clinic_name=LOAD_CLINIC, display_name="Dr. Small"
    )
    admin = clinician_create(
        email=ADMIN, password=CLINICIAN_PASSWORD, clinic_name=LOAD_CLINIC, is_clinic_admin=True, display_name="Admin"
    )
    clinic = large.clinic
    consent = clinic.current_consent()
    profiles = [profile_for(number, seed=seed) for number in range(1, patients + 1)]
    result = LoadResult(clinic=clinic, patients=patients)

    # Hashed once, shared: hashing 300 passwords at full strength would take minutes.
    phone_hash = make_password(PATIENT_PASSWORD)
    copy_rows(
        User,
        ("id", "password", "last_login", "is_superuser", "email", "role", "clinic_id", "display_name",
         "is_clinic_admin", "is_staff", "is_active", "date_joined"),
        (
            (p.user_id, phone_hash if p.number <= PATIENTS_WITH_PASSWORD else make_password(None), None, False,
             p.email, Role.PATIENT, clinic.pk, "", False, False, True, joined)
            for p in profiles
        ),
    )  # fmt: skip
    copy_rows(
        Patient,
        ("id", "clinic_id", "user_id", "display_name", "timezone", "quiet_hours_start", "quiet_hours_end",
         "substances", "status", "created_by_id", "created_at", "updated_at"),
        (
            (p.patient_id, clinic.pk, p.user_id, p.display_name, p.timezone, None, None, json.dumps(p.substances),
             PatientStatus.ACTIVE, large.pk, joined, joined)
            for p in profiles
        ),
    )  # fmt: skip
    copy_rows(
        CareTeamMembership,
        ("patient_id", "clinician_id", "added_by_id", "added_at"),
        [
            *((p.patient_id, large.pk, admin.pk, joined) for p in profiles),
            *((p.patient_id, small.pk, admin.pk, joined) for p in profiles[:SMALL_CARE_TEAM]),
        ],
    )
    enrolled = joined + timedelta(days=1)
    copy_rows(
        EnrollmentCode,
        ("id", "patient_id", "code_hash", "created_by_id", "created_at", "expires_at", "used_at", "revoked_at"),
        (
            (_uuid(rng), p.patient_id, hashlib.sha256(_uuid(rng).bytes).hexdigest(), large.pk, joined,
             joined + settings.ENROLLMENT_CODE_TTL, enrolled, None)
            for p in profiles
        ),
    )  # fmt: skip
    copy_rows(
        ConsentAcceptance,
        ("patient_id", "consent_version_id", "accepted_at", "ip", "user_agent"),
        ((p.patient_id, consent.pk, enrolled, None, "generate_load") for p in profiles),
    )
    # The consent was published when the clinic was created; the patients accepted it a year ago.
    type(consent).objects.filter(pk=consent.pk).update(published_at=joined)
    progress(f"clinic, 3 clinicians and {patients} patients written")

    schedules = (
        history_schedule_row(p, seed=seed, created_at=joined, now=now, created_by_id=large.pk) for p in profiles
    )
    copy_rows(Schedule, SCHEDULE_FIELDS, schedules)
    last_seq, journal_started = {}, clock.monotonic()
    for start in range(0, patients, CHUNK_PATIENTS):
        chunk = profiles[start : start + CHUNK_PATIENTS]
        histories = [
            patient_history(p, days=days, entries_per_day=entries_per_day, now=now, seed=seed, created_by_id=large.pk)
            for p in chunk
        ]
        result.sessions += copy_rows(TherapySession, SESSION_FIELDS, (r for h in histories for r in h.sessions))
        result.entries += copy_rows(Entry, ENTRY_FIELDS, (r for h in histories for r in h.entries))
        result.assessments += copy_rows(Assessment, ASSESSMENT_FIELDS, (r for h in histories for r in h.assessments))
        result.prompt_history += copy_rows(Prompt, PROMPT_FIELDS, (r for h in histories for r in h.prompts))
        result.notes += sum(1 for h in histories for r in h.entries if r[14])
        for p, history in zip(chunk, histories, strict=True):
            last_seq[p.patient_id] = len(history.entries)
        done, elapsed = start + len(chunk), clock.monotonic() - journal_started
        rows = result.entries + result.assessments + result.sessions + result.prompt_history
        progress(
            f"patients {done}/{patients}  entries {result.entries:,}  assessments {result.assessments:,}  "
            f"sessions {result.sessions:,}  prompts {result.prompt_history:,}  {rows / elapsed:,.0f} rows/s"
        )
    copy_rows(JournalSequence, ("patient_id", "last_seq"), last_seq.items())
    rollup_started = clock.monotonic()
    rollups = rollups_rebuild(patient_ids=last_seq)
    progress(f"{rollups:,} daily rollups in {clock.monotonic() - rollup_started:.1f} s")

    if prompts_due:
        result.prompts = _due_prompts_create(
            profiles[:prompts_due], count=prompts_due, due_at=prompts_due_at, created_by=large, seed=seed, now=now
        )
        progress(f"{result.prompts:,} prompts due from {prompts_due_at.isoformat()}, one device per patient")
    result.seconds = clock.monotonic() - started
    return result


def _due_prompts_create(
    profiles: Sequence[Profile], *, count: int, due_at: datetime, created_by: User, seed: int, now: datetime
) -> int:
    """One custom schedule per patient, due on the weekday of the minute (so the planner, which
    finds slot 0 of that day already planned and no other due day within its horizon, adds
    nothing), one active phone each, and the prompts."""
    rng = _rng(seed, "schedules")
    schedule_ids = [_uuid(rng) for _ in profiles]
    schedules = []
    for profile, schedule_id in zip(profiles, schedule_ids, strict=True):
        local = due_at.astimezone(profile.patient().zone)
        schedules.append(
            (schedule_id, profile.patient_id, ScheduleKind.CUSTOM, None, LOAD_REMINDER_MESSAGE,
             json.dumps([WEEKDAYS[local.weekday()]]), time(local.hour, local.minute), None, None,
             EXPIRES_AFTER_MINUTES_DEFAULT, True, created_by.pk, now, now)
        )  # fmt: skip
    copy_rows(Schedule, SCHEDULE_FIELDS, schedules)
    copy_rows(
        Device,
        ("id", "user_id", "platform", "token", "active", "deactivated_reason", "created_at", "updated_at"),
        (
            (_uuid(rng), p.user_id, Platform.ANDROID if p.number % 3 else Platform.IOS,
             f"load-fcm-token-{p.number:05d}", True, "", now, now)
            for p in profiles
        ),
    )  # fmt: skip
    return copy_rows(
        Prompt, PROMPT_FIELDS, due_prompt_rows(profiles, schedule_ids, count=count, due_at=due_at, seed=seed)
    )


def due_at_parse(value: str) -> datetime:
    """An ISO 8601 instant with an offset (a naive one would mean a different minute in every zone)."""
    moment = datetime.fromisoformat(value)
    if moment.tzinfo is None:
        raise ValueError("give the instant with an offset, e.g. 2026-03-01T12:00:00+00:00")
    return moment.astimezone(UTC)
