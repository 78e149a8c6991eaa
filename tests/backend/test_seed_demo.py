import uuid
from datetime import time, timedelta
from statistics import mean

import pytest
from django.core.management import call_command
from django.db import connection
from django.db.models import Count, Max
from django.utils import timezone
from rest_framework.test import APIClient

from accounts.models import Patient, PatientStatus, User
from backend import demo_alerts
from backend import demo_histories as stories
from backend.management.commands.seed_demo import DEMO_PATIENTS, demo_logins
from journal.instruments import instrument
from journal.models import (
    COPING,
    TRIGGERS,
    Alert,
    Assessment,
    Entry,
    EntryRevision,
    JournalSequence,
    SessionKind,
    TherapySession,
)
from reminders.models import WEEKDAYS, AlertNotification, Device, Prompt, PromptStatus, Schedule
from reminders.planning import local_instant
from tests.conftest import sign_in

pytestmark = pytest.mark.django_db

STORY_OF = {name: story for name, *_, story in DEMO_PATIENTS}


@pytest.fixture
def demo() -> dict:
    """The seeded patients, by story (None: the one not enrolled yet)."""
    call_command("seed_demo")
    return {STORY_OF[patient.display_name]: patient for patient in Patient.objects.all()}


def _client(email: str, password: str) -> APIClient:
    client = APIClient()
    client.credentials(HTTP_AUTHORIZATION=f"Bearer {sign_in(client, email, password)['access']}")
    return client


def _today(patient: Patient):
    return timezone.now().astimezone(patient.zone).date()


def _check_ins(patient: Patient, *, days_ago: tuple[int, int]):
    """Live check-ins from `days_ago[0]` up to `days_ago[1]` journal days ago (both included)."""
    today = _today(patient)
    return Entry.objects.filter(
        patient=patient,
        kind="check_in",
        deleted_at__isnull=True,
        local_date__gte=today - timedelta(days=days_ago[0]),
        local_date__lte=today - timedelta(days=days_ago[1]),
    )


def test_seed_demo_builds_the_demo_clinic_once_and_its_logins_work():
    call_command("seed_demo")
    call_command("seed_demo")  # idempotent
    assert Patient.objects.count() == len(DEMO_PATIENTS)
    assert User.objects.filter(is_clinic_admin=True).count() == 1
    assert {p.status for p in Patient.objects.all()} == {"active", "paused", "discharged"}
    for role, email, password in demo_logins():
        assert sign_in(APIClient(), email, password)["user"]["email"] == email, role
    clinician_email, clinician_password = demo_logins()[0][1:]
    client = _client(clinician_email, clinician_password)
    assert client.get("/api/v1/patients/").json()["count"] == len(DEMO_PATIENTS)


def test_every_enrolled_patient_has_months_of_journal_and_the_new_one_has_none(demo):
    joined_by = timezone.now() - timedelta(days=stories.HISTORY_DAYS)
    for story, patient in demo.items():
        live = Entry.objects.filter(patient=patient, deleted_at__isnull=True)
        if story is None:
            assert patient.user is None
            assert not live.exists() and not patient.assessments.exists() and not patient.therapy_sessions.exists()
            continue
        assert patient.created_at < joined_by, patient  # moved back, so the history is inside the window
        assert live.order_by("occurred_at").first().occurred_at >= patient.created_at - timedelta(days=30)
        days = live.values("local_date").distinct().count()
        last_day = live.aggregate(last=Max("local_date"))["last"]
        if patient.status == PatientStatus.ACTIVE:
            assert days >= 100, (patient, days)
        else:  # paused or discharged: logging stopped there
            assert story.stopped_days_ago >= 14
            assert last_day <= _today(patient) - timedelta(days=story.stopped_days_ago), patient
            assert days >= 80, (patient, days)
        assert (_today(patient) - last_day).days >= story.quiet_days, patient
        for triggers, coping in live.values_list("triggers", "coping"):
            assert set(triggers) <= set(TRIGGERS) and set(coping) <= set(COPING)
        kinds = set(live.values_list("kind", flat=True))
        assert {"check_in", "craving"} <= kinds, patient
    assert stories.GONE_QUIET.quiet_days >= 5


