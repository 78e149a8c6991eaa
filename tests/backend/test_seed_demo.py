import pytest
from django.core.management import call_command
from rest_framework.test import APIClient

from accounts.models import Patient, User
from backend.management.commands.seed_demo import DEMO_PATIENTS, demo_logins
from tests.conftest import sign_in


@pytest.mark.django_db
def test_seed_demo_builds_the_demo_clinic_once_and_its_logins_work():
    call_command("seed_demo")
    call_command("seed_demo")  # idempotent
    assert Patient.objects.count() == len(DEMO_PATIENTS)
    assert User.objects.filter(is_clinic_admin=True).count() == 1
    assert {p.status for p in Patient.objects.all()} == {"active", "paused", "discharged"}
    for role, email, password in demo_logins():
        assert sign_in(APIClient(), email, password)["user"]["email"] == email, role
    clinician_email, clinician_password = demo_logins()[0][1:]
    client = APIClient()
    client.credentials(HTTP_AUTHORIZATION=f"Bearer {sign_in(client, clinician_email, clinician_password)['access']}")
    assert client.get("/api/v1/patients/").json()["count"] == len(DEMO_PATIENTS)
