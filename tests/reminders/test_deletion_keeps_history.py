"""Deleting a schedule or a therapy session never rewrites the history of what was sent and answered
(SPEC §7): the row is kept, marked deleted and read by nobody; its future prompts are cancelled,
its past ones stay, and compliance over the past stays what it was."""

import csv
import io
import json
from datetime import UTC, date, datetime, timedelta

import pytest
import time_machine
from django.db import IntegrityError, transaction
from django.db.models import ProtectedError

from dashboard.selectors import triage_rows
from journal.models import TherapySession
from reminders.models import Prompt, PromptStatus, Schedule
from reminders.services.schedules import prompts_plan, prompts_plan_all, prompts_replan
from tests.conftest import client_for

pytestmark = pytest.mark.django_db

# Pat lives in New York: 09:00 EST is 14:00 UTC until the DST change on 2026-03-08.
CREATED = datetime(2026, 3, 1, 12, tzinfo=UTC)
NOW = datetime(2026, 3, 4, 15, tzinfo=UTC)  # 10:00 on Mar 4: that day's 09:00 prompt is past, Mar 5's ahead
KETAMINE = {
    "kind": "ketamine",
    "starts_at": "2026-03-10T09:30:00-04:00",
    "duration_minutes": 120,
    "route": "im",
    "dose_mg": 52.5,
}
# Craving checks fall on Mar 11–13 between 09:00 and 21:00 EDT; at 08:00 EDT on Mar 12 only
# Mar 11's are past.
SESSION_NOW = datetime(2026, 3, 12, 12, tzinfo=UTC)


def _fate(prompt: Prompt, status: str) -> None:
    """What became of a prompt already due: sent (then answered a minute later, expired or still
    open), or failed."""
    sent_at = prompt.scheduled_for if status != PromptStatus.FAILED else None
    completed_at = sent_at + timedelta(minutes=1) if status == PromptStatus.COMPLETED else None
    Prompt.objects.filter(pk=prompt.pk).update(status=status, sent_at=sent_at, completed_at=completed_at)


def _history(source: dict) -> list[tuple]:
    return sorted(Prompt.objects.filter(**source).values_list("local_date", "slot", "status", "sent_at"))


def _compliance(client, patient, first: date, last: date) -> dict:
    response = client.get(f"/api/v1/patients/{patient.id}/compliance/", {"from": first, "to": last})
    assert response.status_code == 200, response.content
    return response.json()


def _content(response) -> str:
    assert response.status_code == 200
    return b"".join(response.streaming_content).decode()


def _exported_sessions(client, url: str) -> tuple[int, int]:
    """How many sessions the export holds, in its JSON and in its CSV."""
    in_json = len(json.loads(_content(client.get(url, {"format": "json"})))["sessions"])
    _notice, header, *rows = csv.reader(io.StringIO(_content(client.get(url, {"format": "csv"}))))
    in_csv = sum(1 for row in rows if dict(zip(header, row, strict=True))["record_type"] == "session")
    return in_json, in_csv


def _triage_row(cast) -> dict:
    return next(row for row in triage_rows(cast.clinician) if row["id"] == cast.patient.id)


# --- Schedules -----------------------------------------------------------------------------------


def _routes(cast, who: str) -> tuple:
    """The client and the list URL of whoever deletes: the patient (own route) or the care team."""
    if who == "patient":
        return client_for(cast.patient.user), "/api/v1/reminders/"
    return client_for(cast.clinician), f"/api/v1/patients/{cast.patient.id}/reminders/"


@pytest.mark.parametrize("who", ["patient", "care_team"])
def test_deleting_a_schedule_keeps_its_past_prompts_and_cancels_the_rest(cast, who):
    with time_machine.travel(CREATED, tick=False):
        client, base = _routes(cast, who)
        response = client.post(base, {"kind": "check_in", "time": "09:00"}, format="json")
        assert response.status_code == 201, response.content
    schedule = Schedule.objects.get(pk=response.json()["id"])
    for day in range(1, 5):  # the beat tops up PROMPT_PLAN_DAYS ahead each day
        prompts_plan(patient=cast.patient, now=datetime(2026, 3, day, 12, tzinfo=UTC))
    prompts = {p.local_date.day: p for p in Prompt.objects.filter(schedule=schedule)}
    assert sorted(prompts) == [1, 2, 3, 4, 5]
    _fate(prompts[1], PromptStatus.COMPLETED)
    _fate(prompts[2], PromptStatus.EXPIRED)
    _fate(prompts[3], PromptStatus.FAILED)
    _fate(prompts[4], PromptStatus.SENT)  # still open at NOW

    with time_machine.travel(NOW, tick=False):
        client, base = _routes(cast, who)
        clinician = client_for(cast.clinician)
        past = _compliance(clinician, cast.patient, date(2026, 3, 1), date(2026, 3, 4))
        triage = _triage_row(cast)["compliance_7d"]
        history = _history({"schedule": schedule})[:4]

        url = f"{base}{schedule.id}/"
        assert client.delete(url).status_code == 204

        # The past is as it was, compliance over it too; the one prompt still ahead is gone.
        assert _history({"schedule": schedule}) == history
        assert [row[2] for row in history] == ["completed", "expired", "failed", "sent"]
        assert _compliance(clinician, cast.patient, date(2026, 3, 1), date(2026, 3, 4)) == past
        assert past["sent"] == 3 and past["completed"] == 1
        assert _triage_row(cast)["compliance_7d"] == triage
        # The open prompt still reaches the inbox and can still be answered.
        inbox = client_for(cast.patient.user).get("/api/v1/prompts/", {"status": "open"}).json()["results"]
        assert [row["id"] for row in inbox] == [str(prompts[4].pk)]

        # Gone from every route, and a deleted schedule cannot be changed, re-enabled or deleted again.
        for reader, listing in (
            (client_for(cast.patient.user), "/api/v1/reminders/"),
            (clinician, f"/api/v1/patients/{cast.patient.id}/reminders/"),
        ):
            assert reader.get(listing).json()["results"] == []
            for response in (
                reader.get(f"{listing}{schedule.id}/"),
                reader.patch(f"{listing}{schedule.id}/", {"enabled": True}, format="json"),
                reader.delete(f"{listing}{schedule.id}/"),
            ):
                assert response.status_code == 404, response.content
    schedule.refresh_from_db()
    assert (schedule.enabled, schedule.deleted_at) == (False, NOW)

    # Never planned again, by any planner, on any later day.
    for moment in (NOW, NOW + timedelta(days=3)):
        prompts_plan(patient=cast.patient, now=moment)
        prompts_plan_all(now=moment)
        prompts_replan(patient=cast.patient, now=moment)
    assert _history({"schedule": schedule}) == history