def test_entries_carry_the_server_fields_the_services_would_have_set(demo):
    entries = Entry.objects.select_related("patient")
    assert entries.count() > 3000
    for entry in entries.order_by("id")[:300]:
        assert (entry.local_date, entry.local_hour) == entry.patient.journal_day(entry.occurred_at)
        assert entry.created_at == entry.received_at >= entry.occurred_at
        assert entry.late == (entry.received_at - entry.occurred_at > timedelta(hours=24))
    assert entries.filter(late=True).count() >= 3
    assert entries.filter(kind="use").exclude(amount="").count() >= 10

    # Each patient's changes are numbered 1..N and the sequence continues from N.
    counted = Entry.objects.values("patient").annotate(n=Count("id"), last=Max("change_seq"))
    assert {row["patient"]: row["last"] for row in counted} == dict(
        JournalSequence.objects.values_list("patient", "last_seq")
    )
    assert all(row["n"] == row["last"] for row in counted)

    # A few edits (version 2, the old content kept) and a few tombstones.
    revisions = EntryRevision.objects.select_related("entry")
    assert revisions.count() >= 3
    for revision in revisions:
        assert (revision.version, revision.entry.version) == (1, 2)
        assert revision.entry.updated_at == revision.replaced_at > revision.entry.created_at
        assert "note" not in revision.content
        assert (revision.content["craving"], revision.note) != (revision.entry.craving, revision.entry.note)
    tombstones = Entry.objects.filter(deleted_at__isnull=False)
    assert tombstones.count() >= 2
    assert all(t.version == 2 and t.updated_at == t.deleted_at for t in tombstones)

    with connection.cursor() as cursor:
        cursor.execute(f"SELECT note FROM {Entry._meta.db_table} WHERE note <> '' LIMIT 20")  # noqa: S608
        assert all(note.startswith("fernet:") for (note,) in cursor.fetchall())


