"""Dashboard sign-in (SPEC §12): password, then a TOTP code, or setting up an authenticator app when
DASHBOARD_REQUIRE_2FA is on; the session's idle timeout, the CSP header, and the Django admin, which
must not be a way around two-factor."""

import re
from base64 import b32decode
from datetime import timedelta

import pytest
import time_machine
from django.conf import settings as django_settings
from django.contrib.auth import SESSION_KEY
from django.test import Client
from django_otp import DEVICE_ID_SESSION_KEY
from django_otp.plugins.otp_totp.models import TOTPDevice

from tests.factories import PASSWORD
from tests.totp import NOW, key_code, totp_device

pytestmark = pytest.mark.django_db


@pytest.fixture(autouse=True)
def _frozen():
    with time_machine.travel(NOW, tick=False) as traveller:
        yield traveller


@pytest.fixture
def required(settings):
    settings.DASHBOARD_REQUIRE_2FA = True


def _password_step(client: Client, email: str, password: str = PASSWORD, **extra):
    return client.post("/dashboard/login/", {"username": email, "password": password, **extra})


def _signed_in(client: Client) -> bool:
    return SESSION_KEY in client.session


def _verified(client: Client) -> bool:
    return DEVICE_ID_SESSION_KEY in client.session


def _alert_text(response) -> str:
    match = re.search(r'role="alert"[^>]*>([^<]*)<', response.content.decode())
    return match.group(1) if match else ""


def test_anonymous_visitors_are_sent_to_sign_in_and_come_back():
    response = Client().get("/dashboard/")
    assert response.status_code == 302
    assert response["Location"] == "/dashboard/login/?next=/dashboard/"
    page = Client().get(response["Location"]).content.decode()
    assert 'name="next" value="/dashboard/"' in page
    assert 'autocomplete="current-password"' in page


def test_an_htmx_request_of_a_signed_out_page_sends_the_whole_page_to_sign_in(db):
    """A 302 would be followed inside the request and the sign-in page swapped into the table."""
    response = Client().get(
        "/dashboard/", {"q": "pa"}, HTTP_HX_REQUEST="true", HTTP_HX_CURRENT_URL="http://testserver/dashboard/?q=p"
    )
    assert response.status_code == 200
    assert response["HX-Redirect"] == "/dashboard/login/?next=/dashboard/%3Fq%3Dp"


def test_an_htmx_request_of_a_session_without_its_code_sends_the_whole_page_to_the_code_step(cast, required):
    client = Client()
    client.force_login(cast.clinician)  # signed in before two-factor was required: not verified
    response = client.get(
        "/dashboard/", {"q": "pa"}, HTTP_HX_REQUEST="true", HTTP_HX_CURRENT_URL="http://testserver/dashboard/?q=p"
    )
    assert response.status_code == 200
    assert response["HX-Redirect"].startswith("/dashboard/login/set-up-two-factor/")  # it has no app yet
    assert response["HX-Redirect"].endswith("next=%2Fdashboard%2F%3Fq%3Dp")


def test_a_nul_byte_in_the_address_reads_as_a_wrong_address_not_a_500(cast):
    client = Client(raise_request_exception=False)
    response = _password_step(client, "carer\x00@example.org", "wrong-password")
    assert response.status_code == 200
    assert _alert_text(response) == "Your email and password did not match. Please try again."


def test_without_an_app_and_without_the_requirement_a_password_is_enough(cast):
    client = Client()
    response = _password_step(client, cast.clinician.email, next="/dashboard/?q=pat")
    assert response.status_code == 302
    assert response["Location"] == "/dashboard/?q=pat"
    assert client.get("/dashboard/").status_code == 200


def test_a_wrong_password_reads_the_same_as_an_unknown_address(cast):
    known = _password_step(Client(), cast.clinician.email, "wrong-password")
    unknown = _password_step(Client(), "nobody@example.org", "wrong-password")
    assert known.status_code == unknown.status_code == 200
    assert _alert_text(known) == _alert_text(unknown) == "Your email and password did not match. Please try again."


