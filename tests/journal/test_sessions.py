from datetime import UTC, date, datetime, timedelta
from decimal import Decimal

import pytest
from django.db import connection

from accounts.models import AccessLog
from journal.models import TherapySession
from journal.services.sessions import session_create

pytestmark = pytest.mark.django_db

KETAMINE = {
    "kind": "ketamine",
    "starts_at": "2026-03-10T09:30:00-04:00",
    "duration_minutes": 120,
    "route": "im",
    "dose_mg": 52.5,
    "notes": "Tolerated well; vivid imagery of the old flat.",
}


def _url(patient, session=None) -> str:
    base = f"/api/v1/patients/{patient.id}/sessions/"
    return f"{base}{session.id}/" if session else base


def _session(patient, clinician, **fields) -> TherapySession:
    data = {"kind": "psychotherapy", "starts_at": datetime(2026, 3, 10, 14, tzinfo=UTC), "duration_minutes": 50}
    return session_create(patient=patient, created_by=clinician, data={**data, **fields})


def _field_codes(response) -> dict:
    assert response.status_code == 400, response.content
    return response.json()["error"]["field_codes"]


# --- The care team keeps the sessions ------------------------------------------------------------


def test_care_team_schedules_a_ketamine_session_and_reads_it_back(cast, clients):
    response = clients.clinician.post(_url(cast.patient), KETAMINE, format="json")
    assert response.status_code == 201, response.content
    body = response.json()
    assert body["kind"] == "ketamine"
    assert body["starts_at"] == "2026-03-10T13:30:00Z"
    assert body["local_date"] == "2026-03-10"
    assert body["duration_minutes"] == 120
    assert (body["route"], body["dose_mg"]) == ("im", 52.5)
    assert body["notes"] == KETAMINE["notes"]
    assert "created_by" not in body
    stored = TherapySession.objects.get(pk=body["id"])
    assert (stored.patient, stored.created_by) == (cast.patient, cast.clinician)

    detail = clients.clinician.get(f"{_url(cast.patient)}{body['id']}/")
    assert detail.status_code == 200
    assert detail.json() == body


def test_a_session_other_than_ketamine_needs_no_route_or_dose(cast, clients):
    response = clients.clinician.post(
        _url(cast.patient),
        {"kind": "integration", "starts_at": "2026-03-11T10:00:00Z", "duration_minutes": 60},
        format="json",
    )
    assert response.status_code == 201, response.content
    assert (response.json()["route"], response.json()["dose_mg"], response.json()["notes"]) == (None, None, "")


def test_session_list_is_earliest_first_and_cursor_paginated(cast, clients):
    for day in (12, 3, 7):
        _session(cast.patient, cast.clinician, starts_at=datetime(2026, 3, day, 15, tzinfo=UTC))
    body = clients.clinician.get(_url(cast.patient)).json()
    assert [row["local_date"] for row in body["results"]] == ["2026-03-03", "2026-03-07", "2026-03-12"]
    assert body["next"] is None

    first = clients.clinician.get(_url(cast.patient), {"page_size": 2}).json()
    assert [row["local_date"] for row in first["results"]] == ["2026-03-03", "2026-03-07"]
    rest = clients.clinician.get(first["next"]).json()
    assert [row["local_date"] for row in rest["results"]] == ["2026-03-12"]


def test_patch_changes_only_the_given_fields(cast, clients):
    session = _session(cast.patient, cast.clinician, notes="First note.")
    response = clients.clinician.patch(_url(cast.patient, session), {"duration_minutes": 75}, format="json")
    assert response.status_code == 200, response.content
    assert response.json()["duration_minutes"] == 75
    assert response.json()["notes"] == "First note."
    assert response.json()["starts_at"] == "2026-03-10T14:00:00Z"


def test_moving_a_session_moves_its_journal_day(cast, clients):
    session = _session(cast.patient, cast.clinician)
    response = clients.clinician.patch(
        _url(cast.patient, session), {"starts_at": "2026-03-20T23:30:00-04:00"}, format="json"
    )
    assert response.status_code == 200, response.content
    assert response.json()["starts_at"] == "2026-03-21T03:30:00Z"
    assert response.json()["local_date"] == "2026-03-20"
    session.refresh_from_db()
    assert session.local_date == date(2026, 3, 20)