def test_sessions_and_questionnaires_tell_each_story(demo):
    sessions = TherapySession.objects.select_related("patient")
    ketamine = sessions.filter(kind=SessionKind.KETAMINE)
    assert ketamine.count() >= 20
    assert {s.route for s in ketamine} == {"im", "intranasal"}
    assert all(35 <= s.dose_mg <= 70 and s.duration_minutes == 120 for s in ketamine)
    assert sessions.filter(kind=SessionKind.INTEGRATION).count() >= ketamine.count() - len(demo)
    assert sessions.filter(kind=SessionKind.PSYCHOTHERAPY).count() >= 40
    assert sessions.exclude(notes="").exists()
    for session in sessions:
        assert session.local_date == session.patient.journal_day(session.starts_at)[0]
        assert session.starts_at < timezone.now()
        assert session.created_by.email == demo_logins()[0][1]

    for assessment in Assessment.objects.all():
        score, severity = instrument(assessment.instrument).score(assessment.answers)
        assert (assessment.score, assessment.severity) == (score, severity)
        assert assessment.local_date == assessment.patient.journal_day(assessment.completed_at)[0]
    phq9 = Assessment.objects.filter(instrument="phq9")
    assert phq9.count() >= 100
    assert {"minimal", "mild", "moderate"} <= set(phq9.values_list("severity", flat=True))
    pacs = Assessment.objects.filter(instrument="pacs").select_related("patient")
    assert pacs.exists() and all("alcohol" in a.patient.substances for a in pacs)

    # Improving: cravings ebb in the week after each ketamine session.
    improving = demo[stories.IMPROVING_WITH_KETAMINE]
    today = _today(improving)
    before, after = [], []
    for session in improving.therapy_sessions.filter(kind=SessionKind.KETAMINE):
        ago = (today - session.local_date).days
        before += _check_ins(improving, days_ago=(ago + 7, ago + 1)).values_list("craving", flat=True)
        after += _check_ins(improving, days_ago=(ago - 1, ago - 7)).values_list("craving", flat=True)
    assert mean(after) < mean(before) - 1
    assert mean(_check_ins(improving, days_ago=(20, 0)).values_list("craving", flat=True)) < 3.5

    # Relapsing: high cravings and a cluster of use in the last ten days.
    relapsing = demo[stories.RELAPSING]
    assert mean(_check_ins(relapsing, days_ago=(9, 0)).values_list("craving", flat=True)) >= 7
    recent_use = relapsing.entries.filter(kind="use", local_date__gte=_today(relapsing) - timedelta(days=9))
    assert recent_use.count() >= 4

    # Worsening mood: low mood days at the end.
    worsening = demo[stories.WORSENING_MOOD]
    earlier = mean(_check_ins(worsening, days_ago=(60, 30)).values_list("mood", flat=True))
    assert mean(_check_ins(worsening, days_ago=(6, 0)).values_list("mood", flat=True)) <= earlier - 2

    # Thoughts of self-harm: the latest PHQ-9 answers item 9, and it is recent.
    latest = demo[stories.THOUGHTS_OF_SELF_HARM].assessments.filter(instrument="phq9").latest("completed_at")
    assert latest.answers[8] >= 1 and latest.completed_at > timezone.now() - timedelta(days=8)
    others = phq9.exclude(patient=demo[stories.THOUGHTS_OF_SELF_HARM])
    assert all(answers[8] == 0 for answers in others.values_list("answers", flat=True))

    # Paused and discharged: no sessions after care stopped; the discharge has its closing session.
    for story in (stories.PAUSED, stories.DISCHARGED):
        patient = demo[story]
        stopped = _today(patient) - timedelta(days=story.stopped_days_ago)
        assert not patient.therapy_sessions.filter(local_date__gt=stopped).exists()
    closing = demo[stories.DISCHARGED].therapy_sessions.latest("starts_at")
    assert closing.notes == stories.DISCHARGED.last_session_note


def test_the_demo_clinician_reads_a_patients_journal_and_the_patient_writes_on(demo):
    patient = demo[stories.IMPROVING_WITH_KETAMINE]
    clinician = _client(*demo_logins()[0][1:])
    response = clinician.get(f"/api/v1/patients/{patient.id}/entries/")
    assert response.status_code == 200, response.content
    assert response.json()["results"]

    edited = Entry.objects.filter(version=2, deleted_at__isnull=True).select_related("patient").first()
    revisions = clinician.get(f"/api/v1/patients/{edited.patient.id}/entries/{edited.id}/revisions/")
    assert revisions.status_code == 200, revisions.content
    assert [r["version"] for r in revisions.json()] == [1]

    # The demo patient's next write continues their change sequence.
    assert demo_logins()[2][1] == patient.user.email
    last_seq = JournalSequence.objects.get(patient=patient).last_seq
    created = _client(*demo_logins()[2][1:]).post(
        "/api/v1/entries/",
        {"kind": "check_in", "craving": 2, "mood": 7, "occurred_at": timezone.now().isoformat()},
        format="json",
    )
    assert created.status_code == 201, created.content
    assert Entry.objects.get(pk=created.json()["id"]).change_seq == last_seq + 1


