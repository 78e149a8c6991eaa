"""The permission cast every test reuses (patient, other patient, care-team clinician, outsider
clinician, clinic admin, anonymous) and API clients signed in as each of them."""

import contextlib
from dataclasses import dataclass

import pytest
from django.core.cache import cache
from rest_framework.test import APIClient

from accounts.models import Patient, User
from tests.factories import PASSWORD, ClinicFactory, ClinicianFactory, care_team_add, enrolled_patient


@dataclass
class Cast:
    patient: Patient
    other_patient: Patient
    clinician: User  # on the patient's care team
    outsider: User  # a clinician of the same clinic, not on the care team
    admin: User  # clinic admin, on no care team
    foreign_clinician: User  # another clinic altogether


@pytest.fixture(autouse=True)
def _clear_cache():
    # Throttle counters live in the shared cache; each test starts with none.
    with contextlib.suppress(Exception):
        cache.clear()
    yield


@pytest.fixture
def cast(db) -> Cast:
    clinic = ClinicFactory()
    clinician = ClinicianFactory(clinic=clinic, email="carer@example.org")
    outsider = ClinicianFactory(clinic=clinic, email="outsider@example.org")
    admin = ClinicianFactory(clinic=clinic, email="admin@example.org", is_clinic_admin=True, is_staff=True)
    foreign_clinician = ClinicianFactory(email="elsewhere@example.org")
    patient = enrolled_patient(clinic, display_name="Pat")
    other_patient = enrolled_patient(clinic, display_name="Olive")
    care_team_add(patient, clinician)
    care_team_add(other_patient, outsider)
    return Cast(patient, other_patient, clinician, outsider, admin, foreign_clinician)


def sign_in(client: APIClient, email: str, password: str = PASSWORD) -> dict:
    response = client.post("/api/v1/auth/token/", {"email": email, "password": password}, format="json")
    assert response.status_code == 200, response.content
    return response.json()


def client_for(user: User | None) -> APIClient:
    client = APIClient()
    if user is not None:
        tokens = sign_in(client, user.email)
        client.credentials(HTTP_AUTHORIZATION=f"Bearer {tokens['access']}")
    return client


@pytest.fixture
def clients(cast):
    """API clients signed in (through the real sign-in endpoint) as each member of the cast."""

    @dataclass
    class Clients:
        patient: APIClient
        other_patient: APIClient
        clinician: APIClient
        outsider: APIClient
        admin: APIClient
        anonymous: APIClient

    return Clients(
        patient=client_for(cast.patient.user),
        other_patient=client_for(cast.other_patient.user),
        clinician=client_for(cast.clinician),
        outsider=client_for(cast.outsider),
        admin=client_for(cast.admin),
        anonymous=APIClient(),
    )


@pytest.fixture
def private_redis():
    from tests.support.redis_server import PrivateRedis

    server = PrivateRedis()
    server.start()
    yield server
    server.stop()
