from datetime import timedelta

import pytest
import time_machine
from django.core import mail
from rest_framework.test import APIClient

from accounts.models import ConsentAcceptance, EnrollmentCode, SignIn, User
from tests.conftest import sign_in

pytestmark = pytest.mark.django_db


def _create_patient(client, **fields):
    payload = {"display_name": "Nova", "timezone": "Europe/Berlin", "substances": ["alcohol", "cocaine"], **fields}
    response = client.post("/api/v1/patients/", payload, format="json")
    assert response.status_code == 201, response.content
    return response.json()


def _enroll(code, email="nova@example.org", password="a-brand-new-passphrase", consent_version="1"):
    return APIClient().post(
        "/api/v1/auth/enroll/",
        {"code": code, "email": email, "password": password, "consent_version": consent_version},
        format="json",
    )


def test_clinician_creates_a_patient_with_a_code_and_joins_the_care_team(cast, clients):
    body = _create_patient(clients.clinician)
    assert body["enrollment"]["code"]
    assert body["enrollment"]["expires_at"].endswith("Z")
    assert body["enrolled"] is False
    detail = clients.clinician.get(f"/api/v1/patients/{body['id']}/")
    assert detail.status_code == 200
    assert detail.json()["substances"] == ["alcohol", "cocaine"]


def test_codes_are_stored_hashed(cast, clients):
    code = _create_patient(clients.clinician)["enrollment"]["code"]
    stored = EnrollmentCode.objects.get()
    assert code.replace("-", "") not in stored.code_hash
    assert len(stored.code_hash) == 64


def test_patient_enrolls_with_code_and_current_consent(cast, clients):
    created = _create_patient(clients.clinician)
    consent = APIClient().get("/api/v1/consent/", {"code": created["enrollment"]["code"]})
    assert consent.status_code == 200
    assert consent.json()["version"] == "1"
    response = _enroll(created["enrollment"]["code"])
    assert response.status_code == 201, response.content
    body = response.json()
    assert body["user"]["role"] == "patient"
    assert body["user"]["patient_id"] == created["id"]
    assert body["user"]["timezone"] == "Europe/Berlin"
    acceptance = ConsentAcceptance.objects.get()
    assert str(acceptance.patient_id) == created["id"]
    assert acceptance.consent_version.version == "1"


def test_code_is_single_use(cast, clients):
    code = _create_patient(clients.clinician)["enrollment"]["code"]
    assert _enroll(code).status_code == 201
    again = _enroll(code, email="someone@example.org")
    assert again.status_code == 400
    assert again.json()["error"]["code"] == "invalid_code"


def test_code_expires_after_seven_days(cast, clients):
    code = _create_patient(clients.clinician)["enrollment"]["code"]
    with time_machine.travel(timedelta(days=7, minutes=1)):
        response = _enroll(code)
    assert response.status_code == 400
    assert response.json()["error"]["code"] == "invalid_code"


def test_code_works_just_before_expiry(cast, clients):
    code = _create_patient(clients.clinician)["enrollment"]["code"]
    with time_machine.travel(timedelta(days=6, hours=23)):
        assert _enroll(code).status_code == 201


def test_wrong_code_is_invalid_code(db):
    response = _enroll("AAAA-BBBB-CCCC")
    assert response.status_code == 400
    assert response.json()["error"]["code"] == "invalid_code"
    assert APIClient().get("/api/v1/consent/", {"code": "AAAA-BBBB-CCCC"}).json()["error"]["code"] == "invalid_code"


def test_code_is_forgiving_about_case_and_dashes(cast, clients):
    code = _create_patient(clients.clinician)["enrollment"]["code"]
    assert _enroll(code.replace("-", " ").lower()).status_code == 201


def test_wrong_consent_version_is_400_and_leaves_the_code_usable(cast, clients):
    code = _create_patient(clients.clinician)["enrollment"]["code"]
    response = _enroll(code, consent_version="0")
    assert response.status_code == 400
    assert response.json()["error"]["field_codes"] == {"consent_version": ["consent_version_mismatch"]}
    assert _enroll(code).status_code == 201


