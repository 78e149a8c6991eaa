import pytest
from rest_framework.test import APIClient

from tests.routes import CLINICIAN_PREFIXES, PUBLIC_PATHS, fill, schema_operations
from tests.timeutil import iso_ago

pytestmark = pytest.mark.django_db


def test_schema_lists_the_routes_it_should():
    operations = schema_operations()
    assert ("post", "/api/v1/auth/token/") in operations
    assert ("get", "/api/v1/patients/{patient_id}/") in operations
    assert len(operations) >= 20


def test_every_route_but_the_public_ones_is_401_for_anonymous():
    client = APIClient()
    for method, path in schema_operations():
        if path in PUBLIC_PATHS:
            continue
        response = getattr(client, method)(fill(path), {}, format="json")
        assert response.status_code == 401, (method, path, response.status_code)
        assert response.json()["error"]["code"] == "not_authenticated"


def test_public_routes_answer_anonymous_without_401():
    client = APIClient()
    for method, path in schema_operations():
        if path in PUBLIC_PATHS:
            response = getattr(client, method)(fill(path), {}, format="json")
            assert response.status_code == 400, (method, path, response.status_code)


def test_patient_token_on_every_clinician_route_is_403_before_any_lookup(cast, clients):
    own = {"patient_id": cast.patient.id}
    for method, path in schema_operations():
        if not path.startswith(CLINICIAN_PREFIXES):
            continue
        # Even the patient's own record: a patient token never opens a clinician route.
        response = getattr(clients.patient, method)(fill(path, **own), {}, format="json")
        assert response.status_code == 403, (method, path, response.status_code)
        assert response.json()["error"]["code"] == "permission_denied"


def test_outsider_clinician_gets_404_on_every_patient_route(cast, clients):
    for method, path in schema_operations():
        if not path.startswith("/api/v1/patients/{patient_id}/") or path.endswith("/care-team/"):
            continue
        response = getattr(clients.outsider, method)(fill(path, patient_id=cast.patient.id), {}, format="json")
        assert response.status_code == 404, (method, path, response.status_code)
        assert response.json()["error"]["code"] == "not_found"


def test_clinician_of_another_clinic_sees_nothing(cast):
    from tests.conftest import client_for

    client = client_for(cast.foreign_clinician)
    assert client.get(f"/api/v1/patients/{cast.patient.id}/").status_code == 404
    assert client.get("/api/v1/patients/").json()["count"] == 0


def test_clinic_admin_reads_no_journal_outside_care_teams(cast, clients):
    assert clients.admin.get(f"/api/v1/patients/{cast.patient.id}/").status_code == 404


def _objects_of(cast, clients) -> dict:
    """One object of each kind a patient route can name, so every GET can answer 200."""
    entry = clients.patient.post(
        "/api/v1/entries/", {"kind": "craving", "occurred_at": iso_ago(hours=1), "craving": 3}, format="json"
    )
    session = clients.clinician.post(
        f"/api/v1/patients/{cast.patient.id}/sessions/",
        {"kind": "medical", "starts_at": iso_ago(days=1), "duration_minutes": 30},
        format="json",
    )
    schedule = clients.clinician.post(
        f"/api/v1/patients/{cast.patient.id}/reminders/", {"kind": "check_in", "time": "09:00"}, format="json"
    )
    return {
        "patient_id": cast.patient.id,
        "entry_id": entry.json()["id"],
        "session_id": session.json()["id"],
        "schedule_id": schedule.json()["id"],
    }


def test_every_patient_route_writes_an_access_log_row(cast, clients):
    from accounts.models import AccessLog

    objects = _objects_of(cast, clients)
    for method, path in schema_operations():
        if not path.startswith("/api/v1/patients/{patient_id}/") or method != "get":
            continue
        client = clients.admin if path.endswith("/care-team/") else clients.clinician
        before = AccessLog.objects.filter(patient=cast.patient).count()
        response = client.get(fill(path, **objects))
        assert response.status_code == 200, (path, response.status_code)
        assert AccessLog.objects.filter(patient=cast.patient).count() == before + 1, path


def test_schema_declares_error_statuses_for_each_operation():
    schema = APIClient().get("/api/schema/", {"format": "json"}).json()
    for path, methods in schema["paths"].items():
        for method, operation in methods.items():
            declared = set(operation["responses"])
            assert {"400", "429", "500"} <= declared, (method, path)
            if path not in PUBLIC_PATHS:
                assert {"401", "403"} <= declared, (method, path)
            if "{" in path:
                assert "404" in declared, (method, path)


def test_swagger_ui_is_served_without_a_cdn(db):
    response = APIClient().get("/api/docs/")
    assert response.status_code == 200
    assert b"/static/drf_spectacular_sidecar/" in response.content