def test_a_clinician_with_an_app_gives_a_code_after_the_password(cast):
    device = totp_device(cast.clinician)
    client = Client()
    response = _password_step(client, cast.clinician.email, next="/dashboard/?q=p")
    assert response["Location"] == "/dashboard/login/code/"
    # Not signed in between the two steps: no page opens yet.
    assert not _signed_in(client)
    assert client.get("/dashboard/")["Location"].startswith("/dashboard/login/")

    page = client.get("/dashboard/login/code/").content.decode()
    assert 'autocomplete="one-time-code"' in page and 'inputmode="numeric"' in page

    wrong = client.post("/dashboard/login/code/", {"code": f"{(int(key_code(device.bin_key)) + 1) % 10**6:06d}"})
    assert wrong.status_code == 200 and "did not work" in _alert_text(wrong)
    assert not _signed_in(client)

    with time_machine.travel(NOW + timedelta(seconds=2), tick=False):  # past django-otp's wait after a miss
        response = client.post("/dashboard/login/code/", {"code": key_code(device.bin_key)})
        assert response.status_code == 302
        assert response["Location"] == "/dashboard/?q=p"
        assert _signed_in(client) and _verified(client)
        assert client.get("/dashboard/").status_code == 200


def test_when_required_a_clinician_without_an_app_sets_one_up_with_a_qr_code(cast, required):
    client = Client()
    response = _password_step(client, cast.clinician.email)
    assert response["Location"] == "/dashboard/login/set-up-two-factor/"
    page = client.get(response["Location"]).content.decode()
    assert '<img src="data:image/svg+xml' in page and "alt=" in page
    secret = re.search(r'<code id="totp-secret">([A-Z2-7 ]+)</code>', page).group(1)
    device = TOTPDevice.objects.get(user=cast.clinician)
    assert not device.confirmed
    assert b32decode(secret.replace(" ", "")) == device.bin_key
    assert client.get(response["Location"]).content.decode().count(secret) == 1  # the same app on a reload

    response = client.post("/dashboard/login/set-up-two-factor/", {"code": key_code(device.bin_key)})
    assert response.status_code == 302 and response["Location"] == "/dashboard/"
    device.refresh_from_db()
    assert device.confirmed
    assert _signed_in(client) and _verified(client)
    assert client.get("/dashboard/").status_code == 200


def test_the_set_up_page_never_shows_the_key_of_an_app_already_set_up(cast, required):
    totp_device(cast.clinician)
    client = Client()
    _password_step(client, cast.clinician.email)
    response = client.get("/dashboard/login/set-up-two-factor/")
    assert response.status_code == 302 and response["Location"].startswith("/dashboard/login/code/")


def test_when_required_a_session_without_a_code_is_sent_to_the_code_step(cast, required):
    client = Client()
    client.force_login(cast.clinician)  # a password-only session, e.g. from before the requirement
    assert client.get("/dashboard/")["Location"] == "/dashboard/login/set-up-two-factor/?next=%2Fdashboard%2F"
    device = totp_device(cast.clinician)
    assert client.get("/dashboard/")["Location"] == "/dashboard/login/code/?next=%2Fdashboard%2F"
    response = client.post("/dashboard/login/code/?next=%2Fdashboard%2F", {"code": key_code(device.bin_key)})
    assert response["Location"] == "/dashboard/"
    assert client.get("/dashboard/").status_code == 200


def test_a_patient_cannot_sign_in_to_the_dashboard(cast):
    client = Client()
    response = _password_step(client, cast.patient.user.email)
    assert response.status_code == 200
    assert "Patients use the Interlude app" in _alert_text(response)
    assert not _signed_in(client)


def test_a_signed_in_patient_is_refused_dashboard_pages(cast, required):
    client = Client()
    client.force_login(cast.patient.user)
    assert client.get("/dashboard/").status_code == 403


@pytest.mark.parametrize(
    "next_url", ["https://evil.example/", "//evil.example/dashboard/", "/\\evil.example", "javascript:alert(1)"]
)
def test_an_unsafe_next_is_ignored(cast, next_url):
    response = _password_step(Client(), cast.clinician.email, next=next_url)
    assert response["Location"] == "/dashboard/"


def test_an_unsafe_next_is_ignored_after_the_code_step_too(cast):
    device = totp_device(cast.clinician)
    client = Client()
    _password_step(client, cast.clinician.email, next="https://evil.example/")
    assert client.post("/dashboard/login/code/", {"code": key_code(device.bin_key)})["Location"] == "/dashboard/"


def test_wrong_codes_count_towards_the_account_lockout(cast, _frozen):
    device = totp_device(cast.clinician)
    client = Client()
    _password_step(client, cast.clinician.email)  # attempt 1: the password, right but not enough
    for _ in range(django_settings.LOGIN_MAX_FAILURES - 1):
        _frozen.shift(60)  # past django-otp's own growing wait: only the lockout is at work
        wrong = f"{(int(key_code(device.bin_key)) + 5) % 10**6:06d}"
        assert "did not work" in _alert_text(client.post("/dashboard/login/code/", {"code": wrong}))
    _frozen.shift(60)
    locked = client.post("/dashboard/login/code/", {"code": key_code(device.bin_key)})
    assert "Too many attempts" in _alert_text(locked)
    assert not _signed_in(client)
    # The API shares the count.
    api = Client().post(
        "/api/v1/auth/token/",
        {"email": cast.clinician.email, "password": PASSWORD, "otp": key_code(device.bin_key)},
        content_type="application/json",
    )
    assert api.status_code == 429


