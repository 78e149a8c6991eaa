"""The Django admin keeps SPEC §1 and §11: no admin can take over a patient's account, and every read
or change of a patient there writes its access-log rows, as the JSON API does."""

import pytest
from django.test import Client
from rest_framework.test import APIClient

from accounts.models import AccessAction, AccessLog, CareTeamMembership, User
from tests.factories import PASSWORD, ClinicianFactory

pytestmark = pytest.mark.django_db

NEW_PASSWORD = "admin-chosen-passphrase-1"


def _browser(user: User) -> Client:
    client = Client()
    assert client.login(email=user.email, password=PASSWORD)
    return client


@pytest.fixture
def admin_browser(cast):
    return _browser(cast.admin)


@pytest.fixture
def superuser_browser(cast):
    return _browser(ClinicianFactory(clinic=cast.admin.clinic, is_staff=True, is_superuser=True))


def _password_form(password: str = NEW_PASSWORD) -> dict:
    return {"password1": password, "password2": password, "usable_password": "true"}


def _signs_in(email: str, password: str) -> bool:
    response = APIClient().post("/api/v1/auth/token/", {"email": email, "password": password}, format="json")
    return response.status_code == 200


def _care_team_form(patient, rows: list[dict], initial: int, **fields) -> dict:
    """The patient change form as the browser posts it: `rows` are the care-team inline's rows,
    the first `initial` of them existing memberships."""
    data = {
        "display_name": patient.display_name,
        "status": patient.status,
        "care_team_memberships-TOTAL_FORMS": str(len(rows)),
        "care_team_memberships-INITIAL_FORMS": str(initial),
        "care_team_memberships-MIN_NUM_FORMS": "0",
        "care_team_memberships-MAX_NUM_FORMS": "1000",
        **fields,
    }
    for index, row in enumerate(rows):
        data.update({f"care_team_memberships-{index}-{key}": str(value) for key, value in row.items()})
        data[f"care_team_memberships-{index}-patient"] = str(patient.pk)
    return data


def _logged(**filters) -> list[tuple]:
    return list(AccessLog.objects.filter(**filters).values_list("actor_id", "patient_id", "action").order_by("id"))


# --- Patients' own accounts (SPEC §1, §4) ------------------------------------------------------


def test_user_admin_lists_clinicians_but_no_patient_account(cast, admin_browser):
    page = admin_browser.get("/admin/accounts/user/").content.decode()
    assert cast.clinician.email in page and cast.admin.email in page
    assert cast.patient.user.email not in page and cast.other_patient.user.email not in page
    found = admin_browser.get("/admin/accounts/user/", {"q": cast.patient.user.email})
    assert found.context["cl"].result_count == 0


def test_clinic_admin_cannot_set_a_patient_password_or_sign_in_as_them(cast, admin_browser):
    user = cast.patient.user
    assert admin_browser.get(f"/admin/accounts/user/{user.pk}/password/").status_code == 404
    assert admin_browser.post(f"/admin/accounts/user/{user.pk}/password/", _password_form()).status_code == 404
    assert not _signs_in(user.email, NEW_PASSWORD)
    assert _signs_in(user.email, PASSWORD)


def test_clinic_admin_cannot_open_or_change_a_patient_account(cast, admin_browser):
    user = cast.patient.user
    change = f"/admin/accounts/user/{user.pk}/change/"
    # The admin's answer for an object it does not have: back to the index, nothing shown.
    assert admin_browser.get(change).status_code == 302
    response = admin_browser.post(
        change, {"email": "taken-over@example.org", "display_name": "x", "is_active": "", "is_clinic_admin": "on"}
    )
    assert response.status_code == 302
    user.refresh_from_db()
    assert (user.email, user.is_active, user.is_clinic_admin) == (cast.patient.user.email, True, False)


def test_superuser_cannot_set_a_patient_password_either(cast, superuser_browser):
    user = cast.patient.user
    assert cast.patient.user.email not in superuser_browser.get("/admin/accounts/user/").content.decode()
    assert superuser_browser.post(f"/admin/accounts/user/{user.pk}/password/", _password_form()).status_code == 404
    assert not _signs_in(user.email, NEW_PASSWORD)


def test_clinic_admin_still_sets_a_clinician_password(cast, admin_browser):
    response = admin_browser.post(f"/admin/accounts/user/{cast.outsider.pk}/password/", _password_form())
    assert response.status_code == 302
    cast.outsider.refresh_from_db()
    assert cast.outsider.check_password(NEW_PASSWORD)


