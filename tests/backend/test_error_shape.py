import json

import pytest
from django.test import Client
from rest_framework.test import APIClient

pytestmark = pytest.mark.django_db

ONE_MIB = 1024 * 1024


def _error(response) -> dict:
    assert response["Content-Type"].startswith("application/json"), response["Content-Type"]
    body = response.json()
    assert set(body) == {"error"}
    assert {"code", "message"} <= set(body["error"])
    return body["error"]


def test_unknown_api_route_is_404_in_error_shape():
    response = APIClient().get("/api/v1/no-such-thing/")
    assert response.status_code == 404
    assert _error(response)["code"] == "not_found"


def test_wrong_method_on_api_route_is_405_in_error_shape(clients):
    response = clients.patient.put("/api/v1/me/", {}, format="json")
    assert response.status_code == 405
    assert _error(response)["code"] == "method_not_allowed"


def test_wrong_method_on_plain_django_view_is_405_in_error_shape():
    response = Client().post("/healthz")
    assert response.status_code == 405
    assert _error(response)["code"] == "method_not_allowed"
    assert response["Allow"] == "GET"


def test_malformed_json_is_400(db):
    response = Client().post("/api/v1/auth/token/", data=b'{"email": ', content_type="application/json")
    assert response.status_code == 400
    assert _error(response)["code"] == "validation_error"


@pytest.mark.parametrize("path", ["/api/v1/auth/token/", "/api/v1/auth/enroll/", "/api/v1/entries/sync/"])
def test_json_nested_thousands_deep_is_400_not_500(clients, path):
    client = Client(
        raise_request_exception=False, HTTP_AUTHORIZATION=clients.patient._credentials["HTTP_AUTHORIZATION"]
    )
    body = "[" * 100_000 + "]" * 100_000  # 200 KB: under the body limit, over the parser's recursion
    response = client.post(path, data=body, content_type="application/json")
    assert response.status_code == 400, response.content
    assert "nested too deeply" in _error(response)["message"]


def test_validation_errors_carry_fields_and_field_codes(db):
    response = APIClient().post("/api/v1/auth/enroll/", {"code": "x", "email": "not-an-email"}, format="json")
    error = _error(response)
    assert error["code"] == "validation_error"
    assert error["fields"]["email"] and error["field_codes"]["email"] == ["invalid"]
    assert error["field_codes"]["password"] == ["required"]


@pytest.mark.parametrize(
    "content_type",
    [
        "application/json",
        "application/json; charset=utf-16",
        "application/json; charset=latin-1",
        "application/json; charset=bogus",
        "text/plain",
    ],
)
def test_body_over_one_mib_is_413_before_parsing_whatever_the_charset(db, content_type):
    body = b'{"email": "' + b"a" * (ONE_MIB + 10) + b'"}'
    # generic() sends the bytes as they are; post() would re-encode them in the declared charset.
    response = Client().generic("POST", "/api/v1/auth/token/", data=body, content_type=content_type)
    assert response.status_code == 413
    assert _error(response)["code"] == "payload_too_large"


def test_body_at_the_limit_is_parsed(db):
    padding = ONE_MIB - 100
    body = json.dumps({"email": "a@example.org", "password": "p", "otp": "", "pad": "x" * padding}).encode()
    assert len(body) <= ONE_MIB
    response = Client().post("/api/v1/auth/token/", data=body, content_type="application/json")
    assert response.status_code == 401


@pytest.mark.parametrize("charset", ["utf-16", "bogus", "utf-7", "latin-1"])
def test_non_utf8_charset_is_415_not_500(db, charset):
    response = Client().generic(
        "POST",
        "/api/v1/auth/token/",
        data=json.dumps({"email": "a@example.org", "password": "p"}).encode("utf-8"),
        content_type=f"application/json; charset={charset}",
    )
    assert response.status_code == 415
    assert _error(response)["code"] == "unsupported_media_type"


def test_compressed_body_is_refused(db):
    response = Client().post(
        "/api/v1/auth/token/", data=b"\x1f\x8b", content_type="application/json", HTTP_CONTENT_ENCODING="gzip"
    )
    assert response.status_code == 415


def test_bad_content_length_is_400(db):
    response = Client().generic(
        "POST", "/api/v1/auth/token/", data=b"{}", content_type="application/json", CONTENT_LENGTH="-5"
    )
    assert response.status_code == 400


def test_old_app_version_gets_426(clients, settings):
    settings.MIN_APP_VERSION = "2.1.0"
    old = clients.patient.get("/api/v1/me/", HTTP_X_APP_VERSION="2.0.9")
    assert old.status_code == 426
    assert _error(old)["code"] == "upgrade_required"
    assert clients.patient.get("/api/v1/me/", HTTP_X_APP_VERSION="2.1").status_code == 200
    assert clients.patient.get("/api/v1/me/", HTTP_X_APP_VERSION="10.0.0").status_code == 200
    assert clients.patient.get("/api/v1/me/").status_code == 200  # the dashboard sends no version
    assert clients.patient.get("/api/v1/me/", HTTP_X_APP_VERSION="banana").status_code == 400


@pytest.fixture
def crash_client(settings):
    settings.ROOT_URLCONF = "tests.backend.crash_urls"
    client = Client(raise_request_exception=False)
    return client