def test_a_code_used_once_does_not_work_again(cast):
    device = totp_device(cast.clinician)
    code = key_code(device.bin_key)
    first = Client()
    _password_step(first, cast.clinician.email)
    assert first.post("/dashboard/login/code/", {"code": code}).status_code == 302
    second = Client()
    _password_step(second, cast.clinician.email)
    assert "did not work" in _alert_text(second.post("/dashboard/login/code/", {"code": code}))
    assert not _signed_in(second)


def test_the_step_between_password_and_code_expires(cast, _frozen):
    device = totp_device(cast.clinician)
    client = Client()
    _password_step(client, cast.clinician.email)
    _frozen.shift(11 * 60)
    response = client.post("/dashboard/login/code/", {"code": key_code(device.bin_key)})
    assert response["Location"] == "/dashboard/login/"
    assert not _signed_in(client)


def test_an_idle_session_is_signed_out(cast, _frozen):
    client = Client()
    _password_step(client, cast.clinician.email)
    idle = django_settings.DASHBOARD_IDLE_TIMEOUT_SECONDS
    _frozen.shift(idle - 60)
    assert client.get("/dashboard/").status_code == 200  # in use: the clock starts again
    _frozen.shift(idle - 60)
    assert client.get("/dashboard/").status_code == 200
    _frozen.shift(idle + 1)
    response = client.get("/dashboard/")
    assert response.status_code == 302 and response["Location"].startswith("/dashboard/login/")
    assert not _signed_in(client)
    assert "signed out after 30 minutes" in client.get(response["Location"]).content.decode()


def test_dashboard_pages_carry_the_content_security_policy(cast):
    client = Client()
    client.force_login(cast.clinician)
    for path in ("/dashboard/", "/dashboard/login/"):
        policy = client.get(path)["Content-Security-Policy"]
        directives = dict(part.strip().split(" ", 1) for part in policy.split(";"))
        assert directives["default-src"] == "'self'"
        assert directives["script-src"] == "'self'"
        assert directives["style-src"] == "'self' 'unsafe-inline'"
        assert directives["img-src"] == "'self' data:"
        assert directives["frame-ancestors"] == "'none'"
        assert directives["form-action"] == "'self'"
        assert directives["object-src"] == "'none'"
        assert directives["base-uri"] == "'self'"


def test_the_swagger_ui_is_left_without_the_policy_because_it_starts_with_an_inline_script():
    response = Client().get("/api/docs/")
    assert response.status_code == 200
    assert "Content-Security-Policy" not in response


def test_the_sign_in_pages_have_no_inline_script(cast, required):
    client = Client()
    pages = [client.get("/dashboard/login/").content.decode()]
    _password_step(client, cast.clinician.email)
    pages.append(client.get("/dashboard/login/set-up-two-factor/").content.decode())
    for page in pages:
        for script in re.findall(r"<script([^>]*)>(.*?)</script>", page, re.S):
            attributes, body = script
            assert "src=" in attributes or 'type="application/json"' in attributes, script
            assert "src=" not in attributes or not body.strip()


def test_the_admin_wants_a_code_when_two_factor_is_required(cast, required):
    client = Client()
    client.force_login(cast.admin)  # staff, password only
    response = client.get("/admin/")
    assert response.status_code == 302 and response["Location"].startswith("/admin/login/")
    response = client.get(response["Location"])
    assert response["Location"] == "/dashboard/login/set-up-two-factor/?next=%2Fadmin%2F"
    client.get(response["Location"])
    device = TOTPDevice.objects.get(user=cast.admin)
    response = client.post(response["Location"], {"code": key_code(device.bin_key)})
    assert response["Location"] == "/admin/"
    assert client.get("/admin/").status_code == 200


def test_the_admin_signs_in_through_the_dashboard(cast):
    response = Client().get("/admin/login/?next=/admin/accounts/patient/")
    assert response.status_code == 302
    assert response["Location"] == "/dashboard/login/?next=/admin/accounts/patient/"


def test_a_clinician_who_is_not_staff_is_refused_the_admin(cast):
    client = Client()
    client.force_login(cast.clinician)
    assert client.get("/admin/login/").status_code == 403


def test_without_the_requirement_the_admin_takes_a_password_only_session(cast):
    client = Client()
    client.force_login(cast.admin)
    assert client.get("/admin/").status_code == 200