def test_weak_password_is_rejected_with_field_message(cast, clients):
    code = _create_patient(clients.clinician)["enrollment"]["code"]
    response = _enroll(code, password="12345")
    assert response.status_code == 400
    assert "password" in response.json()["error"]["fields"]
    assert not User.objects.filter(email="nova@example.org").exists()


def test_taken_email_is_rejected(cast, clients):
    code = _create_patient(clients.clinician)["enrollment"]["code"]
    response = _enroll(code, email="carer@example.org")
    assert response.status_code == 400
    assert response.json()["error"]["field_codes"]["email"] == ["email_taken"]


def test_reissued_code_replaces_the_old_one(cast, clients):
    created = _create_patient(clients.clinician)
    old = created["enrollment"]["code"]
    fresh = clients.clinician.post(f"/api/v1/patients/{created['id']}/enrollment/")
    assert fresh.status_code == 201
    assert _enroll(old).json()["error"]["code"] == "invalid_code"
    assert _enroll(fresh.json()["code"]).status_code == 201


def test_lost_phone_code_sets_a_new_password_and_ends_every_sign_in(cast, clients):
    patient = cast.patient
    old_phone = sign_in(APIClient(), patient.user.email)
    code = clients.clinician.post(f"/api/v1/patients/{patient.id}/enrollment/").json()["code"]
    response = _enroll(code, email=patient.user.email, password="a-new-phone-passphrase")
    assert response.status_code == 201
    old = APIClient()
    old.credentials(HTTP_AUTHORIZATION=f"Bearer {old_phone['access']}")
    assert old.get("/api/v1/me/").status_code == 401
    sign_in(APIClient(), patient.user.email, "a-new-phone-passphrase")
    assert User.objects.filter(role="patient", patient=patient).count() == 1


def test_patient_list_is_the_care_team_only(cast, clients):
    body = clients.clinician.get("/api/v1/patients/").json()
    assert body["count"] == 1
    assert [row["id"] for row in body["results"]] == [str(cast.patient.id)]
    assert clients.admin.get("/api/v1/patients/").json()["count"] == 0


def test_patient_search_by_name(cast, clients):
    _create_patient(clients.clinician, display_name="Quentin")
    names = [row["display_name"] for row in clients.clinician.get("/api/v1/patients/", {"q": "quen"}).json()["results"]]
    assert names == ["Quentin"]


def test_clinician_updates_status_and_substances(cast, clients):
    response = clients.clinician.patch(
        f"/api/v1/patients/{cast.patient.id}/", {"status": "paused", "substances": ["opioids"]}, format="json"
    )
    assert response.status_code == 200
    assert response.json()["status"] == "paused"
    assert response.json()["substances"] == ["opioids"]


def test_unknown_substance_and_timezone_are_400(cast, clients):
    response = clients.clinician.patch(
        f"/api/v1/patients/{cast.patient.id}/", {"substances": ["coffee"], "timezone": "Mars/Olympus"}, format="json"
    )
    assert response.status_code == 400
    assert set(response.json()["error"]["fields"]) == {"substances.0", "timezone"}


def test_admin_manages_care_teams_of_the_clinic(cast, clients):
    url = f"/api/v1/patients/{cast.patient.id}/care-team/"
    added = clients.admin.post(url, {"clinician": str(cast.outsider.id)}, format="json")
    assert added.status_code == 201
    assert {m["id"] for m in added.json()} == {str(cast.clinician.id), str(cast.outsider.id)}
    assert clients.outsider.get(f"/api/v1/patients/{cast.patient.id}/").status_code == 200
    assert clients.admin.delete(f"{url}?clinician={cast.outsider.id}").status_code == 204
    assert clients.outsider.get(f"/api/v1/patients/{cast.patient.id}/").status_code == 404


def test_admin_cannot_add_a_clinician_of_another_clinic(cast, clients):
    url = f"/api/v1/patients/{cast.patient.id}/care-team/"
    response = clients.admin.post(url, {"clinician": str(cast.foreign_clinician.id)}, format="json")
    assert response.status_code == 400


def test_care_team_routes_are_for_admins_only(cast, clients):
    url = f"/api/v1/patients/{cast.patient.id}/care-team/"
    assert clients.clinician.get(url).status_code == 403
    assert clients.patient.get(url).status_code == 403