def test_care_team_deletes_a_session(cast, clients):
    session = _session(cast.patient, cast.clinician)
    assert clients.clinician.delete(_url(cast.patient, session)).status_code == 204
    assert clients.clinician.get(_url(cast.patient, session)).status_code == 404
    assert clients.clinician.get(_url(cast.patient)).json()["results"] == []
    assert clients.patient.get("/api/v1/sessions/").json()["results"] == []
    # Kept for its prompts' history (tests/reminders/test_deletion_keeps_history.py), read by nobody.
    assert TherapySession.objects.get(pk=session.pk).deleted_at is not None
    for response in (
        clients.clinician.patch(_url(cast.patient, session), {"duration_minutes": 60}, format="json"),
        clients.clinician.delete(_url(cast.patient, session)),
    ):
        assert response.status_code == 404, response.content


def test_server_owned_fields_in_the_body_are_ignored(cast, clients):
    body = {**KETAMINE, "local_date": "1999-01-01", "id": "00000000-0000-0000-0000-000000000001"}
    response = clients.clinician.post(_url(cast.patient), body, format="json")
    assert response.status_code == 201
    assert response.json()["local_date"] == "2026-03-10"
    assert response.json()["id"] != body["id"]


# --- Journal day ---------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("zone", "starts_at", "local_date"),
    [
        ("Pacific/Kiritimati", "2026-03-10T12:00:00Z", "2026-03-11"),  # UTC+14
        ("Pacific/Pago_Pago", "2026-03-10T09:00:00Z", "2026-03-09"),  # UTC-11
    ],
)
def test_local_date_is_the_day_in_the_patients_zone(cast, clients, zone, starts_at, local_date):
    cast.patient.timezone = zone
    cast.patient.save(update_fields=["timezone"])
    body = {"kind": "medical", "starts_at": starts_at, "duration_minutes": 30}
    response = clients.clinician.post(_url(cast.patient), body, format="json")
    assert response.status_code == 201, response.content
    assert response.json()["local_date"] == local_date


@pytest.mark.parametrize(
    ("starts_at", "local_date"),
    [
        ("2026-03-08T04:30:00Z", "2026-03-07"),  # 23:30 EST the evening before
        ("2026-03-08T06:30:00Z", "2026-03-08"),  # 01:30 EST, before the clocks jump
        ("2026-03-08T07:30:00Z", "2026-03-08"),  # 03:30 EDT, just after
        ("2026-03-09T03:30:00Z", "2026-03-08"),  # 23:30 EDT
        ("2026-03-09T04:30:00Z", "2026-03-09"),  # 00:30 EDT; a fixed EST offset would still say the 8th
    ],
)
def test_local_date_follows_the_dst_change_in_new_york(cast, clients, starts_at, local_date):
    assert cast.patient.timezone == "America/New_York"
    body = {"kind": "integration", "starts_at": starts_at, "duration_minutes": 60}
    response = clients.clinician.post(_url(cast.patient), body, format="json")
    assert response.status_code == 201, response.content
    assert response.json()["local_date"] == local_date


# --- Validation ----------------------------------------------------------------------------------


def test_route_and_dose_are_rejected_for_a_session_other_than_ketamine(cast, clients):
    body = {**KETAMINE, "kind": "psychotherapy"}
    codes = _field_codes(clients.clinician.post(_url(cast.patient), body, format="json"))
    assert codes == {"route": ["only_for_ketamine"], "dose_mg": ["only_for_ketamine"]}
    assert not TherapySession.objects.exists()


def test_route_cannot_be_added_to_a_session_other_than_ketamine(cast, clients):
    session = _session(cast.patient, cast.clinician)
    codes = _field_codes(clients.clinician.patch(_url(cast.patient, session), {"route": "iv"}, format="json"))
    assert codes == {"route": ["only_for_ketamine"]}


