"""Reminder schedules over the API (SPEC §7): the patient's own and the care team's, strict input,
404 for anything outside one's reach, the access log, and a query budget for the list."""

from datetime import time

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext

from accounts.models import AccessLog
from reminders.models import WEEKDAYS, Schedule
from reminders.services.schedules import schedule_create

pytestmark = pytest.mark.django_db

OWN = "/api/v1/reminders/"
CHECK_IN = {"kind": "check_in", "time": "09:00"}


def _care_url(patient, schedule_id=None) -> str:
    base = f"/api/v1/patients/{patient.id}/reminders/"
    return f"{base}{schedule_id}/" if schedule_id else base


def _field_codes(response) -> dict:
    assert response.status_code == 400, response.content
    body = response.json()
    assert body["error"]["code"] == "validation_error"
    return body["error"]["field_codes"]


def _schedule(patient, **data) -> Schedule:
    return schedule_create(patient=patient, created_by=None, data={"kind": "check_in", "time": time(9, 0), **data})


# --- The patient's own ---------------------------------------------------------------------------


def test_patient_creates_a_check_in_with_the_defaults(cast, clients):
    response = clients.patient.post(OWN, CHECK_IN, format="json")
    assert response.status_code == 201, response.content
    body = response.json()
    assert body == {
        "id": body["id"],
        "kind": "check_in",
        "instrument": None,
        "message": "",
        "days": list(WEEKDAYS),
        "time": "09:00",
        "window": None,
        "expires_after_minutes": 120,
        "enabled": True,
        "created_at": body["created_at"],
        "updated_at": body["updated_at"],
    }
    assert body["created_at"].endswith("Z")
    stored = Schedule.objects.get(pk=body["id"])
    assert (stored.patient, stored.created_by) == (cast.patient, cast.patient.user)


def test_patient_reads_changes_and_deletes_their_schedule(cast, clients):
    created = clients.patient.post(OWN, CHECK_IN, format="json").json()
    url = f"{OWN}{created['id']}/"

    assert clients.patient.get(url).json() == created
    listed = clients.patient.get(OWN).json()
    assert [row["id"] for row in listed["results"]] == [created["id"]]
    assert listed["next"] is None

    response = clients.patient.patch(
        url, {"time": None, "window": {"start": "18:00", "end": "21:30"}, "days": ["sun", "mon"]}, format="json"
    )
    assert response.status_code == 200, response.content
    body = response.json()
    assert (body["time"], body["window"], body["days"]) == (None, {"start": "18:00", "end": "21:30"}, ["mon", "sun"])

    assert clients.patient.delete(url).status_code == 204
    assert clients.patient.get(url).status_code == 404
    assert clients.patient.get(OWN).json()["results"] == []
    # Kept for its prompts' history, disabled for good (tests/reminders/test_deletion_keeps_history.py).
    stored = Schedule.objects.get(pk=created["id"])
    assert (stored.enabled, stored.deleted_at is not None) == (False, True)


def test_a_weekly_phq9_and_a_custom_reminder(cast, clients):
    phq9 = clients.patient.post(
        OWN, {"kind": "assessment", "instrument": "phq9", "days": ["mon"], "time": "18:00"}, format="json"
    )
    assert phq9.status_code == 201, phq9.content
    assert (phq9.json()["instrument"], phq9.json()["days"]) == ("phq9", ["mon"])
    custom = clients.patient.post(
        OWN, {"kind": "custom", "message": "  Take a short walk  ", "time": "12:30"}, format="json"
    )
    assert custom.status_code == 201, custom.content
    assert custom.json()["message"] == "Take a short walk"


def test_own_list_is_cursor_paginated_oldest_first(cast, clients):
    ids = [str(_schedule(cast.patient, time=time(hour, 0)).id) for hour in range(1, 6)]
    first = clients.patient.get(OWN, {"page_size": 3}).json()
    assert [row["id"] for row in first["results"]] == ids[:3]
    rest = clients.patient.get(first["next"]).json()
    assert [row["id"] for row in rest["results"]] == ids[3:]


