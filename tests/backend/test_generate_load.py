from collections import Counter
from datetime import timedelta
from io import StringIO

import pytest
from django.core.management import CommandError, call_command
from django.db import connection
from django.db.models import Count, Max
from django.utils import timezone
from rest_framework.test import APIClient

from accounts.models import AccessLog, Clinic, Patient, User
from accounts.selectors import patients_managed_by, patients_visible_to
from backend import loadgen
from backend.demo_histories import CHECK_IN_NOTES, CRAVING_NOTES, USE_NOTES
from backend.encryption import decrypt
from journal.instruments import instrument
from journal.models import Assessment, Entry, JournalSequence, SessionKind, TherapySession
from reminders.models import Device, Prompt, PromptStatus, Schedule, ScheduleKind
from reminders.selectors.compliance import compliance_of
from reminders.services.delivery import prompts_claimable, prompts_sweep
from reminders.services.schedules import prompts_plan_all
from tests.conftest import sign_in

pytestmark = pytest.mark.django_db

PATIENTS, DAYS, PROMPTS = 5, 30, 50


def _generate(*args: str) -> str:
    out = StringIO()
    call_command("generate_load", *args, stdout=out)
    return out.getvalue()


@pytest.fixture
def due_at():
    return timezone.now().replace(second=0, microsecond=0) + timedelta(hours=1)


@pytest.fixture
def load(due_at) -> str:
    return _generate(
        "--patients", str(PATIENTS), "--days", str(DAYS), "--prompts-due", str(PROMPTS),
        "--prompts-due-at", due_at.isoformat(),
    )  # fmt: skip


def test_it_writes_about_the_asked_entries_per_journal_day_and_none_in_the_future(load):
    now = timezone.now()
    assert Patient.objects.filter(clinic__name=loadgen.LOAD_CLINIC).count() == PATIENTS
    full_days = 0
    for patient in Patient.objects.all():
        today = now.astimezone(patient.zone).date()
        full_days += Entry.objects.filter(patient=patient, local_date__lt=today).count()
    per_day = full_days / (PATIENTS * (DAYS - 1))
    assert 3.0 <= per_day <= 5.0
    kinds = Counter(Entry.objects.values_list("kind", flat=True))
    assert kinds["check_in"] > 0.7 * PATIENTS * (DAYS - 1) and kinds["craving"] > kinds["check_in"]
    assert not Entry.objects.filter(occurred_at__gt=now).exists()
    assert not Entry.objects.filter(received_at__gt=now).exists()
    assert "patients 5/5" in load and "rows/s" in load


def test_each_entry_has_the_journal_day_and_hour_the_app_computes(load):
    entries = Entry.objects.select_related("patient")
    assert entries.count() > 0
    assert {e.patient.timezone for e in entries} == set(loadgen.ZONES)
    for entry in entries:
        assert (entry.local_date, entry.local_hour) == entry.patient.journal_day(entry.occurred_at)
        assert entry.version == 1 and entry.created_at == entry.updated_at == entry.received_at
        assert entry.late == (entry.received_at - entry.occurred_at > timedelta(hours=24))


def test_the_journal_sequence_numbers_entries_in_occurred_at_order(load):
    sequences = dict(JournalSequence.objects.values_list("patient_id", "last_seq"))
    stats = Entry.objects.values("patient_id").annotate(n=Count("id"), top=Max("change_seq"))
    assert len(stats) == PATIENTS
    for row in stats:
        assert sequences[row["patient_id"]] == row["n"] == row["top"]
        in_order = Entry.objects.filter(patient_id=row["patient_id"]).order_by("occurred_at", "change_seq")
        assert list(in_order.values_list("change_seq", flat=True)) == list(range(1, row["n"] + 1))


def test_notes_are_rare_and_stored_encrypted(load):
    with connection.cursor() as cursor:
        cursor.execute("SELECT note FROM journal_entry WHERE note <> ''")
        stored = [row[0] for row in cursor.fetchall()]
    assert 0 < len(stored) < 0.05 * Entry.objects.count()
    texts = {*CHECK_IN_NOTES, *CRAVING_NOTES, *USE_NOTES}
    for raw in stored:
        assert raw.startswith("fernet:") and raw not in texts
        assert decrypt(raw) in texts
    assert {e.note for e in Entry.objects.exclude(note="")} <= texts  # the field reads them back


