"""Two-factor sign-in on the API, POST /api/v1/auth/token/ {email, password, otp?} (SPEC §4): a
clinician who has set up an authenticator app sends its current code; with DASHBOARD_REQUIRE_2FA on,
every clinician must have set one up (on the dashboard). Patients never send a code."""

from datetime import timedelta

import pytest
import time_machine
from django.conf import settings as django_settings
from django.test import Client

from accounts.models import LoginAttempt
from tests.factories import PASSWORD, ClinicianFactory
from tests.totp import NOW, totp_code, totp_device

pytestmark = pytest.mark.django_db


@pytest.fixture(autouse=True)
def _frozen():
    with time_machine.travel(NOW, tick=False) as traveller:
        yield traveller


@pytest.fixture
def required(settings):
    settings.DASHBOARD_REQUIRE_2FA = True


def _sign_in(email: str, password: str = PASSWORD, **extra):
    return Client().post(
        "/api/v1/auth/token/", {"email": email, "password": password, **extra}, content_type="application/json"
    )


def _error(response) -> str:
    body = response.json()
    assert set(body) == {"error"}, body
    return body["error"]["code"]


def test_without_the_requirement_a_clinician_without_an_app_signs_in_with_a_password(cast):
    assert _sign_in(cast.clinician.email).status_code == 200


def test_when_required_a_clinician_without_an_app_is_told_to_set_it_up_on_the_dashboard(cast, required):
    response = _sign_in(cast.clinician.email)
    assert response.status_code == 401
    assert _error(response) == "two_factor_setup_required"
    assert "dashboard" in response.json()["error"]["message"]
    assert response["WWW-Authenticate"] == 'Bearer realm="api"'


@pytest.mark.parametrize("require", [False, True], ids=["optional", "required"])
def test_a_clinician_with_an_app_must_send_its_code(cast, settings, require):
    settings.DASHBOARD_REQUIRE_2FA = require
    device = totp_device(cast.clinician)
    missing = _sign_in(cast.clinician.email)
    assert missing.status_code == 401
    assert _error(missing) == "otp_required"
    assert _error(_sign_in(cast.clinician.email, otp="")) == "otp_required"

    response = _sign_in(cast.clinician.email, otp=totp_code(device))
    assert response.status_code == 200, response.content
    assert response.json()["user"]["email"] == cast.clinician.email


def test_a_wrong_code_is_refused(cast, required, _frozen):
    device = totp_device(cast.clinician)
    wrong = f"{(int(totp_code(device)) + 1) % 1_000_000:06d}"
    response = _sign_in(cast.clinician.email, otp=wrong)
    assert response.status_code == 401
    assert _error(response) == "otp_invalid"
    _frozen.shift(2)  # past django-otp's wait after a wrong code
    assert _error(_sign_in(cast.clinician.email, otp="not-a-code")) == "otp_invalid"


def test_a_code_works_once(cast, required, _frozen):
    device = totp_device(cast.clinician)
    code = totp_code(device)
    assert _sign_in(cast.clinician.email, otp=code).status_code == 200
    replayed = _sign_in(cast.clinician.email, otp=code)
    assert replayed.status_code == 401
    assert _error(replayed) == "otp_invalid"

    _frozen.shift(30)  # the next time step: its code is new
    assert _sign_in(cast.clinician.email, otp=totp_code(device)).status_code == 200


def test_a_wrong_password_says_the_same_whether_or_not_the_account_uses_two_factor(cast, required):
    totp_device(cast.clinician)
    with_app = _sign_in(cast.clinician.email, "wrong-password", otp="123456")
    unknown = _sign_in("nobody@example.org", "wrong-password", otp="123456")
    assert with_app.status_code == unknown.status_code == 401
    assert (
        with_app.json()
        == unknown.json()
        == {"error": {"code": "not_authenticated", "message": "Invalid email or password."}}
    )