def test_every_enrolled_patient_has_schedules_and_most_a_phone(demo):
    enrolled = [p for story, p in demo.items() if story is not None]
    for patient in enrolled:
        schedules = {s.kind: s for s in patient.schedules.all()}
        assert {"check_in", "assessment"} <= set(schedules), patient
        check_in, phq9 = schedules["check_in"], schedules["assessment"]
        assert check_in.enabled and check_in.days == list(WEEKDAYS)
        assert (check_in.time is None) != (check_in.window_start is None)
        assert (phq9.instrument, phq9.days) == ("phq9", ["sun"])
    schedules = Schedule.objects.all()
    assert schedules.filter(window_start__isnull=False).exists() and schedules.filter(time__isnull=False).exists()
    assert schedules.filter(kind="custom").exclude(message="").exists()
    quiet = Patient.objects.filter(quiet_hours_start__isnull=False)
    assert quiet.exists() and all((p.quiet_hours_start, p.quiet_hours_end) == (time(22, 30), time(7)) for p in quiet)

    devices = Device.objects.select_related("user")
    assert devices.count() == len(enrolled) - 1  # one patient has no phone: reminders by email
    assert {d.platform for d in devices} == {"android", "ios"}
    assert all(d.active and d.token.startswith("demo-fcm-token-") for d in devices)
    phoneless = [p for p in enrolled if not p.user.devices.exists()]
    assert len(phoneless) == 1
    sent = Prompt.objects.filter(patient=phoneless[0], sent_at__isnull=False)
    assert sent.exists() and set(sent.values_list("channel", flat=True)) == {"email"}


def test_a_month_of_prompts_agrees_with_the_journal(demo):
    now = timezone.now()
    prompts = Prompt.objects.select_related("patient", "schedule")
    assert set(prompts.values_list("status", flat=True)) == set(PromptStatus.values)
    skipped = prompts.filter(status="skipped")
    assert set(skipped.values_list("skip_reason", flat=True)) == {"quiet_hours", "already_done"}
    assert prompts.filter(status="expired", received_at__isnull=False).exists()
    assert prompts.filter(status="expired", received_at__isnull=True).exists()
    for prompt in prompts:
        schedule, patient = prompt.schedule, prompt.patient
        assert (prompt.kind, prompt.slot, prompt.session_id) == (schedule.kind, 0, None)
        assert prompt.local_date >= _today(patient) - timedelta(days=30)
        if schedule.time is not None:
            assert prompt.scheduled_for == local_instant(patient.zone, prompt.local_date, schedule.time)
        assert prompt.expires_at == prompt.scheduled_for + timedelta(minutes=schedule.expires_after_minutes)
        assert prompt.next_attempt_at == prompt.scheduled_for
        if prompt.sent_at is not None:
            assert prompt.attempts == 1 and prompt.channel in ("push", "email")
            assert prompt.scheduled_for <= prompt.sent_at < prompt.scheduled_for + timedelta(minutes=1)
        if prompt.status in ("scheduled", "skipped"):
            assert prompt.sent_at is None and prompt.attempts == 0
        if prompt.status == "completed":
            assert prompt.sent_at < prompt.completed_at <= min(prompt.expires_at, now)
            assert prompt.received_at is not None
        if prompt.status in ("sent", "received"):
            assert prompt.expires_at > now
        if prompt.status == "scheduled":
            assert prompt.scheduled_for > now - timedelta(minutes=5)
            assert patient.status == PatientStatus.ACTIVE

        if prompt.kind != "check_in" or prompt.status == "scheduled":
            continue
        check_ins = Entry.objects.filter(
            patient=patient, kind="check_in", local_date=prompt.local_date, deleted_at__isnull=True
        )
        first = check_ins.order_by("occurred_at").first()
        if prompt.skip_reason == "already_done":
            assert first is not None and first.occurred_at <= prompt.scheduled_for
        elif prompt.status == "completed":
            assert first is not None and first.occurred_at <= prompt.completed_at
        elif prompt.status == "expired":
            assert not check_ins.filter(occurred_at__gt=prompt.sent_at, occurred_at__lte=prompt.expires_at).exists()

    # The patient gone quiet: the reminders of the last days went out and expired unanswered.
    quiet = demo[stories.GONE_QUIET]
    recent = prompts.filter(
        patient=quiet,
        kind="check_in",
        local_date__gt=_today(quiet) - timedelta(days=stories.GONE_QUIET.quiet_days),
        expires_at__lt=now,
    )
    assert recent.count() >= stories.GONE_QUIET.quiet_days - 1
    assert set(recent.values_list("status", flat=True)) == {"expired"}

    # The next prompts are planned, so the worker has some to send.
    upcoming = Prompt.objects.filter(status="scheduled", scheduled_for__gt=now)
    assert upcoming.values("patient").distinct().count() >= 5
    assert not upcoming.exclude(patient__status=PatientStatus.ACTIVE).exists()


