"""The demo patients' last four months (seed_demo): journal entries, weekly questionnaires and
therapy sessions, each patient a different story told in data.

`make run` seeds on first start on SQLite, so everything is built in memory and written with one
bulk insert per table; rows get their server fields (journal day, received time, lateness, change
sequence) the way the entry services would have set them. The same seed and the same day give the
same clinic.
"""

import random
import uuid
from dataclasses import dataclass
from datetime import UTC, date, datetime, time, timedelta
from decimal import Decimal

from django.db.models import F

from accounts.models import Patient, User
from journal.instruments import instrument
from journal.models import (
    TRIGGERS,
    Assessment,
    Entry,
    EntryKind,
    EntryRevision,
    Instrument,
    JournalSequence,
    KetamineRoute,
    SessionKind,
    TherapySession,
)
from journal.services.entries import CLIENT_FIELDS, LATE_AFTER, canonical
from journal.services.rollups import rollups_rebuild

HISTORY_DAYS = 120
CREATED_DAYS_AGO = 125  # the patient joined a few days before their first entry
KETAMINE_RELIEF_DAYS = 14


@dataclass(frozen=True)
class Story:
    """How one patient's months went. Levels are 0–10 scales; `_from`/`_to` are the first and last day's."""

    summary: str
    treatment: str  # SessionKind.KETAMINE (with integration sessions) or SessionKind.PSYCHOTHERAPY
    craving_from: float
    craving_to: float
    mood_from: float
    mood_to: float
    anxiety: float
    triggers: tuple[str, ...]
    coping: tuple[str, ...]
    engagement: float = 0.95  # the chance of a daily check-in
    check_in_hour: int = 21
    session_relief: float = 2.0  # how far cravings ebb right after a ketamine session
    route: str = KetamineRoute.IM
    lapses: int = 0
    lapse_window: tuple[float, float] = (0.15, 0.85)  # where in the months the lapses fall
    relapse_days: int = 0  # the last N days: high cravings and a cluster of use
    low_mood_days: int = 0  # the last N days: mood sinking
    self_harm_weeks: int = 0  # the last N PHQ-9s answer item 9 with "several days"
    quiet_days: int = 0  # the last N days: nothing logged
    stopped_days_ago: int = 0  # paused or discharged N days ago: logging and sessions end there
    offline_days: int = 0  # one stretch with the phone offline: entries arrive late, together
    last_session_note: str = ""  # a closing session on the last day in care (discharge)


