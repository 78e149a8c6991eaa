"""The care team's export of one patient (CSV, JSON, FHIR) and the clinic admin's entries CSV (SPEC §10)."""

import csv
import io
import json
from datetime import timedelta

import pytest
from django.db import connection
from django.http import StreamingHttpResponse
from django.test.utils import CaptureQueriesContext
from fhir.resources.R4B.bundle import Bundle

from accounts.models import AccessAction, AccessLog
from journal.exports import REDISCLOSURE_NOTICE
from journal.models import Entry
from tests.conftest import client_for
from tests.factories import enrolled_patient
from tests.timeutil import iso_ago

pytestmark = pytest.mark.django_db

FORMULA_NOTE = '=HYPERLINK("http://evil")'
PHQ9 = [1, 2, 1, 0, 1, 0, 1, 0, 1]  # 7, mild; item 9 = 1 (fires the self-harm alert, which is fine here)
GAD7 = [2, 2, 2, 1, 1, 1, 1]  # 10, moderate


def _content(response) -> str:
    assert isinstance(response, StreamingHttpResponse)
    return b"".join(response.streaming_content).decode()


def _csv(response) -> tuple[list[str], list[str], list[dict]]:
    rows = list(csv.reader(io.StringIO(_content(response))))
    return rows[0], rows[1], [dict(zip(rows[1], row, strict=True)) for row in rows[2:]]


@pytest.fixture
def history(clients, cast):
    """Pat's journal: a check-in with a formula note, an edited craving, a deleted entry, a use with
    sleep, a PHQ-9, a GAD-7 and a ketamine session with the care team's notes; Olive has one entry."""
    patient = clients.patient
    post = lambda path, body: patient.post(path, body, format="json").json()  # noqa: E731
    check_in = post("/api/v1/entries/", {"kind": "check_in", "craving": 3, "mood": 7, "anxiety": 4,
                                         "occurred_at": iso_ago(hours=30), "note": FORMULA_NOTE})  # fmt: skip
    edited = post("/api/v1/entries/", {"kind": "craving", "craving": 8, "occurred_at": iso_ago(hours=3),
                                       "note": "first"})  # fmt: skip
    patient.patch(f"/api/v1/entries/{edited['id']}/", {"note": "second", "craving": 6}, format="json")
    gone = post("/api/v1/entries/", {"kind": "craving", "craving": 1, "occurred_at": iso_ago(hours=2),
                                     "note": "deleted note"})  # fmt: skip
    patient.delete(f"/api/v1/entries/{gone['id']}/")
    use = post("/api/v1/entries/", {"kind": "use", "substance": "alcohol", "amount": "-2 beers", "sleep_hours": 6.5,
                                    "occurred_at": iso_ago(hours=1)})  # fmt: skip
    post("/api/v1/assessments/", {"instrument": "phq9", "answers": PHQ9, "completed_at": iso_ago(hours=1)})
    post("/api/v1/assessments/", {"instrument": "gad7", "answers": GAD7, "completed_at": iso_ago(hours=1)})
    clients.other_patient.post("/api/v1/entries/", {"kind": "craving", "craving": 9, "occurred_at": iso_ago(hours=1),
                                                    "note": "not Pat's"}, format="json")  # fmt: skip
    clients.clinician.post(
        f"/api/v1/patients/{cast.patient.id}/sessions/",
        {"kind": "ketamine", "starts_at": iso_ago(days=2), "duration_minutes": 90, "route": "im", "dose_mg": 50,
         "notes": "@clinician remark"},
        format="json",
    )  # fmt: skip
    return {"check_in": check_in, "edited": edited, "gone": gone, "use": use}


def _export(clients, cast, fmt: str):
    return clients.clinician.get(f"/api/v1/patients/{cast.patient.id}/export/", {"format": fmt})


# --- Care team: one patient ---------------------------------------------------------------------


def test_json_export_has_the_patient_as_the_care_team_reads_it(clients, cast, history):
    response = _export(clients, cast, "json")
    assert response["Content-Type"] == "application/json"
    assert response["Cache-Control"] == "no-store"
    body = json.loads(_content(response))
    assert body["meta"]["notice"] == REDISCLOSURE_NOTICE
    assert body["meta"]["patient_id"] == str(cast.patient.id)
    entries = {e["id"]: e for e in body["entries"]}
    assert set(entries) == {history["check_in"]["id"], history["edited"]["id"], history["use"]["id"]}
    assert entries[history["check_in"]["id"]]["note"] == FORMULA_NOTE  # JSON is not a spreadsheet: kept as typed
    assert entries[history["edited"]["id"]]["edited"] is True
    assert entries[history["edited"]["id"]]["craving"] == 6
    assert [(r["entry_id"], r["note"], r["content"]["craving"]) for r in body["entry_revisions"]] == [
        (history["edited"]["id"], "first", 8)
    ]
    assert {(a["instrument"], a["score"], a["severity"], tuple(a["answers"])) for a in body["assessments"]} == {
        ("phq9", 7, "mild", tuple(PHQ9)),
        ("gad7", 10, "moderate", tuple(GAD7)),
    }
    assert body["sessions"][0]["notes"] == "@clinician remark"
    assert body["profile"][0]["display_name"] == "Pat" and "email" not in body["profile"][0]
    text = json.dumps(body)
    assert "not Pat's" not in text and "deleted note" not in text


