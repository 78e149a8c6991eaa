"""Audit D's confirmed defects, held fixed: a password set or an account deactivated in the Django
admin ends the user's API sign-ins for good (SPEC §4); a clinic admin never reaches a superuser
(SPEC §1); a refused reset email keeps the address out of the logs (SPEC §13); the reset link opens
a page that sets the password; the access log offers no Change or Delete (SPEC §11); `make run`
writes no gunicorn access log."""

import io
import json
import logging
import smtplib
from urllib.parse import urlsplit

import pytest
from django.core import mail
from django.test import Client
from rest_framework.test import APIClient

from accounts.models import AccessLog, SignIn, User
from backend.jsonlog import JsonFormatter, RequestIdFilter
from tests.accounts.test_admin_access import _browser
from tests.conftest import sign_in
from tests.factories import PASSWORD, ClinicianFactory

pytestmark = pytest.mark.django_db

NEW_PASSWORD = "admin-chosen-passphrase-1"


def _refreshes(tokens: dict) -> bool:
    response = APIClient().post("/api/v1/auth/token/refresh/", {"refresh": tokens["refresh"]}, format="json")
    return response.status_code == 200


def _reads_me(tokens: dict) -> bool:
    client = APIClient()
    client.credentials(HTTP_AUTHORIZATION=f"Bearer {tokens['access']}")
    return client.get("/api/v1/me/").status_code == 200


def _change_form(user: User, **changes) -> dict:
    """A clinician's change form as a clinic admin's browser posts it (checkboxes: present = on)."""
    fields = {"email": user.email, "display_name": user.display_name, "is_active": "on", **changes}
    return {key: value for key, value in fields.items() if value is not None}


# --- F1: passwords and deactivation in the admin end API sign-ins ------------------------------


def test_admin_setting_a_clinicians_password_ends_their_api_sign_ins(cast):
    stolen_laptop = sign_in(APIClient(), cast.clinician.email)
    response = _browser(cast.admin).post(
        f"/admin/accounts/user/{cast.clinician.pk}/password/",
        {"password1": NEW_PASSWORD, "password2": NEW_PASSWORD, "usable_password": "true"},
    )
    assert response.status_code == 302
    cast.clinician.refresh_from_db()
    assert cast.clinician.check_password(NEW_PASSWORD)
    assert not _refreshes(stolen_laptop)
    assert not _reads_me(stolen_laptop)
    assert SignIn.objects.get(user=cast.clinician).revoked_reason == "admin_password_set"
    sign_in(APIClient(), cast.clinician.email, NEW_PASSWORD)  # the new password works


def test_own_password_change_in_the_admin_ends_api_sign_ins(cast):
    elsewhere = sign_in(APIClient(), cast.admin.email)
    browser = _browser(cast.admin)
    response = browser.post(
        "/admin/password_change/",
        {"old_password": PASSWORD, "new_password1": NEW_PASSWORD, "new_password2": NEW_PASSWORD},
    )
    assert response.status_code == 302
    assert not _refreshes(elsewhere)
    assert browser.get("/admin/").status_code == 200  # the browser that changed it stays signed in


def test_a_wrong_current_password_in_the_admin_revokes_nothing(cast):
    tokens = sign_in(APIClient(), cast.admin.email)
    response = _browser(cast.admin).post(
        "/admin/password_change/",
        {"old_password": "wrong", "new_password1": NEW_PASSWORD, "new_password2": NEW_PASSWORD},
    )
    assert response.status_code == 200  # the form again, with its error
    assert _refreshes(tokens)


def test_deactivating_in_the_admin_ends_sign_ins_and_reactivating_does_not_revive_them(cast):
    tokens = sign_in(APIClient(), cast.clinician.email)
    admin = _browser(cast.admin)
    change = f"/admin/accounts/user/{cast.clinician.pk}/change/"
    assert admin.post(change, _change_form(cast.clinician, is_active=None)).status_code == 302
    cast.clinician.refresh_from_db()
    assert not cast.clinician.is_active
    assert admin.post(change, _change_form(cast.clinician)).status_code == 302
    cast.clinician.refresh_from_db()
    assert cast.clinician.is_active
    assert not _refreshes(tokens)
    assert not _reads_me(tokens)
    sign_in(APIClient(), cast.clinician.email)  # a fresh sign-in works again