def test_me_shows_profile_and_crisis_resources(cast, clients):
    body = clients.patient.get("/api/v1/me/").json()
    assert body["role"] == "patient"
    assert body["timezone"] == "America/New_York"
    assert body["quiet_hours"] is None
    assert body["crisis_resources"][0]["phone"] == "988"


def test_patient_updates_timezone_and_quiet_hours(cast, clients):
    response = clients.patient.patch(
        "/api/v1/me/", {"timezone": "Asia/Kolkata", "quiet_hours": {"start": "22:30", "end": "07:00"}}, format="json"
    )
    assert response.status_code == 200
    assert response.json()["timezone"] == "Asia/Kolkata"
    assert response.json()["quiet_hours"] == {"start": "22:30", "end": "07:00"}
    cleared = clients.patient.patch("/api/v1/me/", {"quiet_hours": None}, format="json")
    assert cleared.json()["quiet_hours"] is None


def test_bad_timezone_on_me_is_400(cast, clients):
    response = clients.patient.patch("/api/v1/me/", {"timezone": "Nowhere/Special"}, format="json")
    assert response.status_code == 400
    assert response.json()["error"]["field_codes"] == {"timezone": ["invalid_timezone"]}


def test_server_owned_fields_on_me_are_ignored(cast, clients):
    response = clients.patient.patch("/api/v1/me/", {"role": "clinician", "is_clinic_admin": True}, format="json")
    assert response.status_code == 200
    assert response.json()["role"] == "patient"
    assert response.json()["is_clinic_admin"] is False


def test_patient_deactivates_account(cast, clients):
    assert clients.patient.delete("/api/v1/me/").status_code == 204
    assert clients.patient.get("/api/v1/me/").status_code == 401
    assert not SignIn.objects.filter(user=cast.patient.user, revoked_at__isnull=True).exists()


def test_clinician_cannot_deactivate_through_me(cast, clients):
    assert clients.clinician.delete("/api/v1/me/").status_code == 403


def test_password_reset_sends_one_neutral_email_and_the_same_answer_for_unknown(
    cast, django_capture_on_commit_callbacks, monkeypatch
):
    from accounts import tasks

    queued = []
    monkeypatch.setattr(tasks.send_password_reset_email, "apply_async", lambda args, **kw: queued.append(args))
    with django_capture_on_commit_callbacks(execute=True):
        known = APIClient().post("/api/v1/auth/password-reset/", {"email": "carer@example.org"}, format="json")
        unknown = APIClient().post("/api/v1/auth/password-reset/", {"email": "ghost@example.org"}, format="json")
    assert known.status_code == unknown.status_code == 202
    assert known.json() == unknown.json()
    assert queued == [(str(cast.clinician.id),)]


def test_password_reset_confirm_sets_password_and_revokes_every_sign_in(cast):
    from accounts.tasks import send_password_reset_email

    before = sign_in(APIClient(), "carer@example.org")
    send_password_reset_email(str(cast.clinician.id))
    assert len(mail.outbox) == 1
    message = mail.outbox[0]
    assert "addiction" not in (message.subject + message.body).lower()
    token = message.body.split("token=")[1].split()[0]
    response = APIClient().post(
        "/api/v1/auth/password-reset/confirm/", {"token": token, "password": "reset-to-this-passphrase"}, format="json"
    )
    assert response.status_code == 204
    client = APIClient()
    client.credentials(HTTP_AUTHORIZATION=f"Bearer {before['access']}")
    assert client.get("/api/v1/me/").status_code == 401
    sign_in(APIClient(), "carer@example.org", "reset-to-this-passphrase")
    reused = APIClient().post(
        "/api/v1/auth/password-reset/confirm/", {"token": token, "password": "another-passphrase-x"}, format="json"
    )
    assert reused.json()["error"]["code"] == "invalid_code"


def test_create_clinician_command_creates_clinic_and_admin(db):
    from django.core.management import call_command

    call_command(
        "create_clinician", email="New@Example.org", password="a-strong-passphrase", clinic="Fresh", admin=True
    )
    user = User.objects.get(email="new@example.org")
    assert user.is_clinic_admin and user.clinic.name == "Fresh"
    assert user.clinic.current_consent() is not None
    sign_in(APIClient(), "new@example.org", "a-strong-passphrase")