IMPROVING_WITH_KETAMINE = Story(
    summary="Improving steadily: cravings drop after each ketamine session and stay lower.",
    treatment=SessionKind.KETAMINE,
    craving_from=7.5,
    craving_to=2.0,
    mood_from=4.0,
    mood_to=7.5,
    anxiety=5.0,
    triggers=("stress", "social_pressure", "celebration", "cue_exposure"),
    coping=("reached_out", "exercise", "therapy_skill", "delay"),
    session_relief=2.8,
    lapses=2,
    lapse_window=(0.08, 0.35),
)
RELAPSING = Story(
    summary="Doing well for months, then a relapse: high cravings and several use days in the last ten.",
    treatment=SessionKind.PSYCHOTHERAPY,
    craving_from=5.0,
    craving_to=3.5,
    mood_from=6.0,
    mood_to=5.5,
    anxiety=4.5,
    triggers=("social_pressure", "celebration", "cue_exposure", "conflict"),
    coping=("distraction", "reached_out", "support_meeting"),
    check_in_hour=22,
    lapses=1,
    relapse_days=10,
)
GONE_QUIET = Story(
    summary="Logged daily, then went quiet: nothing in the last six days.",
    treatment=SessionKind.KETAMINE,
    craving_from=6.0,
    craving_to=4.5,
    mood_from=5.0,
    mood_to=4.5,
    anxiety=5.0,
    triggers=("boredom", "loneliness", "stress"),
    coping=("distraction", "delay"),
    route=KetamineRoute.INTRANASAL,
    lapses=2,
    quiet_days=6,
)
WORSENING_MOOD = Story(
    summary="Cravings steady, but mood sinking over the last two weeks.",
    treatment=SessionKind.PSYCHOTHERAPY,
    craving_from=5.0,
    craving_to=4.5,
    mood_from=6.0,
    mood_to=5.0,
    anxiety=5.5,
    triggers=("negative_mood", "loneliness", "fatigue", "stress"),
    coping=("mindfulness", "distraction"),
    lapses=1,
    low_mood_days=14,
)
THOUGHTS_OF_SELF_HARM = Story(
    summary="Moderate depression; the last two PHQ-9s answer item 9 (thoughts of self-harm).",
    treatment=SessionKind.KETAMINE,
    craving_from=6.0,
    craving_to=4.0,
    mood_from=4.5,
    mood_to=3.5,
    anxiety=6.0,
    triggers=("physical_pain", "negative_mood", "stress", "fatigue"),
    coping=("medication", "reached_out", "support_meeting"),
    check_in_hour=22,
    lapses=2,
    self_harm_weeks=2,
)
STEADY_MORNINGS = Story(
    summary="Steady and engaged, checks in over breakfast; one weekend offline.",
    treatment=SessionKind.PSYCHOTHERAPY,
    craving_from=4.0,
    craving_to=3.0,
    mood_from=6.0,
    mood_to=6.5,
    anxiety=4.0,
    triggers=("stress", "boredom", "social_pressure"),
    coping=("exercise", "mindfulness", "support_meeting"),
    check_in_hour=8,
    lapses=1,
    offline_days=3,
)
STEADY_WITH_KETAMINE = Story(
    summary="Steady progress with ketamine, two lapses along the way; one weekend offline.",
    treatment=SessionKind.KETAMINE,
    craving_from=5.5,
    craving_to=3.5,
    mood_from=5.5,
    mood_to=6.5,
    anxiety=4.5,
    triggers=("fatigue", "stress", "cue_exposure"),
    coping=("exercise", "delay", "therapy_skill"),
    route=KetamineRoute.INTRANASAL,
    lapses=2,
    offline_days=3,
)
EARLY_LAPSES_THEN_STABLE = Story(
    summary="Several lapses in the first weeks, then stable and improving.",
    treatment=SessionKind.PSYCHOTHERAPY,
    craving_from=6.5,
    craving_to=2.5,
    mood_from=5.0,
    mood_to=7.0,
    anxiety=4.0,
    triggers=("loneliness", "celebration", "stress"),
    coping=("support_meeting", "reached_out", "exercise"),
    check_in_hour=20,
    lapses=4,
    lapse_window=(0.05, 0.3),
)
PAUSED = Story(
    summary="Ketamine series interrupted: care paused 24 days ago, no entries since.",
    treatment=SessionKind.KETAMINE,
    craving_from=6.0,
    craving_to=4.5,
    mood_from=5.0,
    mood_to=5.5,
    anxiety=5.0,
    triggers=("stress", "social_pressure", "cue_exposure"),
    coping=("delay", "distraction"),
    lapses=1,
    stopped_days_ago=24,
)
ANXIOUS_TAPER = Story(
    summary="Sedative taper: higher anxiety, cravings slowly easing, weekly therapy.",
    treatment=SessionKind.PSYCHOTHERAPY,
    craving_from=4.5,
    craving_to=3.0,
    mood_from=5.5,
    mood_to=6.0,
    anxiety=6.5,
    triggers=("stress", "negative_mood", "fatigue"),
    coping=("mindfulness", "medication", "therapy_skill"),
    check_in_hour=21,
    engagement=0.93,
)
DISCHARGED = Story(
    summary="Completed the ketamine series and was discharged 18 days ago, cravings low.",
    treatment=SessionKind.KETAMINE,
    craving_from=6.5,
    craving_to=1.5,
    mood_from=4.5,
    mood_to=7.5,
    anxiety=4.0,
    triggers=("stress", "celebration"),
    coping=("exercise", "support_meeting", "therapy_skill"),
    session_relief=2.5,
    lapses=1,
    lapse_window=(0.1, 0.3),
    stopped_days_ago=18,
    last_session_note=(
        "Discharge session: series and integration completed; relapse-prevention plan reviewed; "
        "referred to a community support group; may re-contact the clinic at any time."
    ),
)