# --- Validation ----------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("body", "field", "code"),
    [
        ({**CHECK_IN, "time": "25:00"}, "time", "invalid"),
        ({**CHECK_IN, "time": "9:00"}, "time", "invalid"),
        ({**CHECK_IN, "time": "09:00:00"}, "time", "invalid"),
        ({**CHECK_IN, "time": 900}, "time", "invalid"),
        ({"kind": "check_in", "window": {"start": "21:00", "end": "09:00"}}, "window", "not_after_start"),
        ({"kind": "check_in", "window": {"start": "09:00", "end": "09:00"}}, "window", "not_after_start"),
        ({"kind": "check_in", "window": {"start": "09:00", "end": "09:30"}}, "window", "window_too_short"),
        ({"kind": "check_in", "window": {"start": "00:00", "end": "23:30"}}, "window", "window_too_long"),
        ({"kind": "check_in", "window": {"start": "09:00"}}, "window.end", "required"),
        ({"kind": "check_in"}, "time", "time_or_window_required"),
        ({**CHECK_IN, "window": {"start": "09:00", "end": "12:00"}}, "time", "time_and_window"),
        ({**CHECK_IN, "days": ["mon", "funday"]}, "days.1", "invalid_choice"),
        ({**CHECK_IN, "days": []}, "days", "empty"),
        ({**CHECK_IN, "days": ["mon", "mon"]}, "days", "duplicate"),
        ({**CHECK_IN, "days": "mon"}, "days", "not_a_list"),
        ({**CHECK_IN, "expires_after_minutes": 10}, "expires_after_minutes", "min_value"),
        ({**CHECK_IN, "expires_after_minutes": 1441}, "expires_after_minutes", "max_value"),
        ({**CHECK_IN, "expires_after_minutes": "60"}, "expires_after_minutes", "invalid"),
        ({**CHECK_IN, "expires_after_minutes": 60.0}, "expires_after_minutes", "invalid"),
        ({**CHECK_IN, "expires_after_minutes": True}, "expires_after_minutes", "invalid"),
        ({**CHECK_IN, "enabled": "true"}, "enabled", "invalid"),
        ({**CHECK_IN, "enabled": 1}, "enabled", "invalid"),
        ({**CHECK_IN, "kind": "assessment"}, "instrument", "required"),
        ({**CHECK_IN, "kind": "assessment", "instrument": "bdi"}, "instrument", "invalid_choice"),
        ({**CHECK_IN, "instrument": "phq9"}, "instrument", "only_for_assessment"),
        ({**CHECK_IN, "kind": "custom"}, "message", "required"),
        ({**CHECK_IN, "kind": "custom", "message": "   "}, "message", "required"),
        ({**CHECK_IN, "message": "Hello"}, "message", "only_for_custom"),
        ({**CHECK_IN, "kind": "custom", "message": "x" * 201}, "message", "max_length"),
        ({**CHECK_IN, "kind": "reminder"}, "kind", "invalid_choice"),
        ({"time": "09:00"}, "kind", "required"),
    ],
)
def test_invalid_schedules_are_400_with_field_codes(cast, clients, body, field, code):
    codes = _field_codes(clients.patient.post(OWN, body, format="json"))
    assert code in codes.get(field, []), codes
    assert not Schedule.objects.exists()


def test_a_patch_is_checked_as_the_schedule_will_be_stored(cast, clients):
    created = clients.patient.post(OWN, CHECK_IN, format="json").json()
    url = f"{OWN}{created['id']}/"

    def codes(body) -> dict:
        return _field_codes(clients.patient.patch(url, body, format="json"))

    assert "time_and_window" in codes({"window": {"start": "09:00", "end": "12:00"}})["window"]
    assert "required" in codes({"kind": "assessment"})["instrument"]
    assert "time_or_window_required" in codes({"time": None})["time"]
    assert clients.patient.get(url).json() == created  # nothing changed

    response = clients.patient.patch(url, {"kind": "assessment", "instrument": "gad7"}, format="json")
    assert response.status_code == 200, response.content
    # Away from assessment, the instrument goes in the same request.
    assert "only_for_assessment" in codes({"kind": "check_in"})["instrument"]
    response = clients.patient.patch(url, {"kind": "check_in", "instrument": None}, format="json")
    assert (response.status_code, response.json()["instrument"]) == (200, None)


def test_server_owned_fields_are_not_taken_from_the_body(cast, clients):
    response = clients.patient.post(
        OWN, {**CHECK_IN, "id": "00000000-0000-0000-0000-000000000001", "patient": str(cast.other_patient.id)}
    )
    assert response.status_code == 201, response.content
    assert response.json()["id"] != "00000000-0000-0000-0000-000000000001"
    assert Schedule.objects.get(pk=response.json()["id"]).patient == cast.patient


# --- Whose schedules ----------------------------------------------------------------------------


def test_a_patient_cannot_read_or_change_another_patients_schedules(cast, clients):
    theirs = _schedule(cast.other_patient)
    url = f"{OWN}{theirs.id}/"
    for response in (
        clients.patient.get(url),
        clients.patient.patch(url, {"enabled": False}, format="json"),
        clients.patient.delete(url),
    ):
        assert response.status_code == 404, response.content
        assert response.json()["error"]["code"] == "not_found"
    assert clients.patient.get(OWN).json()["results"] == []
    theirs.refresh_from_db()
    assert theirs.enabled is True
    # Nor through the care team's route, which is not theirs at all.
    assert clients.patient.get(_care_url(cast.other_patient)).status_code == 403


