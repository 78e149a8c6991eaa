"""Security headers and cookie flags under production settings (HTTPS on), on every kind of
response: API JSON 200, API errors, dashboard pages, the sign-in page, a static file, and the
page that shows an enrollment code.

`manage.py check --deploy` with production environment variables is already held clean (no
warning at any level) by tests/backend/test_settings.py::test_check_deploy_is_clean_with_production_settings."""

import pytest
from django.test import Client
from rest_framework.test import APIClient

from tests.factories import PASSWORD

pytestmark = pytest.mark.django_db

HSTS = "max-age=31536000; includeSubDomains; preload"


@pytest.fixture
def production(settings):
    """HTTPS as in production: the test run only turns the redirect off because the test client
    speaks plain HTTP. Middleware reads these when a client first builds it, so every client here
    is made after this fixture."""
    settings.SECURE_SSL_REDIRECT = True
    settings.DASHBOARD_REQUIRE_2FA = False  # force_login stands in for the whole dashboard sign-in
    settings.WHITENOISE_USE_FINDERS = True  # the test run has no collectstatic; serve the apps' files
    return settings


def _api_as(user) -> APIClient:
    client = APIClient()
    body = {"email": user.email, "password": PASSWORD}
    tokens = client.post("/api/v1/auth/token/", body, format="json", secure=True).json()
    client.credentials(HTTP_AUTHORIZATION=f"Bearer {tokens['access']}")
    return client


def _browser(user=None) -> Client:
    client = Client()
    if user is not None:
        client.force_login(user)
    return client


def _responses(cast) -> dict:
    patient_api = _api_as(cast.patient.user)
    clinician_api = _api_as(cast.clinician)
    clinician_browser = _browser(cast.clinician)
    return {
        "API JSON 200": patient_api.get("/api/v1/me/", secure=True),
        "API list with patient data": patient_api.get("/api/v1/entries/", secure=True),
        "API clinician read": clinician_api.get(f"/api/v1/patients/{cast.patient.id}/", secure=True),
        "API 401": Client().get("/api/v1/me/", secure=True),
        "API 403": patient_api.get("/api/v1/alerts/", secure=True),
        "API 404": patient_api.get("/api/v1/entries/00000000-0000-4000-8000-000000000000/", secure=True),
        "API 400": patient_api.post("/api/v1/entries/", {}, format="json", secure=True),
        "dashboard page": clinician_browser.get("/dashboard/", secure=True),
        "dashboard patient page": clinician_browser.get(f"/dashboard/patients/{cast.patient.id}/", secure=True),
        "enrollment code page": clinician_browser.post(
            f"/dashboard/patients/{cast.patient.id}/enrollment/", secure=True
        ),
        "sign-in page": Client().get("/dashboard/login/", secure=True),
        "static file": Client().get("/static/dashboard/dashboard.css", secure=True),
    }


HTML = ("dashboard page", "dashboard patient page", "enrollment code page", "sign-in page")


def test_every_kind_of_response_carries_the_security_headers(cast, production):
    responses = _responses(cast)
    expected_status = {"API 401": 401, "API 403": 403, "API 404": 404, "API 400": 400}
    for kind, response in responses.items():
        assert response.status_code == expected_status.get(kind, 200), (kind, response.status_code)
        assert response["Strict-Transport-Security"] == HSTS, kind
        assert response["X-Content-Type-Options"] == "nosniff", kind
        assert response["Referrer-Policy"] == "same-origin", kind
        if kind != "static file":  # a stylesheet cannot be framed into a clickjacking page
            assert response["X-Frame-Options"] == "DENY", kind


def test_html_pages_have_a_content_security_policy_without_inline_script(cast, production):
    responses = _responses(cast)
    for kind in HTML:
        policy = dict(
            directive.strip().split(" ", 1)
            for directive in responses[kind]["Content-Security-Policy"].split(";")
            if directive.strip()
        )
        assert policy["default-src"] == "'self'", kind
        assert policy["script-src"] == "'self'", kind  # no 'unsafe-inline', no CDN
        assert policy["frame-ancestors"] == "'none'", kind
        assert policy["object-src"] == "'none'", kind
        assert policy["base-uri"] == "'self'", kind
        assert policy["form-action"] == "'self'", kind


def test_no_cache_keeps_a_copy_of_anything_but_static_files(cast, production):
    # Patient data, codes and errors alike: no browser, proxy or shared cache may store them.
    for kind, response in _responses(cast).items():
        if kind == "static file":
            assert "no-store" not in response.get("Cache-Control", ""), kind
            continue
        assert "no-store" in response["Cache-Control"], kind
        assert "private" in response["Cache-Control"] or kind in ("sign-in page",), kind


def test_plain_http_is_redirected_to_https(cast, production):
    for path in ("/api/v1/me/", "/dashboard/login/"):
        response = Client().get(path)
        assert response.status_code == 301, path
        assert response["Location"] == f"https://testserver{path}"


def test_session_and_csrf_cookies_are_secure_http_only_and_same_site(cast, production):
    browser = Client(enforce_csrf_checks=True)
    page = browser.get("/dashboard/login/", secure=True)
    csrf = browser.cookies["csrftoken"]
    assert csrf["secure"] and csrf["httponly"], csrf.OutputString()
    assert csrf["samesite"] == "Lax", csrf.OutputString()

    signed_in = browser.post(
        "/dashboard/login/",
        {"username": cast.clinician.email, "password": PASSWORD, "csrfmiddlewaretoken": csrf.value},
        secure=True,
        HTTP_REFERER="https://testserver/dashboard/login/",  # HTTPS POSTs must come from our own pages
    )
    assert signed_in.status_code == 302, page.status_code
    session = browser.cookies["sessionid"]
    assert session["secure"] and session["httponly"], session.OutputString()
    assert session["samesite"] == "Lax", session.OutputString()