def test_the_demo_clinician_sees_the_improving_patients_compliance(demo):
    patient = demo[stories.IMPROVING_WITH_KETAMINE]
    response = _client(*demo_logins()[0][1:]).get(f"/api/v1/patients/{patient.id}/compliance/")
    assert response.status_code == 200, response.content
    body = response.json()
    assert 0.5 <= body["completion_rate"] < 1
    assert body["median_latency_seconds"] > 0
    assert body["sent"] >= 30 and body["completed"] >= 20
    assert body["by_kind"]["assessment"]["completed"] >= 3


def test_the_demo_has_alerts_of_every_severity_and_the_care_teams_work_on_them(demo):
    now = timezone.now()
    clinician = User.objects.get(email=demo_logins()[0][1])
    alerts = Alert.objects.select_related("patient")
    unresolved = alerts.exclude(status="resolved")
    assert set(unresolved.values_list("severity", flat=True)) == {"urgent", "high", "medium", "low"}
    assert not alerts.exclude(patient__status=PatientStatus.ACTIVE).exists()  # paused, discharged: none

    # Each story's own: the self-harm answers (urgent; acknowledged when last week's was), the
    # relapse's lapses (high, acknowledged the same day), the silence (low, raised by beat's check).
    urgent = unresolved.get(severity="urgent")
    assert (urgent.patient, urgent.rule) == (demo[stories.THOUGHTS_OF_SELF_HARM], "phq9_self_harm")
    latest = urgent.patient.assessments.filter(instrument="phq9").latest("completed_at")
    assert str(latest.pk) in {item["assessment"] for item in urgent.evidence}
    relapse = unresolved.get(patient=demo[stories.RELAPSING], rule="use_reported")
    assert relapse.status == "acknowledged" and len(relapse.evidence) >= 2
    assert {"craving_high", "craving_rising"} <= set(
        unresolved.filter(patient=demo[stories.RELAPSING]).values_list("rule", flat=True)
    )
    quiet = unresolved.get(patient=demo[stories.GONE_QUIET], rule="disengaged")
    assert quiet.opened_at < now - timedelta(days=1)

    # Acknowledged and resolved, with who, when and a note, in order.
    acknowledged = alerts.filter(acknowledged_at__isnull=False)
    resolved = alerts.filter(status="resolved")
    assert acknowledged.filter(status="acknowledged").exists() and resolved.exists()
    for alert in acknowledged:
        assert alert.acknowledged_by == clinician and alert.acknowledge_note
        assert alert.opened_at < alert.acknowledged_at < now
    for alert in resolved:
        assert alert.resolved_by == clinician and alert.resolve_note
        assert (
            alert.opened_at <= alert.last_fired_at < alert.resolved_at < now - timedelta(days=demo_alerts.SETTLED_DAYS)
        )
    for alert in alerts:
        assert alert.opened_at <= alert.last_fired_at <= now
    # Never two unresolved of one rule for one patient; a rule that fired again after it was
    # resolved opened a new alert.
    assert unresolved.count() == unresolved.values("patient", "rule").distinct().count()

    # The notifications went out when the alerts opened, round after round until someone
    # acknowledged: nothing is left to mail the console about on a first `make run`.
    notifications = AlertNotification.objects.select_related("alert")
    assert notifications.filter(alert=urgent, escalation=True, recipient__is_clinic_admin=True).exists()
    assert not notifications.filter(status="scheduled", next_attempt_at__lte=now).exists()
    for notification in notifications:
        alert = notification.alert
        assert notification.due_at == alert.opened_at + notification.round * timedelta(minutes=15)
        handled = alert.acknowledged_at or alert.resolved_at
        assert notification.status == ("cancelled" if handled and handled <= notification.due_at else "sent")


