import csv
import io
import json

import pytest

from journal.exports import REDISCLOSURE_NOTICE, csv_cell
from tests.timeutil import iso_ago

pytestmark = pytest.mark.django_db


def _content(response) -> str:
    assert response.streaming
    return b"".join(response.streaming_content).decode()


@pytest.fixture
def history(clients, cast):
    patient = clients.patient
    patient.post("/api/v1/entries/", {"kind": "check_in", "craving": 3, "mood": 7, "occurred_at": iso_ago(hours=5),
                                      "note": "=HYPERLINK(\"http://evil\")"}, format="json")  # fmt: skip
    edited = patient.post(
        "/api/v1/entries/", {"kind": "craving", "craving": 8, "occurred_at": iso_ago(hours=3), "note": "first"},
        format="json",
    ).json()  # fmt: skip
    patient.patch(f"/api/v1/entries/{edited['id']}/", {"note": "second"}, format="json")
    gone = patient.post("/api/v1/entries/", {"kind": "craving", "craving": 1, "occurred_at": iso_ago(hours=1)},
                        format="json").json()  # fmt: skip
    patient.delete(f"/api/v1/entries/{gone['id']}/")
    clients.other_patient.post("/api/v1/entries/", {"kind": "craving", "craving": 9, "occurred_at": iso_ago(hours=1),
                                                    "note": "not yours"}, format="json")  # fmt: skip
    clients.clinician.post(
        f"/api/v1/patients/{cast.patient.id}/sessions/",
        {"kind": "ketamine", "starts_at": iso_ago(days=2), "duration_minutes": 90, "route": "im", "dose_mg": 50,
         "notes": "clinician-only remark"},
        format="json",
    )  # fmt: skip
    return edited


def test_json_export_has_everything_of_mine_and_the_notice(clients, history):
    response = clients.patient.get("/api/v1/me/export/")
    assert response["Content-Type"] == "application/json"
    assert "attachment" in response["Content-Disposition"]
    body = json.loads(_content(response))
    assert body["meta"]["notice"] == REDISCLOSURE_NOTICE
    assert len(body["entries"]) == 2  # the deleted one is gone
    assert {e["note"] for e in body["entries"]} == {'=HYPERLINK("http://evil")', "second"}
    assert [r["note"] for r in body["entry_revisions"]] == ["first"]
    assert len(body["sessions"]) == 1 and "notes" not in body["sessions"][0]
    assert body["consents"] == [] or body["consents"][0]["version"]
    text = json.dumps(body)
    assert "not yours" not in text and "clinician-only" not in text


def test_csv_export_starts_with_the_notice_and_escapes_formulas(clients, history):
    response = clients.patient.get("/api/v1/me/export/", {"format": "csv"})
    assert response["Content-Type"].startswith("text/csv")
    rows = list(csv.reader(io.StringIO(_content(response))))
    assert rows[0][0] == f"# {REDISCLOSURE_NOTICE}"
    header = rows[1]
    records = [dict(zip(header, row, strict=True)) for row in rows[2:]]
    assert [r["record_type"] for r in records].count("entry") == 2
    assert [r["record_type"] for r in records].count("session") == 1
    notes = {r["note"] for r in records if r["record_type"] == "entry"}
    assert '\'=HYPERLINK("http://evil")' in notes


@pytest.mark.parametrize(
    ("value", "cell"),
    [("=1+1", "'=1+1"), ("+44 20", "'+44 20"), ("-3", "'-3"), ("@SUM(A1)", "'@SUM(A1)"), ("fine", "fine"),
     (None, ""), (["stress", "boredom"], "stress boredom"), (5, "5"), (-5, "'-5")],
)  # fmt: skip
def test_csv_cells_never_start_a_formula(value, cell):
    assert csv_cell(value) == cell


def test_unknown_format_is_400(clients):
    assert clients.patient.get("/api/v1/me/export/", {"format": "xml"}).status_code == 400


def test_an_empty_format_is_the_default(clients):
    # Found by the schema fuzzer: `?format=` is a form's empty field, which every list takes as absent.
    response = clients.patient.get("/api/v1/me/export/", {"format": ""})
    assert response.status_code == 200 and response["Content-Type"].startswith("application/json")


def test_export_is_for_patients(clients):
    assert clients.clinician.get("/api/v1/me/export/").status_code == 403
    assert clients.anonymous.get("/api/v1/me/export/").status_code == 401