def test_turning_a_ketamine_session_into_another_kind_must_clear_route_and_dose(cast, clients):
    session = _session(cast.patient, cast.clinician, kind="ketamine", route="iv", dose_mg=Decimal("35.0"))
    url = _url(cast.patient, session)
    codes = _field_codes(clients.clinician.patch(url, {"kind": "integration"}, format="json"))
    assert codes == {"route": ["only_for_ketamine"], "dose_mg": ["only_for_ketamine"]}
    session.refresh_from_db()
    assert session.kind == "ketamine"

    response = clients.clinician.patch(url, {"kind": "integration", "route": None, "dose_mg": None}, format="json")
    assert response.status_code == 200, response.content
    body = response.json()
    assert (body["kind"], body["route"], body["dose_mg"]) == ("integration", None, None)


def test_naive_starts_at_is_400(cast, clients):
    body = {**KETAMINE, "starts_at": "2026-03-10T09:30:00"}
    assert _field_codes(clients.clinician.post(_url(cast.patient), body, format="json")) == {"starts_at": ["naive"]}


@pytest.mark.parametrize("duration", ["60", 60.0, True, 0, 1441, None])
def test_duration_must_be_a_whole_number_of_minutes_up_to_a_day(cast, clients, duration):
    body = {**KETAMINE, "duration_minutes": duration}
    assert "duration_minutes" in _field_codes(clients.clinician.post(_url(cast.patient), body, format="json"))


@pytest.mark.parametrize("dose", ["50", -1, 2000.1, 12.25, True])
def test_dose_must_be_a_number_from_0_to_2000_with_one_decimal(cast, clients, dose):
    body = {**KETAMINE, "dose_mg": dose}
    assert "dose_mg" in _field_codes(clients.clinician.post(_url(cast.patient), body, format="json"))


def test_dose_of_nan_is_400(cast, clients):
    body = '{"kind": "ketamine", "starts_at": "2026-03-10T09:30:00Z", "duration_minutes": 60, "dose_mg": NaN}'
    response = clients.clinician.post(_url(cast.patient), body, content_type="application/json")
    assert response.status_code == 400
    assert not TherapySession.objects.exists()


def test_unknown_kind_and_route_are_400(cast, clients):
    body = {**KETAMINE, "kind": "reiki", "route": "inhaled"}
    assert set(_field_codes(clients.clinician.post(_url(cast.patient), body, format="json"))) == {"kind", "route"}


def test_notes_reject_nul_bytes_and_text_over_5000_characters(cast, clients):
    url = _url(cast.patient)
    nul = clients.clinician.post(url, {**KETAMINE, "notes": "a\x00b"}, format="json")
    assert _field_codes(nul) == {"notes": ["null_characters_not_allowed"]}
    too_long = clients.clinician.post(url, {**KETAMINE, "notes": "x" * 5001}, format="json")
    assert _field_codes(too_long) == {"notes": ["max_length"]}
    assert clients.clinician.post(url, {**KETAMINE, "notes": "x" * 5000}, format="json").status_code == 201


# --- Who sees what -------------------------------------------------------------------------------


def test_patient_reads_own_sessions_without_notes(cast, clients):
    ketamine = {"kind": "ketamine", "route": "sublingual", "dose_mg": Decimal("100")}
    _session(cast.patient, cast.clinician, notes="Private", **ketamine)
    response = clients.patient.get("/api/v1/sessions/")
    assert response.status_code == 200
    (row,) = response.json()["results"]
    assert row["kind"] == "ketamine"
    assert (row["route"], row["dose_mg"], row["local_date"]) == ("sublingual", 100.0, "2026-03-10")
    assert "notes" not in row
    assert "created_by" not in row
    assert b"Private" not in response.content


def test_patient_does_not_see_another_patients_sessions(cast, clients):
    _session(cast.patient, cast.clinician)
    _session(cast.other_patient, cast.outsider, starts_at=datetime(2026, 4, 1, 12, tzinfo=UTC))
    rows = clients.other_patient.get("/api/v1/sessions/").json()["results"]
    assert [row["local_date"] for row in rows] == ["2026-04-01"]


def test_own_sessions_route_is_for_patients(clients):
    assert clients.clinician.get("/api/v1/sessions/").status_code == 403
    assert clients.anonymous.get("/api/v1/sessions/").status_code == 401


def test_patient_token_on_clinician_session_routes_is_403(cast, clients):
    session = _session(cast.patient, cast.clinician)
    for method, url in [
        ("get", _url(cast.patient)),
        ("post", _url(cast.patient)),
        ("get", _url(cast.patient, session)),
        ("patch", _url(cast.patient, session)),
        ("delete", _url(cast.patient, session)),
    ]:
        response = getattr(clients.patient, method)(url, KETAMINE, format="json")
        assert response.status_code == 403, (method, url)
        assert response.json()["error"]["code"] == "permission_denied"
    assert TherapySession.objects.count() == 1


