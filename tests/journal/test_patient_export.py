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


@pytest.fixture
def reminders_of_mine(clients, cast):
    """A schedule with a message the patient wrote, its prompts, a phone, quiet hours: theirs too."""
    schedule = clients.patient.post(
        "/api/v1/reminders/",
        {"kind": "custom", "time": "20:00", "days": ["mon", "tue", "wed", "thu", "fri", "sat", "sun"],
         "message": "=evening words of mine"},
        format="json",
    )  # fmt: skip
    assert schedule.status_code == 201, schedule.content
    clients.patient.patch("/api/v1/me/", {"quiet_hours": {"start": "23:00", "end": "07:00"}}, format="json")
    device = clients.patient.post("/api/v1/devices/", {"platform": "android", "token": "secret-fcm"}, format="json")
    assert device.status_code in (200, 201), device.content
    clients.other_patient.post(
        "/api/v1/reminders/", {"kind": "custom", "time": "09:00", "message": "not yours either"}, format="json"
    )
    return schedule.json()


def test_the_export_holds_all_of_my_data_reminders_too(clients, history, reminders_of_mine):
    body = json.loads(_content(clients.patient.get("/api/v1/me/export/")))
    assert body["profile"][0]["quiet_hours"] == {"start": "23:00:00", "end": "07:00:00"}
    assert [s["message"] for s in body["reminder_schedules"]] == ["=evening words of mine"]
    assert any(p["message"] == "=evening words of mine" for p in body["prompts"])  # and the sampling checks
    assert [d["platform"] for d in body["devices"]] == ["android"]
    text = json.dumps(body)
    assert "secret-fcm" not in text and "not yours either" not in text

    rows = list(csv.reader(io.StringIO(_content(clients.patient.get("/api/v1/me/export/", {"format": "csv"})))))
    records = [dict(zip(rows[1], row, strict=True)) for row in rows[2:]]
    kinds = [r["record_type"] for r in records]
    assert {"profile", "entry_revision", "reminder_schedule", "prompt", "device"} <= set(kinds)
    [schedule] = [r for r in records if r["record_type"] == "reminder_schedule"]
    assert schedule["id"] == reminders_of_mine["id"]
    assert json.loads(schedule["details"])["message"] == "=evening words of mine"  # in JSON: no formula
    assert not any(cell.startswith(("=", "+", "-", "@")) for row in rows[2:] for cell in row)
    assert "secret-fcm" not in "".join(",".join(row) for row in rows)


def test_csv_times_are_utc_with_z_and_a_revision_keeps_the_moment_it_described(clients, history):
    rows = list(csv.reader(io.StringIO(_content(clients.patient.get("/api/v1/me/export/", {"format": "csv"})))))
    records = [dict(zip(rows[1], row, strict=True)) for row in rows[2:]]
    assert all(r[time].endswith("Z") for r in records for time in ("at", "received_at", "replaced_at") if r[time])
    assert any(r["received_at"] for r in records)
    [session] = [r for r in records if r["record_type"] == "session"]
    assert (session["route"], session["dose_mg"]) == ("im", "50.0")  # the patient's own dose, as in the JSON
    [revision] = [r for r in records if r["record_type"] == "entry_revision"]
    [entry] = [r for r in records if r["record_type"] == "entry" and r["id"] == history["id"]]
    assert (revision["revision_of"], revision["note"]) == (history["id"], "first")
    assert revision["at"] == entry["at"] == history["occurred_at"]  # the moment, not the edit
    assert revision["replaced_at"].endswith("Z") and revision["replaced_at"] > revision["at"]


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
