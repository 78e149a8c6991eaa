"""The world the fuzzer runs in: a patient with a lived-in journal and their care-team clinician,
so generated requests aimed at real ids reach the code behind the 404.

It is built once per module, inside a transaction that is rolled back at the end; each test runs in
a savepoint inside it (pytest-django's own), so what one operation's fuzzing writes or deletes is
gone before the next starts."""

from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

import pytest
from django.core.signals import request_finished, request_started
from django.db import close_old_connections, transaction
from rest_framework.test import APIClient

from reminders.models import Prompt, PromptStatus
from tests.conftest import sign_in
from tests.factories import ClinicFactory, ClinicianFactory, care_team_add, enrolled_patient


@dataclass
class World:
    tokens: dict[str, str]  # role -> access token
    ids: dict[str, str]  # path parameter name -> the id of a real object behind it


def _iso(delta: timedelta) -> str:
    return (datetime.now(UTC) + delta).isoformat().replace("+00:00", "Z")


def _client(email: str) -> tuple[APIClient, str]:
    client = APIClient()
    token = sign_in(client, email)["access"]
    client.credentials(HTTP_AUTHORIZATION=f"Bearer {token}")
    return client, token


def _created(response) -> dict:
    assert response.status_code in (200, 201), response.content
    return response.json()


def _build_world() -> World:
    clinic = ClinicFactory()
    clinician = ClinicianFactory(clinic=clinic, email="fuzz-carer@example.org")
    patient_record = enrolled_patient(clinic, display_name="Pat")
    care_team_add(patient_record, clinician)
    patient, patient_token = _client(patient_record.user.email)
    carer, carer_token = _client(clinician.email)

    entry = {"kind": "check_in", "occurred_at": _iso(-timedelta(days=1)), "craving": 4, "mood": 6, "note": "ok"}
    check_in = _created(patient.post("/api/v1/entries/", entry))
    _created(patient.patch(f"/api/v1/entries/{check_in['id']}/", {"craving": 5}))  # a revision to read
    craving = {"kind": "craving", "occurred_at": _iso(-timedelta(hours=3)), "craving": 7}
    _created(patient.post("/api/v1/entries/", craving))
    use = {"kind": "use", "occurred_at": _iso(-timedelta(hours=2)), "substance": "alcohol"}
    _created(patient.post("/api/v1/entries/", use))  # opens a use_reported alert
    answers = {"instrument": "gad7", "answers": [1] * 7, "completed_at": _iso(-timedelta(hours=1))}
    _created(patient.post("/api/v1/assessments/", answers))
    _created(patient.patch("/api/v1/me/", {"quiet_hours": {"start": "22:30", "end": "07:00"}}))
    schedule = _created(patient.post("/api/v1/reminders/", {"kind": "check_in", "time": "20:00"}))
    device = _created(patient.post("/api/v1/devices/", {"platform": "android", "token": "fuzz-device-token"}))
    ketamine = {"kind": "ketamine", "starts_at": _iso(-timedelta(days=1)), "duration_minutes": 90, "route": "im"}
    ketamine["dose_mg"] = 50
    session = _created(carer.post(f"/api/v1/patients/{patient_record.pk}/sessions/", ketamine))
    alert = carer.get("/api/v1/alerts/").json()["results"][0]
    prompt = Prompt.objects.filter(patient=patient_record).order_by("scheduled_for").first()
    Prompt.objects.filter(pk=prompt.pk).update(status=PromptStatus.SENT, sent_at=datetime.now(UTC))

    return World(
        tokens={"patient": patient_token, "clinician": carer_token},
        ids={
            "patient_id": str(patient_record.pk),
            "entry_id": check_in["id"],
            "session_id": session["id"],
            "alert_id": alert["id"],
            "schedule_id": schedule["id"],
            "device_id": device["id"],
            "prompt_id": str(prompt.pk),
        },
    )


@pytest.fixture(scope="module")
def world(django_db_setup, django_db_blocker):
    with django_db_blocker.unblock(), transaction.atomic():
        yield _build_world()
        transaction.set_rollback(True)


@pytest.fixture
def in_process_requests():
    """Requests go through the WSGI app on the test's own connection, inside its transaction.

    Django closes "old" connections around each request; inside the test's transaction that would
    close the very connection the test runs on (Django's own test client unhooks it the same way)."""
    request_started.disconnect(close_old_connections)
    request_finished.disconnect(close_old_connections)
    yield
    request_started.connect(close_old_connections)
    request_finished.connect(close_old_connections)