@pytest.mark.parametrize("who", ["outsider", "admin"])
def test_clinician_outside_the_care_team_gets_404_and_changes_nothing(cast, clients, who):
    session = _session(cast.patient, cast.clinician, notes="Unchanged")
    client = getattr(clients, who)
    for method, url in [
        ("get", _url(cast.patient)),
        ("post", _url(cast.patient)),
        ("get", _url(cast.patient, session)),
        ("patch", _url(cast.patient, session)),
        ("delete", _url(cast.patient, session)),
    ]:
        response = getattr(client, method)(url, {"notes": "Overwritten"}, format="json")
        assert response.status_code == 404, (method, url)
        assert response.json()["error"]["code"] == "not_found"
    session.refresh_from_db()
    assert session.notes == "Unchanged"
    assert not AccessLog.objects.exists()


def test_a_session_of_another_patient_is_404_under_this_patients_url(cast, clients):
    elsewhere = _session(cast.other_patient, cast.outsider)
    url = f"{_url(cast.patient)}{elsewhere.id}/"
    assert clients.clinician.get(url).status_code == 404
    assert clients.clinician.patch(url, {"duration_minutes": 5}, format="json").status_code == 404
    assert clients.clinician.delete(url).status_code == 404
    assert TherapySession.objects.get().duration_minutes == 50


def test_notes_are_encrypted_at_rest(cast, clients):
    response = clients.clinician.post(_url(cast.patient), KETAMINE, format="json")
    assert response.status_code == 201
    with connection.cursor() as cursor:
        cursor.execute("SELECT notes FROM journal_therapysession")
        (raw,) = cursor.fetchone()
    assert raw.startswith("fernet:")
    assert "imagery" not in raw


def test_every_clinician_read_writes_an_access_log_row(cast, clients):
    session = _session(cast.patient, cast.clinician)
    clients.clinician.get(_url(cast.patient))
    clients.clinician.get(_url(cast.patient, session))
    clients.clinician.patch(_url(cast.patient, session), {"duration_minutes": 45}, format="json")
    rows = AccessLog.objects.order_by("id")
    assert [(row.actor_id, row.patient_id, row.action) for row in rows] == [
        (cast.clinician.id, cast.patient.id, "view"),
        (cast.clinician.id, cast.patient.id, "view"),
        (cast.clinician.id, cast.patient.id, "update"),
    ]
    assert rows[1].path == _url(cast.patient, session)


def test_patient_reading_own_sessions_is_not_access_logged(cast, clients):
    _session(cast.patient, cast.clinician)
    clients.patient.get("/api/v1/sessions/")
    assert not AccessLog.objects.exists()


# --- Cost ----------------------------------------------------------------------------------------


def test_clinician_list_query_count_does_not_grow_with_sessions(cast, clients, django_assert_num_queries):
    start = datetime(2026, 1, 1, 15, tzinfo=UTC)
    for day in range(3):
        _session(cast.patient, cast.clinician, starts_at=start + timedelta(days=day))
    # Queries: the sign-in (with user, clinic, patient), the care-team patient with its access-log
    # row (one statement), one page of sessions.
    with django_assert_num_queries(3):
        assert len(clients.clinician.get(_url(cast.patient)).json()["results"]) == 3
    for day in range(3, 30):
        _session(cast.patient, cast.clinician, starts_at=start + timedelta(days=day))
    with django_assert_num_queries(3):
        assert len(clients.clinician.get(_url(cast.patient)).json()["results"]) == 30


def test_patient_list_query_count_does_not_grow_with_sessions(cast, clients, django_assert_num_queries):
    start = datetime(2026, 1, 1, 15, tzinfo=UTC)
    for day in range(30):
        _session(cast.patient, cast.clinician, starts_at=start + timedelta(days=day))
    # Queries: the sign-in (with user, clinic, patient), one page of sessions.
    with django_assert_num_queries(2):
        assert len(clients.patient.get("/api/v1/sessions/").json()["results"]) == 30