CHECK_IN_NOTES = (
    "Long day at work, but I got through it.",
    "Walked after dinner. Helped more than I expected.",
    "Slept badly, mind racing about money.",
    "Good day. Cooked a proper meal for once.",
    "Called my sister, we talked for an hour.",
    "Tired and a bit flat, nothing specific.",
    "Went to a meeting tonight.",
    "Busy all day, barely had time to think about it.",
    "Restless in the afternoon, better by the evening.",
    "Quiet weekend. Read and watched a film.",
    "Argument with my partner, we sorted it out later.",
    "Back pain again, hard to sit still.",
)
AFTER_KETAMINE_NOTES = (
    "Day after the session. Calmer, a bit foggy this morning.",
    "Still thinking about what came up in yesterday's session.",
    "The urge feels further away today.",
    "Tired after the session, but lighter somehow.",
)
LOW_MOOD_NOTES = (
    "Hard to get out of bed today.",
    "Everything feels heavy this week.",
    "Didn't want to see anyone.",
    "Not sleeping well, no energy.",
)
CRAVING_NOTES = (
    "Drove past the old place on the way home.",
    "Payday. That used to be the trigger.",
    "Friends asked me out after work. Said I'd only come for dinner.",
    "Hit hard after a difficult phone call.",
    "Bored on the couch and the thought just showed up.",
    "Used the urge-surfing exercise, it passed in about 20 minutes.",
    "Texted my sponsor, felt better after.",
    "Stressful meeting, wanted to take the edge off.",
    "Saw an ad and it brought it all back.",
    "Couldn't sleep, the craving kept me up.",
)
USE_NOTES = (
    "Slipped after the party. Not proud, but logging it.",
    "Didn't plan it. Will bring it up next session.",
    "Bad news at work and I went straight back to old habits.",
    "Only a little, stopped myself early.",
    "Weekend with old friends. Hard to say no.",
    "Felt awful the next morning. Back on track today.",
)
RELAPSE_NOTES = (
    "Another rough night. I know I need to talk about this.",
    "Things are slipping. Going to call the clinic on Monday.",
    "Can't seem to stop this week.",
)
ADDED_IN_AN_EDIT = (
    "Adding: it passed after about half an hour.",
    "Forgot to say, I went for a run afterwards.",
    "Edit: it was after the family dinner.",
)
AMOUNTS = {
    "alcohol": ("2 drinks", "3 drinks", "4 beers", "half a bottle of wine", "a few drinks"),
    "cocaine": ("a small amount", "about half a gram", "a couple of lines"),
    "opioids": ("one pill", "two pills"),
    "stimulants": ("one pill", "a small amount"),
    "cannabis": ("one joint", "a few hits"),
    "nicotine": ("3 cigarettes", "half a pack", "a few cigarettes"),
    "sedatives": ("one extra tablet", "2 tablets"),
    "other": ("a small amount",),
}
SESSION_NOTES = {
    SessionKind.KETAMINE: (
        "Tolerated well. BP peaked 138/86, back to baseline within 40 min. Calm at discharge, escorted home.",
        "Mild nausea at 20 min, settled without medication. Reports a sense of distance from the urge.",
        "Moderate, pleasant dissociation. Wants to focus integration on family themes.",
        "Anxious before dosing; grounding helped. No adverse events.",
    ),
    SessionKind.INTEGRATION: (
        "Reviewed imagery from the dosing session and linked it to values around family.",
        "Built an urge plan for Friday evenings; practised urge surfing.",
        "Reports cravings quieter since the session; encouraged daily check-ins.",
        "Explored shame after the last lapse; reframed it as information, not failure.",
    ),
    SessionKind.PSYCHOTHERAPY: (
        "CBT: mapped the evening routine that precedes use and planned alternatives.",
        "Reviewed the journal together; cravings cluster after work stress.",
        "Motivational interviewing: ambivalence about seeing old friends.",
        "Relapse-prevention plan updated; added two support contacts.",
        "Sleep hygiene discussed; agreed on a fixed wake time.",
    ),
}
INTAKE_NOTE = "Intake: history and vitals reviewed, no contraindications to ketamine. Series and consent discussed."