def test_reactivating_in_the_admin_revokes_sign_ins_left_by_a_deactivation_elsewhere(cast):
    tokens = sign_in(APIClient(), cast.clinician.email)
    User.objects.filter(pk=cast.clinician.pk).update(is_active=False)  # a shell, or before this fix
    cast.clinician.refresh_from_db()
    response = _browser(cast.admin).post(
        f"/admin/accounts/user/{cast.clinician.pk}/change/", _change_form(cast.clinician)
    )
    assert response.status_code == 302
    assert not _refreshes(tokens)


def test_saving_a_clinician_without_touching_active_keeps_their_sign_ins(cast):
    tokens = sign_in(APIClient(), cast.clinician.email)
    response = _browser(cast.admin).post(
        f"/admin/accounts/user/{cast.clinician.pk}/change/", _change_form(cast.clinician, display_name="Renamed")
    )
    assert response.status_code == 302
    assert _refreshes(tokens)


# --- F2: a clinic admin never reaches a superuser -----------------------------------------------


@pytest.fixture
def superuser_of_the_clinic(cast):
    return ClinicianFactory(clinic=cast.admin.clinic, is_staff=True, is_superuser=True, email="root@example.org")


def test_clinic_admin_neither_lists_nor_opens_a_superuser_of_their_clinic(cast, superuser_of_the_clinic):
    admin = _browser(cast.admin)
    assert superuser_of_the_clinic.email not in admin.get("/admin/accounts/user/").content.decode()
    assert admin.get(f"/admin/accounts/user/{superuser_of_the_clinic.pk}/change/").status_code == 302
    assert admin.get(f"/admin/accounts/user/{superuser_of_the_clinic.pk}/password/").status_code == 404


def test_clinic_admin_cannot_change_or_re_password_a_superuser(cast, superuser_of_the_clinic):
    su = superuser_of_the_clinic
    admin = _browser(cast.admin)
    admin.post(
        f"/admin/accounts/user/{su.pk}/change/",
        _change_form(su, email="taken@example.org", is_active=None, is_clinic_admin=None),
    )
    response = admin.post(
        f"/admin/accounts/user/{su.pk}/password/",
        {"password1": NEW_PASSWORD, "password2": NEW_PASSWORD, "usable_password": "true"},
    )
    assert response.status_code == 404
    su.refresh_from_db()
    assert (su.email, su.is_active, su.is_superuser) == ("root@example.org", True, True)
    assert not su.check_password(NEW_PASSWORD) and su.check_password(PASSWORD)


def test_superusers_still_manage_superusers(cast, superuser_of_the_clinic):
    other = ClinicianFactory(clinic=None, is_staff=True, is_superuser=True)
    superuser = _browser(superuser_of_the_clinic)
    assert other.email in superuser.get("/admin/accounts/user/").content.decode()
    assert superuser.get(f"/admin/accounts/user/{other.pk}/change/").status_code == 200


# --- F3: a refused reset email keeps the address out of the log ---------------------------------


@pytest.fixture
def log_output():
    stream = io.StringIO()
    handler = logging.StreamHandler(stream)
    handler.setFormatter(JsonFormatter())  # the project's own formatter
    handler.addFilter(RequestIdFilter())
    root = logging.getLogger()
    root.addHandler(handler)
    yield stream.getvalue
    root.removeHandler(handler)


def test_a_refused_reset_email_logs_the_user_id_but_not_the_address(cast, monkeypatch, log_output):
    from accounts import tasks

    address = cast.patient.user.email

    def refuse(*args, recipient_list, **kwargs):
        raise smtplib.SMTPRecipientsRefused({recipient_list[0]: (550, b"5.1.1 mailbox unavailable")})

    monkeypatch.setattr(tasks, "send_mail", refuse)
    tasks.send_password_reset_email.apply(args=[str(cast.patient.user.pk)])  # through Celery's tracer
    out = log_output()
    assert address not in out
    line = next(json.loads(text) for text in out.splitlines() if "reset email not sent" in text)
    assert line["user_id"] == str(cast.patient.user.pk)
    assert "SMTPRecipientsRefused" in line["message"]


# --- F4: the reset link opens a page that sets the password ------------------------------------


def _emailed_reset_path(user: User) -> str:
    from accounts.tasks import send_password_reset_email

    send_password_reset_email(str(user.pk))
    link = next(word for word in mail.outbox[-1].body.split() if "token=" in word)
    parts = urlsplit(link)
    return f"{parts.path}?{parts.query}"