def test_csv_export_starts_with_the_notice_and_escapes_formulas(clients, cast, history):
    response = _export(clients, cast, "csv")
    assert response["Content-Type"].startswith("text/csv")
    assert "attachment" in response["Content-Disposition"]
    notice, header, records = _csv(response)
    assert notice == [f"# {REDISCLOSURE_NOTICE}"]
    assert {"record_type", "note", "revision_of", "route", "dose_mg"} <= set(header)
    kinds = [r["record_type"] for r in records]
    assert (kinds.count("entry"), kinds.count("entry_revision"), kinds.count("assessment"), kinds.count("session")) == (
        3, 1, 2, 1,
    )  # fmt: skip
    by_id = {r["id"]: r for r in records if r["record_type"] == "entry"}
    assert by_id[history["check_in"]["id"]]["note"] == "'" + FORMULA_NOTE
    assert by_id[history["use"]["id"]]["amount"] == "'-2 beers"
    assert by_id[history["edited"]["id"]]["edited"] == "True"
    revision = next(r for r in records if r["record_type"] == "entry_revision")
    assert (revision["revision_of"], revision["note"], revision["craving"]) == (history["edited"]["id"], "first", "8")
    session = next(r for r in records if r["record_type"] == "session")
    assert (session["note"], session["route"], session["dose_mg"]) == ("'@clinician remark", "im", "50.0")
    phq9 = next(r for r in records if r["kind"] == "phq9")
    assert (phq9["score"], phq9["severity"], phq9["answers"]) == ("7", "mild", " ".join(map(str, PHQ9)))
    assert not any(cell.startswith(("=", "+", "-", "@")) for record in records for cell in record.values())


def test_notes_are_encrypted_in_the_database_but_exported_in_clear(clients, cast, history):
    with connection.cursor() as cursor:
        cursor.execute("SELECT note FROM journal_entry WHERE id = %s", [history["edited"]["id"]])
        (stored,) = cursor.fetchone()
    assert stored and "second" not in stored
    body = json.loads(_content(_export(clients, cast, "json")))
    assert "second" in {e["note"] for e in body["entries"]}


def _codes(concept: dict) -> set[tuple[str, str]]:
    return {(coding["system"], coding["code"]) for coding in concept.get("coding", [])}


def test_fhir_export_is_a_valid_r4_collection_bundle(clients, cast, history):
    response = _export(clients, cast, "fhir")
    assert response["Content-Type"] == "application/fhir+json"
    data = json.loads(_content(response))
    bundle = Bundle.model_validate(data)
    assert bundle.type == "collection"
    assert data["meta"]["extension"][0]["valueString"] == REDISCLOSURE_NOTICE
    assert {"42CFRPart2", "NORDSCLCD"} <= {label["code"] for label in data["meta"]["security"]}

    resources = [item["resource"] for item in data["entry"]]
    assert len({item["fullUrl"] for item in data["entry"]}) == len(resources)
    patient = resources[0]
    assert patient["resourceType"] == "Patient" and patient["id"] == str(cast.patient.id)
    assert "name" not in patient and "telecom" not in patient
    assert '"Pat"' not in json.dumps(data)

    observations = [r for r in resources if r["resourceType"] == "Observation"]
    for observation in observations:
        assert observation["category"][0]["coding"][0]["code"] == "survey"
        assert observation["subject"]["reference"] == f"urn:uuid:{cast.patient.id}"
    codes = [_codes(o["code"]) for o in observations]
    own = "https://interlude.example/fhir/CodeSystem/journal"
    loinc = "http://loinc.org"
    assert codes.count({(own, "craving")}) == 2  # the check-in and the edited craving; not the deleted one
    assert codes.count({(own, "mood")}) == 1
    assert codes.count({(own, "anxiety")}) == 1
    assert codes.count({(own, "use")}) == 1
    sleep = next(o for o in observations if (loinc, "93832-4") in _codes(o["code"]))
    assert sleep["valueQuantity"] == {"value": 6.5, "unit": "h", "system": "http://unitsofmeasure.org", "code": "h"}
    cravings = {o["valueInteger"]: o["status"] for o in observations if _codes(o["code"]) == {(own, "craving")}}
    assert cravings == {3: "final", 6: "amended"}  # the edited entry's figure replaces what was first recorded

    responses = {r["questionnaire"]: r for r in resources if r["resourceType"] == "QuestionnaireResponse"}
    assert set(responses) == {"http://loinc.org/q/44249-1", "http://loinc.org/q/69737-5"}
    assert [i["answer"][0]["valueInteger"] for i in responses["http://loinc.org/q/44249-1"]["item"]] == PHQ9
    phq9_total = next(o for o in observations if (loinc, "44261-6") in _codes(o["code"]))
    assert phq9_total["valueInteger"] == 7
    phq9_id = responses["http://loinc.org/q/44249-1"]["id"]
    assert phq9_total["derivedFrom"] == [{"reference": f"urn:uuid:{phq9_id}"}]
    item9 = next(o for o in observations if (loinc, "44260-8") in _codes(o["code"]))
    assert item9["valueInteger"] == 1
    gad7_total = next(o for o in observations if (loinc, "70274-6") in _codes(o["code"]))
    assert gad7_total["valueInteger"] == 10