def demo_histories_create(*, histories: list[tuple[Patient, Story]], clinician: User, now: datetime, seed: str) -> int:
    """Writes every patient's history; returns the number of entries. Moves the patients'
    `created_at` (and their accounts' `date_joined`) back so their entries fall inside the window
    the API accepts."""
    joined = now - timedelta(days=CREATED_DAYS_AGO)
    patients = Patient.objects.filter(pk__in=[patient.pk for patient, _ in histories])
    patients.update(created_at=joined)
    # Enrolled when they joined, too: beat's disengagement check counts silence from enrolment.
    User.objects.filter(pk__in=patients.values("user_id")).update(date_joined=joined)
    entries, revisions, assessments, sessions, sequences = [], [], [], [], []
    for patient, story in histories:
        patient.created_at = joined
        rng = random.Random(f"{seed}:{patient.display_name}")
        history = _History(patient=patient, story=story, clinician=clinician, rng=rng, now=now)
        entries += history.entries
        revisions += history.revisions
        assessments += history.assessments
        sessions += history.sessions
        sequences.append(JournalSequence(patient=patient, last_seq=len(history.entries)))
    Entry.objects.bulk_create(entries)
    EntryRevision.objects.bulk_create(revisions)
    Assessment.objects.bulk_create(assessments)
    TherapySession.objects.bulk_create(sessions)
    JournalSequence.objects.bulk_create(sequences)
    rollups_rebuild(patient_ids=[patient.pk for patient, _ in histories])
    # Entered when they happened, not when the demo was seeded (auto_now_add fills in "now" on insert).
    Assessment.objects.filter(pk__in=[a.pk for a in assessments]).update(created_at=F("received_at"))
    TherapySession.objects.filter(pk__in=[s.pk for s in sessions]).update(
        created_at=F("starts_at"), updated_at=F("starts_at")
    )
    return len(entries)


def _clamp(value: float, low: int = 0, high: int = 10) -> int:
    return max(low, min(high, round(value)))


def _lerp(start: float, end: float, t: float) -> float:
    return start + (end - start) * t


@dataclass
class _Day:
    index: int
    date: date
    craving: float
    mood: float
    anxiety: float
    after_ketamine: bool


