import pytest
from django.test import Client

from accounts.models import CareTeamMembership, User
from tests.factories import PASSWORD, ClinicianFactory, PatientFactory

pytestmark = pytest.mark.django_db


@pytest.fixture
def admin_browser(cast):
    client = Client()
    assert client.login(email=cast.admin.email, password=PASSWORD)
    return client


def test_clinic_admin_sees_only_their_clinic(cast, admin_browser):
    foreign_patient = PatientFactory(clinic=cast.foreign_clinician.clinic, display_name="Faraway")
    page = admin_browser.get("/admin/accounts/patient/").content.decode()
    assert cast.patient.display_name in page
    assert foreign_patient.display_name not in page
    assert admin_browser.get(f"/admin/accounts/patient/{foreign_patient.pk}/change/").status_code == 302
    users = admin_browser.get("/admin/accounts/user/").content.decode()
    assert cast.outsider.email in users and cast.foreign_clinician.email not in users


def test_clinic_admin_adds_a_clinician_to_their_own_clinic(cast, admin_browser):
    response = admin_browser.post(
        "/admin/accounts/user/add/",
        {
            "email": "New.Hire@Example.org",
            "display_name": "New Hire",
            "password1": "a-fine-long-passphrase",
            "password2": "a-fine-long-passphrase",
            "usable_password": "true",
        },
    )
    assert response.status_code == 302, response.context["adminform"].form.errors
    hire = User.objects.get(email="new.hire@example.org")
    assert (hire.role, hire.clinic_id, hire.is_superuser) == ("clinician", cast.admin.clinic_id, False)


def test_clinic_admin_assigns_a_care_team(cast, admin_browser):
    new = ClinicianFactory(clinic=cast.admin.clinic)
    membership_id = CareTeamMembership.objects.get(patient=cast.patient).pk
    response = admin_browser.post(
        f"/admin/accounts/patient/{cast.patient.pk}/change/",
        {
            "display_name": cast.patient.display_name,
            "status": "active",
            "care_team_memberships-TOTAL_FORMS": "2",
            "care_team_memberships-INITIAL_FORMS": "1",
            "care_team_memberships-0-id": str(membership_id),
            "care_team_memberships-0-patient": str(cast.patient.pk),
            "care_team_memberships-0-clinician": str(cast.clinician.pk),
            "care_team_memberships-1-patient": str(cast.patient.pk),
            "care_team_memberships-1-clinician": str(new.pk),
        },
    )
    assert response.status_code == 302, response.content.decode()[:3000]
    assert set(cast.patient.care_team.all()) == {cast.clinician, new}


def test_plain_clinicians_have_no_admin(cast):
    client = Client()
    client.login(email=cast.clinician.email, password=PASSWORD)
    assert client.get("/admin/accounts/patient/").status_code == 302


def test_access_log_is_read_only_in_admin(cast, admin_browser, clients):
    clients.clinician.get(f"/api/v1/patients/{cast.patient.id}/")
    assert admin_browser.get("/admin/accounts/accesslog/").status_code == 200
    from accounts.models import AccessLog

    row = AccessLog.objects.get()
    assert admin_browser.post(f"/admin/accounts/accesslog/{row.pk}/delete/", {"post": "yes"}).status_code == 403
    assert AccessLog.objects.count() == 1
