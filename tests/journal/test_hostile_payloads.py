"""Property tests: random and hostile payloads never get a 500 (SPEC §3: a clear 4xx, never a 500)."""

import json
import math

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from journal.models import COPING, TRIGGERS
from tests.timeutil import iso_ago

pytestmark = pytest.mark.django_db

hostile_scalars = st.one_of(
    st.none(),
    st.booleans(),
    st.integers(min_value=-(2**70), max_value=2**70),
    st.floats(allow_nan=True, allow_infinity=True),
    st.just(math.nan),
    st.text(max_size=30),
    st.text(alphabet=st.characters(codec="utf-8"), max_size=10).map(lambda s: s + "\x00"),
    st.sampled_from(
        [
            "2026-11-28T09:00:00",  # naive
            "2026-11-28T09:00:00Z",
            "2026-11-28T09:00:00+14:00",
            "9999-12-31T23:59:59Z",
            "0001-01-01T00:00:00Z",
            "2026-02-30T10:00:00Z",
            "yesterday",
            "5",
            "",
            "check_in",
            "use",
            "alcohol",
            "stress",
        ]
    ),
)
hostile_values = st.recursive(
    hostile_scalars,
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=8), inner, max_size=4),
    max_leaves=8,
)
entry_fields = st.sampled_from(
    [
        "id", "kind", "occurred_at", "craving", "mood", "anxiety", "sleep_hours", "substance", "amount",
        "triggers", "coping", "note", "prompt_id", "base_version", "patient", "version", "local_date", "unknown",
    ]
)  # fmt: skip
plausible = {
    "kind": st.sampled_from(["check_in", "craving", "use", "other"]),
    "craving": st.integers(-2, 12),
    "mood": st.integers(-2, 12),
    "triggers": st.lists(st.sampled_from([*TRIGGERS, "zombies"]), max_size=12),
    "coping": st.lists(st.sampled_from([*COPING, "nope"]), max_size=12),
    "sleep_hours": st.floats(-1, 30),
}
entry_payloads = st.dictionaries(entry_fields, hostile_values, max_size=10) | st.fixed_dictionaries(
    {"occurred_at": st.just("2026-11-28T09:00:00Z")},
    optional={key: strategy | hostile_values for key, strategy in plausible.items()},
)
any_json = st.one_of(entry_payloads, hostile_values)

FUZZ = settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])


def send(client, method: str, url: str, payload, **headers):
    """Raw JSON, NaN and Infinity included (the test client's renderer would refuse them)."""
    body = json.dumps(payload, allow_nan=True)
    return getattr(client, method)(url, body, content_type="application/json", **headers)


def _assert_clear_answer(response):
    assert response.status_code < 500, response.content[:500]
    if response.status_code >= 400:
        body = response.json()
        assert set(body) == {"error"} and body["error"]["code"], body


@FUZZ
@given(payload=any_json)
def test_entry_create_never_500s(clients, payload):
    _assert_clear_answer(send(clients.patient, "post", "/api/v1/entries/", payload))


@FUZZ
@given(items=st.lists(any_json, max_size=6) | hostile_values)
def test_sync_never_500s(clients, items):
    response = send(clients.patient, "post", "/api/v1/entries/sync/", {"entries": items})
    _assert_clear_answer(response)
    if response.status_code == 200:
        assert len(response.json()["results"]) == len(items)


@FUZZ
@given(payload=any_json, if_match=st.one_of(st.none(), st.text(max_size=8)))
def test_entry_edit_never_500s(clients, payload, if_match):
    created = clients.patient.post(
        "/api/v1/entries/", {"kind": "craving", "craving": 3, "occurred_at": "2026-11-28T08:00:00Z"}, format="json"
    )
    headers = {"HTTP_IF_MATCH": if_match} if if_match is not None else {}
    url = f"/api/v1/entries/{created.json()['id']}/"
    _assert_clear_answer(send(clients.patient, "patch", url, payload, **headers))


@FUZZ
@given(params=st.dictionaries(st.sampled_from(["from", "to", "kind", "cursor", "page_size"]), st.text(max_size=12)))
def test_entry_reads_never_500(clients, params):
    _assert_clear_answer(clients.patient.get("/api/v1/entries/", params))
    _assert_clear_answer(clients.patient.get("/api/v1/entries/changes/", params))


@FUZZ
@given(payload=any_json)
def test_profile_and_auth_never_500(clients, payload):
    _assert_clear_answer(send(clients.patient, "patch", "/api/v1/me/", payload))
    for url in ("/api/v1/auth/token/", "/api/v1/auth/enroll/", "/api/v1/auth/token/refresh/"):
        _assert_clear_answer(send(clients.anonymous, "post", url, payload))


# --- Found by the schema fuzzer (tests/fuzz): text and ids are JSON strings, nothing else -------


@pytest.mark.parametrize(
    "field, value",
    [("note", 0), ("note", 1.5), ("amount", 7), ("prompt_id", False), ("prompt_id", 5), ("id", 12345)],
)
def test_entry_text_and_ids_must_be_json_strings(clients, field, value):
    # DRF would have stored 0 as the note "0" and read false as the UUID 00000000-0000-…
    payload = {"kind": "craving", "craving": 3, "occurred_at": iso_ago(hours=1), field: value}
    response = send(clients.patient, "post", "/api/v1/entries/", payload)
    assert response.status_code == 400, response.content
    assert response.json()["error"]["field_codes"] == {field: ["invalid"]}


def test_session_and_alert_notes_must_be_json_strings(cast, clients):
    sessions = f"/api/v1/patients/{cast.patient.id}/sessions/"
    session = {"kind": "psychotherapy", "starts_at": iso_ago(days=2), "duration_minutes": 50, "notes": 0}
    assert send(clients.clinician, "post", sessions, session).json()["error"]["field_codes"] == {"notes": ["invalid"]}
    send(
        clients.patient,
        "post",
        "/api/v1/entries/",
        {"kind": "use", "substance": "alcohol", "occurred_at": "2026-11-28T08:00:00Z"},
    )
    alert = clients.clinician.get("/api/v1/alerts/").json()["results"][0]
    for step in ("acknowledge", "resolve"):
        response = send(clients.clinician, "post", f"/api/v1/alerts/{alert['id']}/{step}/", {"note": 0})
        assert response.status_code == 400, response.content
        assert response.json()["error"]["field_codes"] == {"note": ["invalid"]}