def test_the_emailed_reset_link_opens_a_form_holding_the_token(cast):
    path = _emailed_reset_path(cast.patient.user)
    response = Client().get(path)
    assert response.status_code == 200
    assert response.context["form"]["token"].value() == path.split("token=")[1]
    page = response.content.decode()
    assert 'name="password1"' in page and 'autocomplete="new-password"' in page


def test_the_reset_page_sets_the_password_and_ends_every_sign_in(cast):
    user = cast.patient.user
    phone = sign_in(APIClient(), user.email)
    path = _emailed_reset_path(user)
    browser = Client(enforce_csrf_checks=True)
    form = browser.get(path)
    token = form.context["form"]["token"].value()
    response = browser.post(
        "/dashboard/reset-password/",
        {
            "csrfmiddlewaretoken": form.context["csrf_token"],
            "token": token,
            "password1": "a-new-long-passphrase-9",
            "password2": "a-new-long-passphrase-9",
        },
    )
    assert response.status_code == 200 and response.context["done"]
    assert not _refreshes(phone)
    sign_in(APIClient(), user.email, "a-new-long-passphrase-9")
    assert not response.wsgi_request.user.is_authenticated  # the page signs nobody in
    again = browser.post(
        "/dashboard/reset-password/",
        {
            "csrfmiddlewaretoken": form.context["csrf_token"],
            "token": token,
            "password1": "x" * 12 + "-other-9",
            "password2": "x" * 12 + "-other-9",
        },
    )
    assert "not valid or has expired" in again.content.decode()  # single use


def test_the_reset_page_says_what_is_wrong_and_changes_nothing(cast):
    user = cast.clinician
    token = _emailed_reset_path(user).split("token=")[1]
    client = Client()
    differ = client.post(
        "/dashboard/reset-password/",
        {"token": token, "password1": "a-long-passphrase-1", "password2": "a-long-passphrase-2"},
    )
    assert differ.context["form"].errors["password2"]
    weak = client.post("/dashboard/reset-password/", {"token": token, "password1": "password", "password2": "password"})
    assert weak.context["form"].errors["password1"]
    forged = client.post(
        "/dashboard/reset-password/",
        {"token": "0" * 32 + ".abc-def", "password1": "a-long-passphrase-1", "password2": "a-long-passphrase-1"},
    )
    assert "not valid or has expired" in forged.content.decode()
    missing = Client().get("/dashboard/reset-password/")
    assert missing.status_code == 200
    user.refresh_from_db()
    assert user.check_password(PASSWORD)


# --- F7: the access log offers no Change or Delete, to superusers either ------------------------


def test_superuser_gets_no_delete_or_change_on_access_log_rows(cast, clients):
    clients.clinician.get(f"/api/v1/patients/{cast.patient.id}/")
    row = AccessLog.objects.get()
    browser = Client(raise_request_exception=False)
    assert browser.login(email=ClinicianFactory(clinic=None, is_staff=True, is_superuser=True).email, password=PASSWORD)
    assert browser.post(f"/admin/accounts/accesslog/{row.pk}/delete/", {"post": "yes"}).status_code == 403
    assert browser.post(f"/admin/accounts/accesslog/{row.pk}/change/", {}).status_code == 403
    assert browser.get(f"/admin/accounts/accesslog/{row.pk}/change/").status_code == 200  # still readable
    listing = browser.get("/admin/accounts/accesslog/")
    assert listing.status_code == 200
    assert "delete_selected" not in listing.content.decode()
    bulk = browser.post(
        "/admin/accounts/accesslog/", {"action": "delete_selected", "_selected_action": [row.pk], "post": "yes"}
    )
    assert bulk.status_code < 500
    assert AccessLog.objects.filter(pk=row.pk).exists()


def test_guesses_at_ones_own_password_in_the_admin_count_against_the_lockout(cast, settings):
    """As at POST /api/v1/me/password/: an unattended signed-in browser must not try without limit."""
    browser = Client()
    browser.force_login(cast.admin)
    wrong = {
        "old_password": "wrong",
        "new_password1": "a-new-long-passphrase",
        "new_password2": "a-new-long-passphrase",
    }
    for _ in range(settings.LOGIN_MAX_FAILURES):
        assert "old_password" in browser.post("/admin/password_change/", wrong).context["form"].errors
    locked = browser.post("/admin/password_change/", {**wrong, "old_password": PASSWORD})
    assert "Too many wrong passwords" in str(locked.context["form"].errors["old_password"])
    assert cast.admin.__class__.objects.get(pk=cast.admin.pk).check_password(PASSWORD)  # unchanged