def test_weekly_questionnaires_are_scored_by_the_instruments(load):
    assessments = list(Assessment.objects.select_related("patient"))
    weekly = PATIENTS * (DAYS - 6) / 7 * 0.92  # from the first full week on, now and then a week skipped
    assert Counter(a.instrument for a in assessments) == {
        "phq9": pytest.approx(weekly, abs=PATIENTS),
        "gad7": pytest.approx(weekly, abs=PATIENTS),
    }
    for assessment in assessments:
        assert (assessment.score, assessment.severity) == instrument(assessment.instrument).score(assessment.answers)
        assert assessment.local_date == assessment.patient.journal_day(assessment.completed_at)[0]


def test_ketamine_and_integration_sessions_every_few_weeks(load):
    sessions = list(TherapySession.objects.select_related("patient"))
    kinds = Counter(s.kind for s in sessions)
    assert kinds[SessionKind.KETAMINE] >= PATIENTS and kinds[SessionKind.INTEGRATION] >= PATIENTS - 1
    assert set(kinds) == {SessionKind.KETAMINE, SessionKind.INTEGRATION}
    for session in sessions:
        assert session.local_date == session.patient.journal_day(session.starts_at)[0]
        assert (session.route is not None) == (session.kind == SessionKind.KETAMINE)
        assert session.starts_at < timezone.now()


def test_the_sweeper_claims_exactly_the_due_prompts_within_their_minute(load, due_at):
    prompts = Prompt.objects.filter(schedule__kind=ScheduleKind.CUSTOM)
    assert prompts.count() == PROMPTS
    assert {p.status for p in prompts} == {PromptStatus.SCHEDULED}
    assert all(due_at <= p.next_attempt_at == p.scheduled_for < due_at + timedelta(minutes=1) for p in prompts)
    assert prompts.values("patient").distinct().count() == PATIENTS
    for patient in Patient.objects.all():
        assert Device.objects.filter(user=patient.user, active=True).exists()
    assert list(prompts_claimable(now=due_at - timedelta(seconds=1), limit=1000)) == []
    half = len(list(prompts_claimable(now=due_at + timedelta(seconds=30), limit=1000)))
    assert half == pytest.approx(PROMPTS / 2, abs=1)

    published = []
    result = prompts_sweep(now=due_at + timedelta(minutes=1), publish=lambda ids: published.extend(ids) or True)
    assert result.claimed == result.published == PROMPTS
    assert set(published) == {str(pk) for pk in prompts.values_list("pk", flat=True)}


def test_the_planner_adds_nothing_to_the_load_schedules(load):
    before = Prompt.objects.count()
    prompts_plan_all(now=timezone.now())
    assert Prompt.objects.count() == before


def test_each_patient_has_a_daily_check_in_prompt_history_answered_as_often_as_they_check_in(load):
    now = timezone.now()
    history = Prompt.objects.filter(schedule__kind=ScheduleKind.CHECK_IN).select_related("patient", "schedule")
    assert 0.9 * PATIENTS * DAYS <= history.count() <= PATIENTS * DAYS
    assert not Schedule.objects.filter(kind=ScheduleKind.CHECK_IN, enabled=True).exists()  # turned off: no more
    assert all(prompt.schedule.created_at < prompt.scheduled_for for prompt in history)
    for prompt in history:
        assert prompt.expires_at <= now and prompt.status != PromptStatus.SCHEDULED
        assert prompt.local_date == prompt.patient.journal_day(prompt.scheduled_for)[0]
        assert prompt.scheduled_for.astimezone(prompt.patient.zone).time() == prompt.schedule.time
        assert (prompt.sent_at is not None) == (prompt.status in (PromptStatus.COMPLETED, PromptStatus.EXPIRED))
        assert (prompt.completed_at is not None) == (prompt.status == PromptStatus.COMPLETED)
    assert history.values("patient", "local_date").distinct().count() == history.count()  # one a day
    statuses = Counter(history.values_list("status", flat=True))
    assert statuses[PromptStatus.COMPLETED] > statuses[PromptStatus.EXPIRED] > 0
    assert 0 < statuses[PromptStatus.FAILED] < 0.1 * history.count()
    assert set(statuses) == {PromptStatus.COMPLETED, PromptStatus.EXPIRED, PromptStatus.FAILED}
    patient = Patient.objects.first()
    today = patient.journal_day(now)[0]
    funnel = compliance_of(patient, from_date=today - timedelta(days=DAYS), to_date=today)
    assert funnel["sent"] > 0 and funnel["completed"] == history.filter(patient=patient, status="completed").count()