class _History:
    """One patient's months, built in memory: sessions first (cravings ebb after them), then the
    daily levels, then the entries, edits, tombstones and questionnaires that tell them."""

    def __init__(self, *, patient: Patient, story: Story, clinician: User, rng: random.Random, now: datetime):
        self.patient, self.story, self.clinician, self.rng, self.now = patient, story, clinician, rng, now
        self.zone = patient.zone
        self.first_day = now.astimezone(self.zone).date() - timedelta(days=HISTORY_DAYS - 1)
        self.last_logged = HISTORY_DAYS - 1 - max(story.quiet_days, story.stopped_days_ago)
        self.entries: list[Entry] = []
        self.revisions: list[EntryRevision] = []
        self.assessments: list[Assessment] = []
        self.sessions: list[TherapySession] = []
        self.ketamine_days: list[int] = []
        self.therapy_days: list[int] = []
        self.offline: set[int] = set()
        if story.offline_days:
            start = rng.randint(30, 90)
            self.offline = set(range(start, start + story.offline_days))
        self._plan_sessions()
        self.lapse_days = self._lapse_days()
        self.days = self._days()
        self._write_entries()
        self._edit_and_delete_a_few()
        self._number_changes()
        self._write_assessments()

    # --- helpers ---------------------------------------------------------------------------------

    def _id(self) -> uuid.UUID:
        return uuid.UUID(int=self.rng.getrandbits(128), version=4)

    def _at(self, day: date, hour: int, minute: int) -> datetime:
        return datetime.combine(day, time(hour, minute), tzinfo=self.zone).astimezone(UTC)

    def _some(self, words: tuple[str, ...], most: int) -> list[str]:
        return self.rng.sample(words, self.rng.randint(1, min(most, len(words))))

    # --- sessions --------------------------------------------------------------------------------

    def _session(self, kind: str, index: int, hour: int, minutes: int, **extra) -> bool:
        """Adds a past session on this day; False when it would start in the future."""
        day = self.first_day + timedelta(days=index)
        starts_at = self._at(day, hour, self.rng.choice((0, 0, 30)))
        if starts_at >= self.now:
            return False
        notes = extra.pop("notes", None)
        if notes is None and self.rng.random() < 0.6:
            notes = self.rng.choice(SESSION_NOTES[kind])
        self.sessions.append(
            TherapySession(
                id=self._id(),
                patient=self.patient,
                kind=kind,
                starts_at=starts_at,
                local_date=self.patient.journal_day(starts_at)[0],
                duration_minutes=minutes,
                notes=notes or "",
                created_by=self.clinician,
                **extra,
            )
        )
        return True

    def _weekday(self, index: int) -> int:
        """The next weekday on or after this day (the clinic doses on weekdays)."""
        while (self.first_day + timedelta(days=index)).weekday() >= 5:
            index += 1
        return index

    def _plan_sessions(self) -> None:
        rng, story = self.rng, self.story
        last = self.last_logged if story.quiet_days or story.stopped_days_ago else HISTORY_DAYS - 1
        if story.treatment == SessionKind.KETAMINE:
            self._session(SessionKind.MEDICAL, self._weekday(3), 11, 45, notes=INTAKE_NOTE)
            index, dose = self._weekday(rng.randint(8, 12)), rng.choice((35, 40))
            while index <= last:
                dosing = {"route": story.route, "dose_mg": Decimal(dose)}
                if self._session(SessionKind.KETAMINE, index, rng.choice((9, 13)), 120, **dosing):
                    self.ketamine_days.append(index)
                integration = self._weekday(index + rng.choice((1, 2)))
                if integration <= last:
                    self._session(SessionKind.INTEGRATION, integration, rng.choice((15, 16)), 60)
                dose = min(70, dose + rng.choice((5, 5, 10)))
                index = self._weekday(index + rng.randint(14, 21))
        else:
            index, hour = self._weekday(rng.randint(2, 6)), rng.randint(9, 16)
            while index <= last:
                # Now and then a session is cancelled.
                if rng.random() > 0.06 and self._session(SessionKind.PSYCHOTHERAPY, index, hour, 50):
                    self.therapy_days.append(index)
                index += 7
        if story.last_session_note:
            closing = self.last_logged
            while (self.first_day + timedelta(days=closing)).weekday() >= 5:
                closing -= 1
            self._session(SessionKind.PSYCHOTHERAPY, closing, 11, 50, notes=story.last_session_note)

    # --- the days --------------------------------------------------------------------------------

    def _relief(self, index: int) -> float:
        """Cravings ebb for about two weeks after a ketamine session, a little after therapy."""
        relief = sum(
            self.story.session_relief * (1 - (index - day) / (KETAMINE_RELIEF_DAYS + 1))
            for day in self.ketamine_days
            if 0 <= index - day <= KETAMINE_RELIEF_DAYS
        )
        relief += sum(0.6 for day in self.therapy_days if 0 <= index - day <= 2)
        return min(relief, self.story.session_relief * 1.3)

    def _lapse_days(self) -> set[int]:
        story = self.story
        low, high = (round(share * self.last_logged) for share in story.lapse_window)
        days = set(self.rng.sample(range(low, max(high, low + story.lapses)), story.lapses))
        if story.relapse_days:
            days |= {HISTORY_DAYS - 1 - ago for ago in self.rng.sample(range(1, story.relapse_days), 5)}
        return days

    def _days(self) -> list[_Day]:
        rng, story = self.rng, self.story
        days = []
        for index in range(HISTORY_DAYS):
            day = self.first_day + timedelta(days=index)
            days_ago, t = HISTORY_DAYS - 1 - index, index / (HISTORY_DAYS - 1)
            relief = self._relief(index)
            craving = _lerp(story.craving_from, story.craving_to, t) - relief + rng.gauss(0, 0.8)
            craving += 0.7 if day.weekday() in (4, 5) else 0  # Friday and Saturday evenings
            mood = _lerp(story.mood_from, story.mood_to, t) + 0.3 * relief + rng.gauss(0, 0.7)
            if index in self.lapse_days:
                craving += 2.5
            if index - 1 in self.lapse_days:
                craving, mood = craving + 1, mood - 1.5
            if days_ago < story.relapse_days:
                ramp = (story.relapse_days - days_ago) / story.relapse_days
                craving, mood = craving + 2 + 2.5 * ramp, mood - 0.5 - 1.5 * ramp
            if days_ago < story.low_mood_days:
                mood -= 1 + 3 * (story.low_mood_days - days_ago) / story.low_mood_days
            mood -= 0.25 * max(0.0, craving - 5)
            anxiety = story.anxiety + 0.3 * (craving - 5) + 0.25 * (5 - mood) + rng.gauss(0, 0.8)
            after_ketamine = index - 1 in self.ketamine_days
            days.append(_Day(index, day, craving, mood, anxiety, after_ketamine))
        return days

    # --- entries ---------------------------------------------------------------------------------

    def _entry(self, day: _Day, hour: int, minute: int, **content) -> None:
        occurred_at = self._at(day.date, hour, minute)
        if occurred_at > self.now - timedelta(minutes=2):
            return
        received_at = occurred_at + timedelta(seconds=self.rng.randint(2, 240))
        if day.index in self.offline:
            # The phone was offline: everything logged in the stretch synced the next morning.
            received_at = self._at(self.first_day + timedelta(days=max(self.offline) + 1), 8, 40)
        elif self.rng.random() < 0.004:
            received_at = occurred_at + timedelta(hours=self.rng.randint(25, 60))
        received_at = min(received_at, self.now)
        local_date, local_hour = self.patient.journal_day(occurred_at)
        content.setdefault("note", "")
        self.entries.append(
            Entry(
                id=self._id(),
                patient=self.patient,
                occurred_at=occurred_at,
                local_date=local_date,
                local_hour=local_hour,
                received_at=received_at,
                late=received_at - occurred_at > LATE_AFTER,
                created_at=received_at,
                updated_at=received_at,
                change_seq=0,  # numbered once every change is known
                **content,
            )
        )

    def _write_entries(self) -> None:
        rng, story = self.rng, self.story
        for day in self.days[: self.last_logged + 1]:
            if rng.random() < story.engagement:
                self._check_in(day)
            chance = max(0.1, min(0.9, (day.craving - 1.5) / 6))  # cravings hit more often on bad days
            for _ in range(sum(rng.random() < chance for _ in range(4))):
                self._craving(day)
            if day.index in self.lapse_days:
                for _ in range(2 if story.relapse_days and rng.random() < 0.3 else 1):
                    self._use(day)

    def _check_in(self, day: _Day) -> None:
        rng, story = self.rng, self.story
        craving, mood = _clamp(day.craving + rng.gauss(0, 0.5)), _clamp(day.mood + rng.gauss(0, 0.5))
        content = {"kind": EntryKind.CHECK_IN, "craving": craving, "mood": mood}
        if rng.random() < 0.8:
            content["anxiety"] = _clamp(day.anxiety + rng.gauss(0, 0.5))
        if rng.random() < 0.75:
            sleep = 7.2 - 0.25 * (day.anxiety - 4) + rng.gauss(0, 0.8)
            content["sleep_hours"] = Decimal(str(max(3.0, min(10.5, round(sleep * 4) / 4))))
        if craving >= 6 and rng.random() < 0.5:
            content["triggers"] = self._some(story.triggers, 2)
        if craving >= 5 and rng.random() < 0.5:
            content["coping"] = self._some(story.coping, 2)
        if day.after_ketamine and rng.random() < 0.6:
            content["note"] = rng.choice(AFTER_KETAMINE_NOTES)
        elif mood <= 3 and rng.random() < 0.5:
            content["note"] = rng.choice(LOW_MOOD_NOTES)
        elif rng.random() < 0.18:
            content["note"] = rng.choice(CHECK_IN_NOTES)
        hour = story.check_in_hour + rng.choice((-1, 0, 0, 0, 1))
        self._entry(day, hour, rng.randint(0, 59), **content)

    def _craving(self, day: _Day) -> None:
        rng, story = self.rng, self.story
        content = {
            "kind": EntryKind.CRAVING,
            "craving": _clamp(day.craving + 1.5 + rng.gauss(0, 1), low=1),
            "triggers": self._some(story.triggers, 2),
        }
        if rng.random() < 0.15:
            content["triggers"] = sorted({*content["triggers"], rng.choice(TRIGGERS)}, key=TRIGGERS.index)
        if rng.random() < 0.65:
            content["coping"] = self._some(story.coping, 2)
        if rng.random() < 0.2:
            content["note"] = rng.choice(CRAVING_NOTES)
        hour = rng.choice((11, 13, 15, 16, 17, 17, 18, 18, 19, 20, 21, 22))
        self._entry(day, hour, rng.randint(0, 59), **content)

    def _use(self, day: _Day) -> None:
        rng, story = self.rng, self.story
        substances = self.patient.substances
        substance = substances[0] if len(substances) == 1 or rng.random() < 0.75 else rng.choice(substances[1:])
        relapsing = HISTORY_DAYS - 1 - day.index < story.relapse_days
        content = {
            "kind": EntryKind.USE,
            "substance": substance,
            "amount": rng.choice(AMOUNTS[substance]),
            "craving": _clamp(day.craving + 1),
            "triggers": self._some(story.triggers, 2),
        }
        if rng.random() < 0.3:
            content["coping"] = ["reached_out"]
        if rng.random() < 0.6:
            content["note"] = rng.choice(RELAPSE_NOTES if relapsing else USE_NOTES)
        self._entry(day, rng.randint(18, 23), rng.randint(0, 59), **content)

    def _edit_and_delete_a_few(self) -> None:
        """A couple of entries edited once (version 2, the old content kept as a revision) and now
        and then a double-tapped duplicate deleted right after it was logged (a tombstone)."""
        rng = self.rng
        settled = self.now - timedelta(days=3)
        candidates = [e for e in self.entries if e.kind != EntryKind.USE and not e.late and e.occurred_at < settled]
        if not candidates:
            return
        picked = rng.sample(candidates, min(len(candidates), rng.randint(1, 3)))
        for entry in picked[:-1]:
            before = {name: getattr(entry, name) for name in CLIENT_FIELDS}
            if entry.note:
                entry.note = f"{entry.note} {rng.choice(ADDED_IN_AN_EDIT)}"
            else:  # a mis-tap on the slider, corrected
                entry.craving = entry.craving + 2 if entry.craving <= 5 else entry.craving - 2
            edited_at = entry.received_at + timedelta(minutes=rng.randint(10, 300))
            content = canonical(before)
            note = content.pop("note")
            self.revisions.append(
                EntryRevision(entry=entry, version=1, content=content, note=note, replaced_at=edited_at)
            )
            entry.version, entry.updated_at = 2, edited_at
        if rng.random() < 0.6:
            original = picked[-1]
            duplicate = Entry(**{f.attname: getattr(original, f.attname) for f in Entry._meta.concrete_fields})
            duplicate.id = self._id()
            duplicate.occurred_at += timedelta(seconds=rng.randint(20, 90))
            duplicate.local_date, duplicate.local_hour = self.patient.journal_day(duplicate.occurred_at)
            duplicate.received_at += timedelta(seconds=rng.randint(30, 120))
            duplicate.created_at = duplicate.received_at
            duplicate.deleted_at = duplicate.updated_at = duplicate.received_at + timedelta(minutes=rng.randint(1, 30))
            duplicate.version = 2  # a delete bumps the version
            self.entries.append(duplicate)

    def _number_changes(self) -> None:
        """change_seq in the order the server saw the changes (an edit or delete renumbers)."""
        self.entries.sort(key=lambda e: (e.updated_at, e.occurred_at))
        for seq, entry in enumerate(self.entries, start=1):
            entry.change_seq = seq

    # --- questionnaires --------------------------------------------------------------------------

    def _answers(self, count: int, total: int, high: int, last_item: int | None = None) -> list[int]:
        """`count` answers of 0..`high` adding up to `total` (as near as they can); `last_item` pins
        the last one (PHQ-9 item 9, thoughts of self-harm, is never left to chance)."""
        answers = [0] * count
        free = list(range(count - 1 if last_item is not None else count))
        if last_item is not None:
            answers[-1] = last_item
            total -= last_item
        total = min(total, high * len(free))
        for _ in range(total):
            index = self.rng.choice([i for i in free if answers[i] < high])
            answers[index] += 1
        return answers

    def _assessment(self, code: str, completed_at: datetime, answers: list[int]) -> None:
        score, severity = instrument(code).score(answers)
        self.assessments.append(
            Assessment(
                id=self._id(),
                patient=self.patient,
                instrument=code,
                answers=answers,
                score=score,
                severity=severity,
                completed_at=completed_at,
                local_date=self.patient.journal_day(completed_at)[0],
                received_at=completed_at,
                late=False,
            )
        )

    def _write_assessments(self) -> None:
        """PHQ-9 and GAD-7 every Sunday evening, PACS every other week for alcohol."""
        rng, story = self.rng, self.story
        sundays = [d for d in self.days[7 : self.last_logged + 1] if d.date.weekday() == 6]
        sundays = [d for d in sundays if self._at(d.date, 20, 0) <= self.now]
        recent = {d.index for d in sundays[len(sundays) - story.self_harm_weeks :]} if story.self_harm_weeks else set()
        for week, sunday in enumerate(sundays):
            if sunday.index not in recent and rng.random() < 0.07:
                continue  # skipped this week
            past = self.days[sunday.index - 6 : sunday.index + 1]
            mood = sum(d.mood for d in past) / len(past)
            anxiety = sum(d.anxiety for d in past) / len(past)
            craving = sum(d.craving for d in past) / len(past)
            completed_at = self._at(sunday.date, rng.choice((18, 19)), rng.randint(0, 59))
            phq9 = _clamp((9 - mood) * 2.4 + rng.gauss(0, 1.5), high=27)
            self._assessment(
                Instrument.PHQ9, completed_at, self._answers(9, phq9, 3, 1 if sunday.index in recent else 0)
            )
            gad7 = _clamp(anxiety * 1.6 + rng.gauss(0, 1.2), high=21)
            self._assessment(Instrument.GAD7, completed_at + timedelta(minutes=3), self._answers(7, gad7, 3))
            if "alcohol" in self.patient.substances and week % 2 == 0:
                pacs = [_clamp(craving * 0.6 + rng.gauss(0, 0.7), high=6) for _ in range(5)]
                self._assessment(Instrument.PACS, completed_at + timedelta(minutes=5), pacs)