def test_fhir_bundle_of_a_patient_without_data_still_validates(clients, cast):
    data = json.loads(_content(_export(clients, cast, "fhir")))
    Bundle.model_validate(data)
    assert [item["resource"]["resourceType"] for item in data["entry"]] == ["Patient"]


def test_each_export_writes_one_access_log_row(clients, cast, history):
    for fmt in ("json", "csv", "fhir"):
        before = AccessLog.objects.count()
        _content(_export(clients, cast, fmt))
        rows = list(AccessLog.objects.order_by("-id")[: AccessLog.objects.count() - before])
        assert [(r.patient_id, r.actor_id, r.action) for r in rows] == [
            (cast.patient.id, cast.clinician.id, AccessAction.EXPORT)
        ]


def test_patient_export_is_for_the_care_team_only(clients, cast, history):
    path = f"/api/v1/patients/{cast.patient.id}/export/"
    logged = AccessLog.objects.filter(patient=cast.patient).count()
    assert clients.outsider.get(path).status_code == 404
    assert clients.outsider.get(path, {"format": "xml"}).status_code == 404  # no hint from a 400 first
    assert clients.admin.get(path).status_code == 404  # admins read journals only through the clinic export
    assert client_for(cast.foreign_clinician).get(path).status_code == 404
    denied = clients.patient.get(path)
    assert denied.status_code == 403 and denied.json()["error"]["code"] == "permission_denied"
    assert clients.anonymous.get(path).status_code == 401
    assert AccessLog.objects.filter(patient=cast.patient).count() == logged


def test_unknown_format_is_400(clients, cast):
    response = _export(clients, cast, "xml")
    assert response.status_code == 400
    assert response.json()["error"]["code"] == "validation_error"


# --- Clinic admin: every entry of the clinic ----------------------------------------------------

CLINIC_EXPORT = "/api/v1/exports/entries.csv"


@pytest.fixture
def clinic(clients, cast, history):
    """Besides Pat's history: Olive's entry (in `history`), an entry of an old day, another clinic's
    entry, and a patient of the clinic with no entries at all."""
    old = clients.other_patient.post(
        "/api/v1/entries/", {"kind": "craving", "craving": 2, "occurred_at": iso_ago(days=10), "note": "+old"},
        format="json",
    ).json()  # fmt: skip
    elsewhere = enrolled_patient(cast.foreign_clinician.clinic)
    client_for(elsewhere.user).post(
        "/api/v1/entries/", {"kind": "craving", "craving": 5, "occurred_at": iso_ago(hours=1), "note": "other clinic"},
        format="json",
    )  # fmt: skip
    enrolled_patient(cast.patient.clinic, display_name="Quiet")
    return {"old": old, "elsewhere": elsewhere}


def test_admin_export_streams_every_live_entry_of_the_clinic(clients, cast, clinic, history):
    response = clients.admin.get(CLINIC_EXPORT)
    assert response.status_code == 200
    assert response["Content-Type"].startswith("text/csv")
    notice, header, records = _csv(response)
    assert notice == [f"# {REDISCLOSURE_NOTICE}"]
    assert header[:3] == ["entry_id", "patient_id", "kind"] and "note" not in header
    ids = {r["entry_id"] for r in records}
    live = Entry.objects.filter(patient__clinic=cast.patient.clinic, deleted_at__isnull=True)
    assert ids == {str(pk) for pk in live.values_list("id", flat=True)}
    assert len(ids) == 5  # Pat's 3 live entries, Olive's 2; not the deleted one, not the other clinic's
    assert history["gone"]["id"] not in ids
    assert {r["patient_id"] for r in records} == {str(cast.patient.id), str(cast.other_patient.id)}
    content = json.dumps(records)
    assert "Pat" not in content and "Olive" not in content  # pseudonymous: ids, no names
    use = next(r for r in records if r["entry_id"] == history["use"]["id"])
    assert (use["amount"], use["substance"], use["sleep_hours"], use["edited"]) == ("'-2 beers", "alcohol", "6.50",
                                                                                    "False")  # fmt: skip
    assert use["occurred_at"].endswith("Z") and use["received_at"].endswith("Z")
    edited = next(r for r in records if r["entry_id"] == history["edited"]["id"])
    assert (edited["craving"], edited["edited"]) == ("6", "True")