def test_the_logins_work(load):
    assert sign_in(APIClient(), loadgen.patient_email(1), loadgen.PATIENT_PASSWORD)["user"]["role"] == "patient"
    assert sign_in(APIClient(), loadgen.LARGE_CLINICIAN, loadgen.CLINICIAN_PASSWORD)["user"]["role"] == "clinician"
    assert loadgen.CLINICIAN_PASSWORD in load and loadgen.PATIENT_PASSWORD in load


def test_the_clinicians_see_200_and_every_patient_and_later_patients_cannot_sign_in():
    _generate("--patients", "301", "--days", "1", "--entries-per-day", "1")
    small, large, admin = (
        User.objects.get(email=email) for email in (loadgen.SMALL_CLINICIAN, loadgen.LARGE_CLINICIAN, loadgen.ADMIN)
    )
    assert patients_visible_to(small).count() == loadgen.SMALL_CARE_TEAM
    assert patients_visible_to(large).count() == 301
    assert patients_visible_to(admin).count() == 0  # admins manage care teams, they do not read journals
    assert patients_managed_by(admin).count() == 301
    assert User.objects.get(email=loadgen.patient_email(300)).has_usable_password()
    assert not User.objects.get(email=loadgen.patient_email(301)).has_usable_password()
    hashes = set(User.objects.filter(role="patient", email__lte=loadgen.patient_email(300)).values_list("password"))
    assert len(hashes) == 1  # hashed once


def test_it_refuses_an_existing_load_clinic_unless_told_to_replace_it(load, due_at):
    with pytest.raises(CommandError, match="--replace"):
        _generate("--patients", "2", "--days", "2")
    _generate("--patients", "2", "--days", "3", "--replace")
    assert Clinic.objects.filter(name=loadgen.LOAD_CLINIC).count() == 1
    assert Patient.objects.count() == 2 and User.objects.count() == 2 + 3
    assert JournalSequence.objects.count() == 2 and not Device.objects.exists()
    assert not Prompt.objects.exclude(schedule__kind=ScheduleKind.CHECK_IN).exists()  # the due ones went with it
    assert Entry.objects.values("patient").distinct().count() == 2
    assert Prompt.objects.values("patient").distinct().count() == 2


def test_replace_stops_at_the_append_only_access_log_and_changes_nothing(load):
    patient, large = Patient.objects.first(), User.objects.get(email=loadgen.LARGE_CLINICIAN)
    AccessLog.objects.create(at=timezone.now(), actor=large, patient=patient, action="view", path="/")
    entries = Entry.objects.count()
    with pytest.raises(CommandError, match="drop and recreate the database"):
        _generate("--patients", "2", "--days", "2", "--replace")
    assert Patient.objects.count() == PATIENTS and Entry.objects.count() == entries


def test_it_runs_on_postgresql_only(monkeypatch):
    monkeypatch.setattr(connection, "vendor", "sqlite")
    with pytest.raises(CommandError, match="PostgreSQL"):
        _generate("--patients", "1", "--days", "1")


def test_due_prompts_need_their_minute():
    with pytest.raises(CommandError, match="--prompts-due-at"):
        _generate("--patients", "1", "--days", "1", "--prompts-due", "5")
    with pytest.raises(CommandError, match="offset"):
        _generate("--patients", "1", "--days", "1", "--prompts-due", "5", "--prompts-due-at", "2030-01-01T12:00")


def test_the_same_seed_gives_the_same_history():
    now = timezone.now()
    profile = loadgen.profile_for(7, seed=3)
    first, second = (
        loadgen.patient_history(profile, days=40, entries_per_day=4, now=now, seed=3, note_share=0.2) for _ in range(2)
    )
    without_note = [row[:14] + row[15:] for row in first.entries]
    assert without_note == [row[:14] + row[15:] for row in second.entries]
    assert first.assessments == second.assessments and first.sessions == second.sessions
    assert any(row[14] for row in first.entries)


def test_daily_rollups_cover_every_patient_day_with_entries(load):
    from journal.models import DailyRollup

    days = Entry.objects.values("patient_id", "local_date").distinct().count()
    assert DailyRollup.objects.count() == days > 0
    assert sum(DailyRollup.objects.values_list("entries", flat=True)) == Entry.objects.count()
