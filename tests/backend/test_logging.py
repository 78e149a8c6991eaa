"""Logs are JSON lines with a request id; request bodies, notes and passwords never reach them."""

import json

import pytest
from django.test import Client

SECRET = "my-secret-note-about-relapse-7f3a"


@pytest.mark.django_db
def test_request_line_is_json_with_request_id_and_no_body(log_lines, settings):
    settings.ROOT_URLCONF = "tests.backend.crash_urls"
    client = Client(raise_request_exception=False)
    client.post(
        "/api/v1/auth/token/",
        {"email": "x@example.org", "password": SECRET, "note": SECRET},
        content_type="application/json",
        HTTP_X_REQUEST_ID="trace-0001-abcd",
    )
    client.post("/api/v1/auth/enroll/", {"code": SECRET, "email": "bad"}, content_type="application/json")
    client.post("/api/v1/test-crash/", {"note": SECRET}, content_type="application/json")  # a 500 with the body
    lines = log_lines()
    request_lines = [line for line in lines if line["logger"] == "interlude.request"]
    assert len(request_lines) == 3
    first = request_lines[0]
    assert first["request_id"] == "trace-0001-abcd"
    assert first["method"] == "POST" and first["path"] == "/api/v1/auth/token/" and first["status"] == 401
    assert isinstance(first["duration_ms"], float)
    assert request_lines[2]["status"] == 500
    everything = json.dumps(lines)
    assert "Internal Server Error" in everything  # the crash was logged, with where it happened...
    crash = next(line for line in lines if line.get("exc_type"))
    assert crash["exc_type"] == "builtins.RuntimeError"
    assert "crash_urls.py" in crash["exc_trace"]
    assert SECRET not in everything  # ...but never what the request carried