def test_admin_export_has_notes_only_when_asked(clients, clinic, history):
    _, header, records = _csv(clients.admin.get(CLINIC_EXPORT, {"include_notes": "true"}))
    assert header[-1] == "note"
    notes = {r["entry_id"]: r["note"] for r in records}
    assert notes[history["check_in"]["id"]] == "'" + FORMULA_NOTE
    assert notes[history["edited"]["id"]] == "second"
    assert notes[clinic["old"]["id"]] == "'+old"
    assert "other clinic" not in notes.values() and "deleted note" not in notes.values()
    _, _, without = _csv(clients.admin.get(CLINIC_EXPORT, {"include_notes": "false"}))
    assert all("note" not in r for r in without)


def test_admin_export_filters_by_journal_day(clients, cast, clinic):
    old_day = Entry.objects.get(pk=clinic["old"]["id"]).local_date
    _, _, only_old = _csv(clients.admin.get(CLINIC_EXPORT, {"from": str(old_day), "to": str(old_day)}))
    assert [r["entry_id"] for r in only_old] == [clinic["old"]["id"]]
    _, _, recent = _csv(clients.admin.get(CLINIC_EXPORT, {"from": str(old_day + timedelta(days=1))}))
    assert clinic["old"]["id"] not in {r["entry_id"] for r in recent} and len(recent) == 4


def test_admin_export_logs_each_patient_touched_in_one_insert(clients, cast, clinic):
    before = AccessLog.objects.count()
    with CaptureQueriesContext(connection) as queries:
        response = clients.admin.get(CLINIC_EXPORT)
    inserts = [q["sql"] for q in queries if q["sql"].startswith('INSERT INTO "accounts_accesslog"')]
    assert len(inserts) == 1
    rows = AccessLog.objects.order_by("-id")[: AccessLog.objects.count() - before]
    assert sorted((r.patient_id, r.actor_id, r.action) for r in rows) == sorted(
        [(cast.patient.id, cast.admin.id, AccessAction.EXPORT), (cast.other_patient.id, cast.admin.id, "export")]
    )  # not the patient without entries, not the other clinic's
    _content(response)

    old_day = Entry.objects.get(pk=clinic["old"]["id"]).local_date
    before = AccessLog.objects.count()
    clients.admin.get(CLINIC_EXPORT, {"from": str(old_day), "to": str(old_day)})
    new = AccessLog.objects.count() - before
    logged = AccessLog.objects.order_by("-id").values_list("patient_id", flat=True)[:new]
    assert list(logged) == [cast.other_patient.id]  # only whose entries are in the range


@pytest.mark.parametrize(
    "params",
    [{"from": "2026-13-01"}, {"to": "yesterday"}, {"from": "2026-03-02", "to": "2026-03-01"},
     {"from": "2026-3-1"}, {"include_notes": "perhaps"}],
)  # fmt: skip
def test_admin_export_rejects_bad_filters_in_the_error_shape(clients, params):
    response = clients.admin.get(CLINIC_EXPORT, params)
    assert response.status_code == 400
    error = response.json()["error"]
    assert error["code"] == "validation_error" and error["fields"]
    assert not AccessLog.objects.exists()


def test_admin_export_is_for_clinic_admins(clients):
    for client in (clients.clinician, clients.patient):
        response = client.get(CLINIC_EXPORT)
        assert response.status_code == 403 and response.json()["error"]["code"] == "permission_denied"
    assert clients.anonymous.get(CLINIC_EXPORT).status_code == 401


def test_admin_export_takes_the_same_queries_however_many_patients(clients, cast, clinic):
    # Queries: the token's sign-in, the patients touched, one bulk insert into the access log, then
    # the entries through one server-side cursor inside a savepoint (its fetches are not queries).
    def queries() -> int:
        with CaptureQueriesContext(connection) as captured:
            _content(clients.admin.get(CLINIC_EXPORT, {"include_notes": "true"}))
        return len(captured)

    first = queries()
    for n in range(3):
        newcomer = enrolled_patient(cast.patient.clinic)
        client_for(newcomer.user).post(
            "/api/v1/entries/", {"kind": "craving", "craving": n, "occurred_at": iso_ago(hours=1)}, format="json"
        )
    assert queries() == first