def test_care_team_keeps_the_patients_schedules(cast, clients):
    response = clients.clinician.post(
        _care_url(cast.patient),
        {"kind": "assessment", "instrument": "phq9", "days": ["mon"], "time": "10:00"},
        format="json",
    )
    assert response.status_code == 201, response.content
    created = response.json()
    stored = Schedule.objects.get(pk=created["id"])
    assert (stored.patient, stored.created_by) == (cast.patient, cast.clinician)

    url = _care_url(cast.patient, created["id"])
    assert clients.clinician.get(url).json() == created
    assert [row["id"] for row in clients.clinician.get(_care_url(cast.patient)).json()["results"]] == [created["id"]]
    response = clients.clinician.patch(url, {"enabled": False, "expires_after_minutes": 1440}, format="json")
    assert (response.status_code, response.json()["enabled"], response.json()["expires_after_minutes"]) == (
        200,
        False,
        1440,
    )
    # The patient sees what the care team set up.
    assert clients.patient.get(f"{OWN}{created['id']}/").json()["enabled"] is False
    assert clients.clinician.delete(url).status_code == 204
    assert clients.clinician.get(url).status_code == 404
    assert clients.clinician.get(_care_url(cast.patient)).json()["results"] == []
    assert Schedule.objects.get(pk=created["id"]).deleted_at is not None


def test_a_schedule_of_another_patient_is_404_under_this_patient(cast, clients):
    theirs = _schedule(cast.other_patient)
    response = clients.clinician.get(_care_url(cast.patient, theirs.id))
    assert response.status_code == 404


def test_outsider_clinician_gets_404_and_learns_nothing(cast, clients):
    schedule = _schedule(cast.patient)
    for response in (
        clients.outsider.get(_care_url(cast.patient)),
        clients.outsider.post(_care_url(cast.patient), {"kind": "nonsense"}, format="json"),
        clients.outsider.get(_care_url(cast.patient, schedule.id)),
        clients.outsider.patch(_care_url(cast.patient, schedule.id), {"enabled": False}, format="json"),
        clients.outsider.delete(_care_url(cast.patient, schedule.id)),
        clients.admin.get(_care_url(cast.patient)),
    ):
        assert response.status_code == 404, response.content
        assert response.json()["error"]["code"] == "not_found"
    schedule.refresh_from_db()
    assert schedule.enabled is True


def test_role_routes_are_403_for_the_other_role(cast, clients):
    response = clients.patient.get(_care_url(cast.patient))
    assert (response.status_code, response.json()["error"]["code"]) == (403, "permission_denied")
    response = clients.patient.post(_care_url(cast.patient), CHECK_IN, format="json")
    assert response.status_code == 403
    response = clients.clinician.get(OWN)
    assert (response.status_code, response.json()["error"]["code"]) == (403, "permission_denied")
    assert clients.anonymous.get(OWN).status_code == 401


def test_care_team_reads_and_writes_are_access_logged(cast, clients):
    schedule = _schedule(cast.patient)
    clients.clinician.get(_care_url(cast.patient))
    clients.clinician.get(_care_url(cast.patient, schedule.id))
    clients.clinician.patch(_care_url(cast.patient, schedule.id), {"enabled": False}, format="json")
    rows = list(AccessLog.objects.filter(patient=cast.patient).order_by("id").values_list("actor", "action", "path"))
    assert rows == [
        (cast.clinician.id, "view", _care_url(cast.patient)),
        (cast.clinician.id, "view", _care_url(cast.patient, schedule.id)),
        (cast.clinician.id, "update", _care_url(cast.patient, schedule.id)),
    ]
    # The patient's own reads are not clinician access.
    clients.patient.get(OWN)
    assert AccessLog.objects.filter(patient=cast.patient).count() == 3


# --- Query budget --------------------------------------------------------------------------------


def _list_queries(client, url) -> int:
    with CaptureQueriesContext(connection) as queries:
        response = client.get(url)
    assert response.status_code == 200
    return len(queries)


def test_list_queries_do_not_grow_with_the_schedules(cast, clients, django_assert_num_queries):
    _schedule(cast.patient)
    _schedule(cast.other_patient)
    few = (_list_queries(clients.patient, OWN), _list_queries(clients.clinician, _care_url(cast.patient)))
    for hour in range(10, 20):
        _schedule(cast.patient, time=time(hour, 0))
    many = (_list_queries(clients.patient, OWN), _list_queries(clients.clinician, _care_url(cast.patient)))
    assert few == many
    # Patient: the sign-in (with user and patient), the page of schedules.
    with django_assert_num_queries(2):
        clients.patient.get(OWN)
    # Clinician: the sign-in, the patient through the care team with its access-log row, the page.
    with django_assert_num_queries(3):
        clients.clinician.get(_care_url(cast.patient))