def test_crash_in_drf_view_is_500_in_error_shape(crash_client):
    response = crash_client.post("/api/v1/test-crash/", {"note": "x"}, content_type="application/json")
    assert response.status_code == 500
    assert _error(response) == {"code": "server_error", "message": "Internal server error."}


def test_crash_in_plain_view_is_500_in_error_shape(crash_client):
    response = crash_client.get("/api/v1/test-plain-crash/")
    assert response.status_code == 500
    assert _error(response)["code"] == "server_error"


def test_html_error_from_django_is_reshaped(crash_client):
    response = crash_client.get("/api/v1/test-html-error/")
    assert response.status_code == 502
    assert _error(response)["code"] == "error"


def test_dashboard_errors_stay_html(db):
    response = Client().get("/dashboard/no-such-page/")
    assert response.status_code == 404
    assert response["Content-Type"].startswith("text/html")


def test_write_throttle_answers_429_with_retry_after(clients, monkeypatch):
    from backend.api.throttles import UserWriteThrottle

    monkeypatch.setattr(UserWriteThrottle, "THROTTLE_RATES", {"user_write": "2/min"})
    codes = [clients.patient.patch("/api/v1/me/", {"display_name": "P"}, format="json").status_code for _ in range(3)]
    assert codes == [200, 200, 429]
    response = clients.patient.patch("/api/v1/me/", {"display_name": "P"}, format="json")
    assert _error(response)["code"] == "throttled"
    assert 1 <= int(response["Retry-After"]) <= 60
    # Reads are not write-throttled.
    assert clients.patient.get("/api/v1/me/").status_code == 200


@pytest.mark.parametrize(
    ("path", "body", "limit"),
    [
        ("/api/v1/auth/enroll/", {"code": "AAAA-BBBB-CCCC", "email": "x@example.org", "password": "pw-long-enough-123",
                                  "consent_version": "1"}, 20),
        ("/api/v1/auth/password-reset/", {"email": "victim@example.org"}, 5),
    ],
)  # fmt: skip
def test_per_address_throttles_count_the_caller_not_a_forwarded_for_it_chose(db, settings, path, body, limit):
    """Code guessing and reset-mail floods stay limited whatever X-Forwarded-For a caller invents;
    behind a trusted proxy, the address that proxy appended is the one counted."""
    client = APIClient()
    codes = [
        client.post(path, body, format="json", HTTP_X_FORWARDED_FOR=f"10.0.0.{n}").status_code for n in range(limit + 1)
    ]
    assert codes[:limit].count(429) == 0 and codes[limit] == 429
    settings.TRUSTED_PROXY_COUNT = 1  # now the proxy's entry is the caller: a new one is not throttled
    assert client.post(path, body, format="json", HTTP_X_FORWARDED_FOR="10.9.9.9").status_code != 429
    assert client.post(path, body, format="json", HTTP_X_FORWARDED_FOR="10.0.0.1, 10.0.0.2").status_code != 429


def test_request_id_is_echoed(db):
    response = Client().get("/healthz", HTTP_X_REQUEST_ID="abc12345-trace")
    assert response["X-Request-ID"] == "abc12345-trace"
    generated = Client().get("/healthz", HTTP_X_REQUEST_ID="bad id with spaces")["X-Request-ID"]
    assert len(generated) == 32


# --- Found by the schema fuzzer (tests/fuzz): list parameters the schema declares -----------------


@pytest.mark.parametrize("url", ["/api/v1/entries/", "/api/v1/reminders/", "/api/v1/me/access-log/"])
def test_an_unreadable_cursor_is_a_400_not_a_404(clients, url):
    response = clients.patient.get(url, {"cursor": "not-a-cursor"})
    assert response.status_code == 400
    assert response.json()["error"]["field_codes"] == {"cursor": ["invalid_cursor"]}


@pytest.mark.parametrize("page_size", ["x", "0", "-3", "2.5", "9" * 5000])
def test_a_page_size_that_is_not_a_whole_number_is_a_400(clients, page_size):
    response = clients.patient.get("/api/v1/entries/", {"page_size": page_size})
    assert response.status_code == 400
    assert response.json()["error"]["field_codes"] == {"page_size": ["invalid"]}


def test_an_empty_or_oversized_page_size_gives_the_default_and_the_cap(clients):
    assert clients.patient.get("/api/v1/entries/", {"page_size": ""}).status_code == 200
    assert clients.patient.get("/api/v1/entries/", {"page_size": "5000"}).status_code == 200


def test_the_schema_says_what_lists_and_times_accept(db):
    schema = APIClient().get("/api/schema/", {"format": "json"}).json()
    parameters = {p["name"]: p for p in schema["paths"]["/api/v1/entries/"]["get"]["parameters"]}
    # `?kind=` is how a form sends a field left empty: every optional query parameter takes it as absent.
    assert all(p.get("allowEmptyValue") for p in parameters.values())
    assert parameters["page_size"]["schema"] == {"type": "integer", "minimum": 1}
    # "20:00" is not an OpenAPI `format: time` (that needs seconds and an offset).
    components = schema["components"]["schemas"]
    for time in (components["Schedule"]["properties"]["time"], components["QuietHours"]["properties"]["start"]):
        assert "format" not in json.dumps(time) and "pattern" in json.dumps(time)