def test_the_database_keeps_a_deleted_schedule_disabled_and_its_prompts(cast):
    with time_machine.travel(CREATED, tick=False):
        response = client_for(cast.patient.user).post(
            "/api/v1/reminders/", {"kind": "check_in", "time": "09:00"}, format="json"
        )
        schedule = Schedule.objects.get(pk=response.json()["id"])
        assert client_for(cast.patient.user).delete(f"/api/v1/reminders/{schedule.id}/").status_code == 204
    with pytest.raises(IntegrityError), transaction.atomic():
        Schedule.objects.filter(pk=schedule.pk).update(enabled=True)

    kept = Schedule.objects.create(patient=cast.patient, kind="check_in", days=["mon"], time=datetime.min.time())
    prompts_plan(patient=cast.patient, now=CREATED)
    assert kept.prompts.exists()
    with pytest.raises(ProtectedError):
        kept.delete()


# --- Sessions ------------------------------------------------------------------------------------


def test_deleting_a_session_keeps_its_past_craving_checks_and_hides_it_everywhere(cast):
    with time_machine.travel(CREATED, tick=False):
        response = client_for(cast.clinician).post(
            f"/api/v1/patients/{cast.patient.id}/sessions/", KETAMINE, format="json"
        )
        assert response.status_code == 201, response.content
    session = TherapySession.objects.get(pk=response.json()["id"])
    checks = {(p.local_date.day, p.slot): p for p in Prompt.objects.filter(session=session)}
    assert len(checks) == 9
    _fate(checks[(11, 0)], PromptStatus.COMPLETED)
    _fate(checks[(11, 1)], PromptStatus.EXPIRED)
    _fate(checks[(11, 2)], PromptStatus.FAILED)

    with time_machine.travel(SESSION_NOW, tick=False):
        clinician, patient = client_for(cast.clinician), client_for(cast.patient.user)
        base = f"/api/v1/patients/{cast.patient.id}"
        trends = f"{base}/trends/?from=2026-03-01&to=2026-03-12"
        anchored = f"{base}/trends/sessions/?before=7&after=14"
        assert [s["id"] for s in clinician.get(trends).json()["sessions"]] == [str(session.pk)]
        assert [s["id"] for s in clinician.get(anchored).json()["sessions"]] == [str(session.pk)]
        assert _exported_sessions(clinician, f"{base}/export/") == (1, 1)
        assert _exported_sessions(patient, "/api/v1/me/export/") == (1, 1)
        past = _compliance(clinician, cast.patient, date(2026, 3, 10), date(2026, 3, 11))
        history = _history({"session": session})[:3]

        assert clinician.delete(f"{base}/sessions/{session.id}/").status_code == 204

        # Mar 11's checks stay as they were, with the compliance they make; Mar 12–13's are gone.
        assert _history({"session": session}) == history
        assert [row[2] for row in history] == ["completed", "expired", "failed"]
        assert _compliance(clinician, cast.patient, date(2026, 3, 10), date(2026, 3, 11)) == past
        assert past["by_kind"]["craving_check"]["sent"] == 2

        # The session itself is gone from every read.
        assert clinician.get(f"{base}/sessions/{session.id}/").status_code == 404
        assert clinician.get(f"{base}/sessions/").json()["results"] == []
        assert patient.get("/api/v1/sessions/").json()["results"] == []
        assert clinician.get(trends).json()["sessions"] == []
        assert clinician.get(anchored).json()["sessions"] == []
        assert patient.get("/api/v1/me/trends/?from=2026-03-01&to=2026-03-12").json()["sessions"] == []
        assert _exported_sessions(clinician, f"{base}/export/") == (0, 0)
        assert _exported_sessions(patient, "/api/v1/me/export/") == (0, 0)

        # A re-plan (a time-zone change, say) brings none of its craving checks back.
        prompts_replan(patient=cast.patient, now=SESSION_NOW)
    assert _history({"session": session}) == history
    with pytest.raises(ProtectedError):
        session.delete()


def test_a_deleted_upcoming_session_leaves_the_triage_list(cast):
    with time_machine.travel(CREATED, tick=False):
        clinician = client_for(cast.clinician)
        url = f"/api/v1/patients/{cast.patient.id}/sessions/"
        body = {"kind": "psychotherapy", "starts_at": "2026-03-20T10:00:00-04:00", "duration_minutes": 50}
        session = clinician.post(url, body, format="json").json()
        assert _triage_row(cast)["next_session_at"] == datetime(2026, 3, 20, 14, tzinfo=UTC)
        assert clinician.delete(f"{url}{session['id']}/").status_code == 204
        assert _triage_row(cast)["next_session_at"] is None