def test_every_alerts_evidence_points_at_its_patients_own_entries_and_questionnaires(demo):
    entry_ids, assessment_ids = set(), set()
    for alert in Alert.objects.all():
        assert alert.evidence, alert
        for item in alert.evidence:
            entry_ids |= {(alert.patient_id, item["entry"])} if "entry" in item else set()
            for key in ("assessment", "previous_assessment"):
                assessment_ids |= {(alert.patient_id, item[key])} if key in item else set()
    assert len(entry_ids) >= 20 and len(assessment_ids) >= 2
    owners = dict(Entry.objects.filter(pk__in=[pk for _, pk in entry_ids]).values_list("pk", "patient_id"))
    assert {(owners.get(uuid.UUID(pk)), pk) for _, pk in entry_ids} == {(patient, pk) for patient, pk in entry_ids}
    owners = dict(Assessment.objects.filter(pk__in=[pk for _, pk in assessment_ids]).values_list("pk", "patient_id"))
    assert {(owners.get(uuid.UUID(pk)), pk) for _, pk in assessment_ids} == {(p, pk) for p, pk in assessment_ids}


def test_the_triage_list_puts_the_urgent_patient_first_and_the_calm_ones_last(demo):
    response = _client(*demo_logins()[0][1:]).get("/api/v1/patients/")
    assert response.status_code == 200, response.content
    rows = response.json()["results"]
    assert rows[0]["id"] == str(demo[stories.THOUGHTS_OF_SELF_HARM].id)
    assert rows[0]["open_alerts"]["urgent"] == 1
    assert rows[1]["id"] == str(demo[stories.RELAPSING].id)  # high alerts, and the most use
    assert rows[1]["open_alerts"]["high"] >= 2 and rows[1]["use_days_7d"] >= 3

    def worst(row):
        return next((s for s in ("urgent", "high", "medium", "low") if row["open_alerts"][s]), None)

    levels = [worst(row) for row in rows]
    assert {"urgent", "high", None} <= set(levels) and len(set(levels)) >= 3
    ranks = [("urgent", "high", "medium", "low", None).index(level) for level in levels]
    assert ranks == sorted(ranks)
    calm = [row for row in rows if worst(row) is None and row["status"] == PatientStatus.ACTIVE]
    assert len(calm) >= 3


def test_trends_and_session_trends_answer_for_every_demo_patient_and_tell_their_stories(demo):
    client = _client(*demo_logins()[0][1:])
    summaries = {}
    for story, patient in demo.items():
        trends = client.get(f"/api/v1/patients/{patient.id}/trends/")
        assert trends.status_code == 200, (patient, trends.content)
        summaries[story] = trends.json()["summary"]
        for kind in ("ketamine", "psychotherapy"):
            sessions = client.get(f"/api/v1/patients/{patient.id}/trends/sessions/?kind={kind}")
            assert sessions.status_code == 200, (patient, kind, sessions.content)

    relapsing, improving = summaries[stories.RELAPSING], summaries[stories.IMPROVING_WITH_KETAMINE]
    assert relapsing["craving_mean"] > relapsing["craving_mean_prev"] and relapsing["use_days"] >= 4
    assert improving["craving_mean"] < relapsing["craving_mean"] - 2 and improving["use_days"] == 0
    assert summaries[stories.WORSENING_MOOD]["mood_mean"] < improving["mood_mean"] - 2
    assert summaries[stories.GONE_QUIET]["current_streak"] == 0

    improving_sessions = client.get(f"/api/v1/patients/{demo[stories.IMPROVING_WITH_KETAMINE].id}/trends/sessions/")
    assert improving_sessions.json()["average"]["delta"]["craving"] < 0  # cravings ebb after ketamine