def test_right_after_a_wrong_code_django_otp_makes_the_next_one_wait(cast, required, _frozen):
    device = totp_device(cast.clinician)
    assert _error(_sign_in(cast.clinician.email, otp="000000" if totp_code(device) != "000000" else "111111")) == (
        "otp_invalid"
    )
    hurried = _sign_in(cast.clinician.email, otp=totp_code(device))
    assert hurried.status_code == 429
    assert int(hurried["Retry-After"]) >= 1
    _frozen.shift(2)
    assert _sign_in(cast.clinician.email, otp=totp_code(device)).status_code == 200


def test_missing_and_wrong_codes_count_towards_the_lockout(cast, required, _frozen):
    device = totp_device(cast.clinician)
    assert _error(_sign_in(cast.clinician.email)) == "otp_required"
    for _ in range(django_settings.LOGIN_MAX_FAILURES - 1):
        _frozen.shift(60)  # past django-otp's own growing wait: only the account lockout is at work
        code = totp_code(device)
        assert _error(_sign_in(cast.clinician.email, otp=f"{(int(code) + 7) % 1_000_000:06d}")) == "otp_invalid"
    _frozen.shift(60)
    locked = _sign_in(cast.clinician.email, otp=totp_code(device))
    assert locked.status_code == 429
    assert _error(locked) == "throttled"


def test_a_successful_sign_in_with_a_code_clears_the_failure_count(cast, required):
    device = totp_device(cast.clinician)
    assert _sign_in(cast.clinician.email).status_code == 401
    assert LoginAttempt.objects.exists()
    assert _sign_in(cast.clinician.email, otp=totp_code(device)).status_code == 200
    assert not LoginAttempt.objects.exists()


def test_patients_never_need_a_code(cast, required):
    assert _sign_in(cast.patient.user.email).status_code == 200
    # Even with an app somehow attached (the admin could add one), a patient signs in with a password.
    totp_device(cast.patient.user)
    assert _sign_in(cast.patient.user.email).status_code == 200


def test_spaces_inside_a_code_are_ignored(cast, required):
    device = totp_device(cast.clinician)
    code = totp_code(device)
    assert _sign_in(cast.clinician.email, otp=f"{code[:3]} {code[3:]}").status_code == 200


def test_an_inactive_clinician_with_an_app_gets_the_plain_refusal(cast, required):
    device = totp_device(cast.clinician)
    cast.clinician.is_active = False
    cast.clinician.save(update_fields=["is_active"])
    response = _sign_in(cast.clinician.email, otp=totp_code(device))
    assert _error(response) == "not_authenticated"


def test_the_schema_documents_otp_and_the_two_factor_refusals():
    schema = Client().get("/api/schema/", {"format": "json"}).json()
    request = schema["components"]["schemas"]["LoginRequest"]
    assert "otp" in request["properties"] and "otp" not in request.get("required", [])
    assert "authenticator" in request["properties"]["otp"]["description"]
    refusals = schema["paths"]["/api/v1/auth/token/"]["post"]["responses"]["401"]
    for code in ("not_authenticated", "otp_required", "otp_invalid", "two_factor_setup_required"):
        assert code in refusals["description"]
    assert refusals["content"]["application/json"]["schema"]["$ref"].endswith("/Error")


def test_two_clinicians_locked_out_do_not_share_a_count(cast, required, _frozen):
    # The lockout stays per account: a colleague's wrong codes do not count against this clinician.
    colleague = ClinicianFactory(clinic=cast.clinician.clinic)
    colleague_device = totp_device(colleague)
    device = totp_device(cast.clinician)
    for _ in range(django_settings.LOGIN_MAX_FAILURES + 1):
        _frozen.shift(timedelta(seconds=60))
        _sign_in(colleague.email, otp=f"{(int(totp_code(colleague_device)) + 3) % 1_000_000:06d}")
    assert _sign_in(cast.clinician.email, otp=totp_code(device)).status_code == 200