# --- Patients in the admin write the access log (SPEC §11) ---------------------------------------


def test_patient_list_in_admin_logs_one_list_row_per_patient_shown(cast, admin_browser):
    assert admin_browser.get("/admin/accounts/patient/").status_code == 200
    assert sorted(_logged()) == sorted(
        [
            (cast.admin.pk, cast.patient.pk, AccessAction.LIST),
            (cast.admin.pk, cast.other_patient.pk, AccessAction.LIST),
        ]
    )
    assert set(AccessLog.objects.values_list("path", flat=True)) == {"/admin/accounts/patient/"}


def test_patient_search_in_admin_logs_only_the_patients_found(cast, admin_browser):
    assert admin_browser.get("/admin/accounts/patient/", {"q": "Olive"}).status_code == 200
    assert _logged() == [(cast.admin.pk, cast.other_patient.pk, AccessAction.LIST)]


def test_patient_change_form_in_admin_logs_a_view_row(cast, admin_browser):
    page = admin_browser.get(f"/admin/accounts/patient/{cast.patient.pk}/change/")
    assert page.status_code == 200 and cast.clinician.email in page.content.decode()
    assert _logged() == [(cast.admin.pk, cast.patient.pk, AccessAction.VIEW)]


def test_patient_history_in_admin_logs_a_view_row(cast, admin_browser):
    assert admin_browser.get(f"/admin/accounts/patient/{cast.patient.pk}/history/").status_code == 200
    assert _logged() == [(cast.admin.pk, cast.patient.pk, AccessAction.VIEW)]


def test_admin_cannot_change_a_patients_name_or_status(cast, admin_browser):
    # Pausing a patient silences their prompts and alerts: a care-team decision (SPEC §1, §4).
    membership = CareTeamMembership.objects.get(patient=cast.patient)
    rows = [{"id": membership.pk, "clinician": cast.clinician.pk}]
    response = admin_browser.post(
        f"/admin/accounts/patient/{cast.patient.pk}/change/",
        _care_team_form(cast.patient, rows, initial=1, display_name="Renamed", status="paused"),
    )
    assert response.status_code == 302
    cast.patient.refresh_from_db()
    assert (cast.patient.display_name, cast.patient.status) == ("Pat", "active")


def test_care_team_grant_in_admin_records_who_granted_it_and_logs_an_update(cast, admin_browser):
    membership = CareTeamMembership.objects.get(patient=cast.patient)
    rows = [{"id": membership.pk, "clinician": cast.clinician.pk}, {"clinician": cast.outsider.pk}]
    response = admin_browser.post(
        f"/admin/accounts/patient/{cast.patient.pk}/change/", _care_team_form(cast.patient, rows, initial=1)
    )
    assert response.status_code == 302, response.content.decode()[:3000]
    granted = CareTeamMembership.objects.get(patient=cast.patient, clinician=cast.outsider)
    assert granted.added_by_id == cast.admin.pk
    assert _logged() == [(cast.admin.pk, cast.patient.pk, AccessAction.UPDATE)]


def test_care_team_removal_in_admin_is_logged(cast, admin_browser):
    membership = CareTeamMembership.objects.get(patient=cast.patient)
    rows = [{"id": membership.pk, "clinician": cast.clinician.pk, "DELETE": "on"}]
    response = admin_browser.post(
        f"/admin/accounts/patient/{cast.patient.pk}/change/", _care_team_form(cast.patient, rows, initial=1)
    )
    assert response.status_code == 302, response.content.decode()[:3000]
    assert not cast.patient.care_team.exists()
    assert _logged() == [(cast.admin.pk, cast.patient.pk, AccessAction.UPDATE)]


def test_a_membership_is_not_repointed_to_another_clinician(cast, admin_browser):
    # A grant says who added whom; moving it to someone else would forge that record.
    membership = CareTeamMembership.objects.get(patient=cast.patient)
    rows = [{"id": membership.pk, "clinician": cast.outsider.pk}]
    admin_browser.post(f"/admin/accounts/patient/{cast.patient.pk}/change/", _care_team_form(cast.patient, rows, 1))
    assert list(cast.patient.care_team.all()) == [cast.clinician]


def test_care_team_choices_are_clinicians_of_the_patients_clinic(cast, superuser_browser):
    page = superuser_browser.get(f"/admin/accounts/patient/{cast.patient.pk}/change/").content.decode()
    assert str(cast.outsider.pk) in page
    assert str(cast.foreign_clinician.pk) not in page
    assert str(cast.patient.user.pk) not in page
