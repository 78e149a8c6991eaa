"""A world for the security tests: the cast of tests/conftest.py with one real object of every kind
a route can name (entry, session, alert, schedule, device, prompt) for each of its two patients, so
every route is exercised on a real row, never on a random id that would 404 for the wrong reason."""

import uuid
from dataclasses import dataclass, field
from datetime import timedelta

import pytest
from django.db import transaction
from django.utils import timezone
from rest_framework.test import APIClient

from accounts.models import Patient, User
from journal.models import Alert
from reminders.models import Prompt, Schedule
from tests.conftest import Cast, sign_in
from tests.factories import ClinicFactory, ClinicianFactory, care_team_add, enrolled_patient
from tests.timeutil import iso_ago


@dataclass
class Objects:
    """One patient's objects, keyed by the path parameter that names them, plus the strings by
    which that patient's data would show in someone else's response."""

    ids: dict[str, str]
    markers: set[str] = field(default_factory=set)


@dataclass
class World:
    cast: Cast
    mine: Objects  # cast.patient's
    theirs: Objects  # cast.other_patient's
    # Each actor signed in once through the real endpoint: (client, tokens), tokens None if anonymous.
    sessions: dict[str, tuple[APIClient, dict | None]] = field(default_factory=dict)

    def user(self, actor: str) -> User | None:
        return {
            "patient": self.cast.patient.user,
            "other_patient": self.cast.other_patient.user,
            "clinician": self.cast.clinician,
            "outsider": self.cast.outsider,
            "admin": self.cast.admin,
            "foreign_admin": self.cast.foreign_clinician,
            "anonymous": None,
        }[actor]


ACTORS = ("patient", "other_patient", "clinician", "outsider", "admin", "foreign_admin", "anonymous")


def signed_in(user: User | None) -> tuple[APIClient, dict | None]:
    """A client for `user` signed in through the real endpoint (anonymous for None), and its tokens."""
    client = APIClient()
    if user is None:
        return client, None
    tokens = sign_in(client, user.email)
    client.credentials(HTTP_AUTHORIZATION=f"Bearer {tokens['access']}")
    return client, tokens


def _as(user: User) -> APIClient:
    client = APIClient()
    client.force_authenticate(user=user)
    return client


def _created(response) -> str:
    assert response.status_code in (200, 201), response.content
    return response.json()["id"]


def objects_for(patient: Patient, carer: User, name: str) -> Objects:
    """Real rows of every kind for `patient`, made through the API as the patient and a carer."""
    own, team = _as(patient.user), _as(carer)
    note = f"note-of-{name}-{uuid.uuid4().hex[:8]}"
    entry_id = _created(
        own.post(
            "/api/v1/entries/",
            {"kind": "use", "occurred_at": iso_ago(hours=2), "substance": "alcohol", "note": note},
            format="json",
        )
    )
    alert = Alert.objects.get(patient=patient, rule="use_reported")  # the use entry fired it
    session_id = _created(
        team.post(
            f"/api/v1/patients/{patient.id}/sessions/",
            {"kind": "medical", "starts_at": iso_ago(days=1), "duration_minutes": 30, "notes": note},
            format="json",
        )
    )
    schedule_id = _created(
        team.post(f"/api/v1/patients/{patient.id}/reminders/", {"kind": "check_in", "time": "09:00"}, format="json")
    )
    device_id = _created(
        own.post("/api/v1/devices/", {"platform": "android", "token": f"tok-{uuid.uuid4().hex}"}, format="json")
    )
    due = timezone.now() - timedelta(minutes=10)
    prompt = Prompt.objects.create(
        patient=patient,
        schedule=Schedule.objects.get(pk=schedule_id),
        kind="check_in",
        local_date=patient.journal_day(due)[0],
        slot=7,
        scheduled_for=due,
        expires_at=due + timedelta(hours=2),
        next_attempt_at=due,
        status="sent",
        sent_at=due,
    )
    ids = {
        "patient_id": str(patient.id),
        "entry_id": entry_id,
        "alert_id": str(alert.id),
        "session_id": session_id,
        "schedule_id": schedule_id,
        "device_id": device_id,
        "prompt_id": str(prompt.id),
    }
    return Objects(ids=ids, markers={*ids.values(), str(patient.user_id), patient.display_name, note})


def _cast() -> Cast:
    """tests/conftest.py's cast, with names no JSON key or message could contain by chance (so a
    leak check can search for them), and the clinician of another clinic made that clinic's admin:
    the widest power that must still see nothing of this clinic."""
    clinic = ClinicFactory()
    clinician = ClinicianFactory(clinic=clinic, email="carer@example.org")
    outsider = ClinicianFactory(clinic=clinic, email="outsider@example.org")
    admin = ClinicianFactory(clinic=clinic, email="admin@example.org", is_clinic_admin=True, is_staff=True)
    foreign_admin = ClinicianFactory(email="elsewhere@example.org", is_clinic_admin=True)
    patient = enrolled_patient(clinic, display_name="Perpetua Ownwood")
    other_patient = enrolled_patient(clinic, display_name="Olivander Elsewhere")
    care_team_add(patient, clinician)
    care_team_add(other_patient, outsider)
    return Cast(patient, other_patient, clinician, outsider, admin, foreign_admin)


@pytest.fixture(scope="module")
def world(django_db_setup, django_db_blocker):
    """Built once per module inside a transaction that is rolled back at its end; each test runs in
    a savepoint inside it (pytest-django's own), so a test that deletes or revokes something
    leaves the next one the same world. ~500 matrix cases could not each afford building it."""
    with django_db_blocker.unblock(), transaction.atomic():
        cast = _cast()
        world = World(
            cast=cast,
            mine=objects_for(cast.patient, cast.clinician, "perpetua"),
            theirs=objects_for(cast.other_patient, cast.outsider, "olivander"),
        )
        world.sessions = {actor: signed_in(world.user(actor)) for actor in ACTORS}
        yield world
        transaction.set_rollback(True)
