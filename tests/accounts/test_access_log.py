import pytest
from django.db import connection, transaction

from accounts.models import AccessLog
from tests.conftest import client_for
from tests.factories import PatientFactory, care_team_add

pytestmark = pytest.mark.django_db


def test_reading_a_patient_writes_one_row_with_who_what_where(cast, clients):
    response = clients.clinician.get(
        f"/api/v1/patients/{cast.patient.id}/", HTTP_USER_AGENT="Dashboard/1.0", REMOTE_ADDR="198.51.100.4"
    )
    assert response.status_code == 200
    row = AccessLog.objects.get()
    assert (row.actor_id, row.patient_id, row.action) == (cast.clinician.id, cast.patient.id, "view")
    assert row.path == f"/api/v1/patients/{cast.patient.id}/"
    assert row.ip == "198.51.100.4"
    assert row.user_agent == "Dashboard/1.0"


def test_a_list_of_n_patients_writes_n_rows_in_one_insert(cast, clients, django_assert_num_queries):
    for _ in range(4):
        care_team_add(PatientFactory(clinic=cast.clinician.clinic), cast.clinician)
    # Queries: the sign-in (with user, clinic, patient), the triage list's four reads (patients,
    # rollups, alerts, prompts), one bulk insert.
    with django_assert_num_queries(6):
        response = clients.clinician.get("/api/v1/patients/")
    assert response.json()["count"] == 5
    assert AccessLog.objects.filter(action="list").count() == 5


def test_list_query_count_does_not_grow_with_patients(cast, clients, django_assert_num_queries):
    for _ in range(30):
        care_team_add(PatientFactory(clinic=cast.clinician.clinic), cast.clinician)
    with django_assert_num_queries(6):
        assert clients.clinician.get("/api/v1/patients/").json()["count"] == 31


def test_a_refused_read_writes_nothing(cast, clients):
    assert clients.outsider.get(f"/api/v1/patients/{cast.patient.id}/").status_code == 404
    assert not AccessLog.objects.exists()


def test_patients_reading_their_own_profile_are_not_logged(cast, clients):
    clients.patient.get("/api/v1/me/")
    assert not AccessLog.objects.exists()


def test_patient_sees_who_looked_at_their_data(cast, clients):
    clients.clinician.get(f"/api/v1/patients/{cast.patient.id}/")
    clients.outsider.get(f"/api/v1/patients/{cast.other_patient.id}/")
    rows = clients.patient.get("/api/v1/me/access-log/").json()["results"]
    assert len(rows) == 1
    assert rows[0]["actor"]["id"] == str(cast.clinician.id)
    assert rows[0]["action"] == "view"
    assert "ip" not in rows[0]


def test_clinicians_cannot_read_a_patients_own_access_log_route(clients):
    assert clients.clinician.get("/api/v1/me/access-log/").status_code == 403


def test_admin_reads_the_clinic_audit_with_filters(cast, clients):
    clients.clinician.get(f"/api/v1/patients/{cast.patient.id}/")
    clients.outsider.get(f"/api/v1/patients/{cast.other_patient.id}/")
    rows = clients.admin.get("/api/v1/audit/").json()["results"]
    assert {row["patient"] for row in rows} == {str(cast.patient.id), str(cast.other_patient.id)}
    by_actor = clients.admin.get("/api/v1/audit/", {"actor": str(cast.outsider.id)}).json()["results"]
    assert [row["patient"] for row in by_actor] == [str(cast.other_patient.id)]
    by_patient = clients.admin.get("/api/v1/audit/", {"patient": str(cast.patient.id)}).json()["results"]
    assert [row["actor"]["id"] for row in by_patient] == [str(cast.clinician.id)]
    assert clients.admin.get("/api/v1/audit/", {"from": "2001-01-01", "to": "2001-01-02"}).json()["results"] == []
    assert clients.admin.get("/api/v1/audit/", {"from": "yesterday"}).status_code == 400


def test_audit_is_for_clinic_admins_only(cast, clients):
    assert clients.clinician.get("/api/v1/audit/").status_code == 403
    assert clients.patient.get("/api/v1/audit/").status_code == 403


def test_admin_of_another_clinic_sees_none_of_this_clinics_audit(cast, clients):
    from tests.factories import ClinicianFactory

    clients.clinician.get(f"/api/v1/patients/{cast.patient.id}/")
    other_admin = ClinicianFactory(is_clinic_admin=True)
    assert client_for(other_admin).get("/api/v1/audit/").json()["results"] == []


def test_the_app_cannot_change_or_delete_a_row(cast, clients):
    clients.clinician.get(f"/api/v1/patients/{cast.patient.id}/")
    row = AccessLog.objects.get()
    row.action = "list"
    with pytest.raises(PermissionError):
        row.save()
    with pytest.raises(PermissionError):
        row.delete()
    with pytest.raises(PermissionError):
        AccessLog.objects.all().update(action="list")
    with pytest.raises(PermissionError):
        AccessLog.objects.all().delete()


def test_the_database_refuses_raw_updates_and_deletes(cast, clients):
    clients.clinician.get(f"/api/v1/patients/{cast.patient.id}/")
    for statement in ("UPDATE accounts_accesslog SET action = 'list'", "DELETE FROM accounts_accesslog"):
        with pytest.raises(Exception, match="append-only"), transaction.atomic(), connection.cursor() as cursor:
            cursor.execute(statement)
    assert AccessLog.objects.get().action == "view"
