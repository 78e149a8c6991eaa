import uuid
from datetime import UTC, datetime, timedelta

import pytest
from django.db import connection

from accounts.models import Patient
from journal.models import Entry, EntryRevision
from tests.timeutil import iso_ago

pytestmark = pytest.mark.django_db


def check_in(**fields) -> dict:
    return {"kind": "check_in", "occurred_at": iso_ago(hours=2), "craving": 4, "mood": 6, **fields}


def post(client, payload):
    return client.post("/api/v1/entries/", payload, format="json")


def test_patient_logs_a_check_in_with_every_field(clients):
    payload = check_in(
        id=str(uuid.uuid4()),
        anxiety=3,
        sleep_hours=7.25,
        triggers=["stress", "boredom"],
        coping=["exercise"],
        note="Long day, but I went for a run.",
    )
    response = post(clients.patient, payload)
    assert response.status_code == 201, response.content
    body = response.json()
    assert body["id"] == payload["id"]
    assert (body["craving"], body["mood"], body["anxiety"], body["sleep_hours"]) == (4, 6, 3, 7.25)
    assert body["note"] == payload["note"]
    assert (body["version"], body["edited"], body["late"]) == (1, False, False)
    assert body["occurred_at"].endswith("Z") and body["received_at"].endswith("Z")
    assert response["ETag"] == '"1"'


@pytest.mark.parametrize(
    ("payload", "field", "code"),
    [
        ({"kind": "check_in", "craving": 3}, "mood", "required"),
        ({"kind": "craving"}, "craving", "required"),
        ({"kind": "use"}, "substance", "required"),
        ({"kind": "craving", "craving": 11}, "craving", "max_value"),
        ({"kind": "craving", "craving": -1}, "craving", "min_value"),
        ({"kind": "craving", "craving": "5"}, "craving", "invalid"),
        ({"kind": "craving", "craving": 5.0}, "craving", "invalid"),
        ({"kind": "craving", "craving": True}, "craving", "invalid"),
        ({"kind": "craving", "craving": 3, "sleep_hours": 7.3}, "sleep_hours", "step"),
        ({"kind": "craving", "craving": 3, "sleep_hours": 25}, "sleep_hours", "max_value"),
        ({"kind": "craving", "craving": 3, "triggers": ["stress", "stress"]}, "triggers", "duplicate"),
        ({"kind": "craving", "craving": 3, "triggers": ["zombies"]}, "triggers.0", "invalid_choice"),
        (
            {
                "kind": "craving",
                "craving": 3,
                "triggers": [
                    "stress",
                    "conflict",
                    "loneliness",
                    "boredom",
                    "celebration",
                    "social_pressure",
                    "cue_exposure",
                    "negative_mood",
                    "physical_pain",
                    "fatigue",
                    "hunger",
                ],
            },
            "triggers",
            "max_length",
        ),
        ({"kind": "craving", "craving": 3, "note": "x" * 2001}, "note", "max_length"),
        ({"kind": "craving", "craving": 3, "note": "a\x00b"}, "note", "null_characters_not_allowed"),
        ({"kind": "craving", "craving": 3, "amount": "y" * 101}, "amount", "max_length"),
        ({"kind": "use", "substance": "coffee"}, "substance", "invalid_choice"),
        ({"kind": "dream", "craving": 3}, "kind", "invalid_choice"),
    ],
)
def test_invalid_entries_get_field_codes(clients, payload, field, code):
    response = post(clients.patient, {"occurred_at": iso_ago(hours=1), **payload})
    assert response.status_code == 400
    error = response.json()["error"]
    assert error["code"] == "validation_error"
    assert code in error["field_codes"][field], error


def test_naive_datetime_is_400(clients):
    response = post(clients.patient, check_in(occurred_at="2026-11-28T09:00:00"))
    assert response.json()["error"]["field_codes"]["occurred_at"] == ["naive"]


def test_five_minutes_of_clock_skew_is_tolerated_but_not_more(clients):
    soon = (datetime.now(UTC) + timedelta(minutes=4)).isoformat()
    later = (datetime.now(UTC) + timedelta(minutes=6)).isoformat()
    assert post(clients.patient, check_in(occurred_at=soon)).status_code == 201
    response = post(clients.patient, check_in(occurred_at=later))
    assert response.json()["error"]["field_codes"]["occurred_at"] == ["occurred_at_in_future"]


def test_offline_entries_up_to_30_days_before_joining_are_kept_and_late(clients, cast):
    Patient.objects.filter(pk=cast.patient.pk).update(created_at=datetime.now(UTC) - timedelta(days=100))
    ok = post(clients.patient, check_in(occurred_at=iso_ago(days=129)))
    assert ok.status_code == 201
    assert ok.json()["late"] is True
    too_old = post(clients.patient, check_in(occurred_at=iso_ago(days=131)))
    assert too_old.json()["error"]["field_codes"]["occurred_at"] == ["occurred_at_too_old"]


def test_an_entry_received_within_a_day_is_not_late(clients):
    assert post(clients.patient, check_in(occurred_at=iso_ago(hours=23))).json()["late"] is False
    assert post(clients.patient, check_in(occurred_at=iso_ago(hours=25))).json()["late"] is True


def test_same_id_same_content_is_a_safe_retry(clients):
    payload = check_in(id=str(uuid.uuid4()), note="retry me")
    first = post(clients.patient, payload)
    again = post(clients.patient, payload)
    assert (first.status_code, again.status_code) == (201, 200)
    assert again.json() == first.json()
    assert Entry.objects.count() == 1


def test_same_id_same_instant_in_another_offset_is_the_same_content(clients):
    entry_id = str(uuid.uuid4())
    assert post(clients.patient, check_in(id=entry_id, occurred_at="2026-11-28T10:00:00+00:00")).status_code == 201
    assert post(clients.patient, check_in(id=entry_id, occurred_at="2026-11-28T05:00:00-05:00")).status_code == 200


def test_same_id_other_content_is_409(clients):
    payload = check_in(id=str(uuid.uuid4()))
    post(clients.patient, payload)
    response = post(clients.patient, {**payload, "craving": 9})
    assert response.status_code == 409
    assert response.json()["error"]["code"] == "conflict"


def test_another_patients_id_is_409_and_untouched(clients, cast):
    payload = check_in(id=str(uuid.uuid4()), note="mine")
    post(clients.other_patient, payload)
    assert post(clients.patient, payload).status_code == 409
    assert Entry.objects.get().patient_id == cast.other_patient.id


def test_forged_server_fields_are_ignored(clients, cast):
    response = post(
        clients.patient,
        check_in(patient=str(cast.other_patient.id), version=99, local_date="1999-01-01", late=True, received_at="x"),
    )
    assert response.status_code == 201
    entry = Entry.objects.get()
    assert entry.patient_id == cast.patient.id
    assert (entry.version, entry.late) == (1, False)
    assert str(entry.local_date) != "1999-01-01"


def test_notes_are_encrypted_at_rest(clients):
    post(clients.patient, check_in(note="I drank two beers at the party"))
    with connection.cursor() as cursor:
        cursor.execute("SELECT note FROM journal_entry")
        (raw,) = cursor.fetchone()
    assert raw.startswith("fernet:")
    assert "beers" not in raw
    assert Entry.objects.get().note == "I drank two beers at the party"


@pytest.mark.parametrize(
    ("zone", "occurred_at", "local_date", "local_hour"),
    [
        ("Pacific/Kiritimati", "2026-03-01T20:00:00Z", "2026-03-02", 10),  # UTC+14
        ("Pacific/Pago_Pago", "2026-03-02T05:00:00Z", "2026-03-01", 18),  # UTC-11
        ("America/New_York", "2026-03-08T06:59:00Z", "2026-03-08", 1),  # 01:59 EST, just before spring-forward
        ("America/New_York", "2026-03-08T07:00:00Z", "2026-03-08", 3),  # 03:00 EDT: 02:xx never happens
        ("America/New_York", "2026-11-01T05:30:00Z", "2026-11-01", 1),  # first 01:30 (EDT)
        ("America/New_York", "2026-11-01T06:30:00Z", "2026-11-01", 1),  # second 01:30 (EST)
        ("America/New_York", "2026-11-02T04:59:00Z", "2026-11-01", 23),  # still Nov 1 locally
        ("Australia/Lord_Howe", "2026-04-04T14:45:00Z", "2026-04-05", 1),  # 30-minute DST shift
        ("Asia/Kolkata", "2026-06-30T18:29:00Z", "2026-06-30", 23),
    ],
)
def test_local_date_is_the_patients_calendar_day(clients, cast, zone, occurred_at, local_date, local_hour):
    Patient.objects.filter(pk=cast.patient.pk).update(timezone=zone, created_at=datetime(2026, 1, 1, tzinfo=UTC))
    response = post(clients.patient, {"kind": "craving", "craving": 2, "occurred_at": occurred_at})
    assert response.status_code == 201, response.content
    assert response.json()["local_date"] == local_date
    assert Entry.objects.get().local_hour == local_hour


def test_local_date_is_fixed_at_write_time(clients, cast):
    body = post(clients.patient, check_in(occurred_at="2026-11-28T03:00:00Z")).json()
    clients.patient.patch("/api/v1/me/", {"timezone": "Pacific/Kiritimati"}, format="json")
    assert clients.patient.get(f"/api/v1/entries/{body['id']}/").json()["local_date"] == body["local_date"]


def test_list_is_own_newest_first_filtered_by_journal_day_and_kind(clients):
    post(clients.other_patient, check_in())
    ids = [post(clients.patient, check_in(occurred_at=iso_ago(days=d))).json()["id"] for d in (3, 1, 2)]
    post(clients.patient, {"kind": "craving", "craving": 8, "occurred_at": iso_ago(hours=1)})
    rows = clients.patient.get("/api/v1/entries/", {"kind": "check_in"}).json()["results"]
    assert [row["id"] for row in rows] == [ids[1], ids[2], ids[0]]
    one_day = rows[0]["local_date"]
    filtered = clients.patient.get("/api/v1/entries/", {"from": one_day, "to": one_day}).json()["results"]
    assert {row["local_date"] for row in filtered} == {one_day}
    assert clients.patient.get("/api/v1/entries/", {"from": "last week"}).status_code == 400


def test_list_paginates_with_a_cursor(clients):
    for hours in range(5):
        post(clients.patient, check_in(occurred_at=iso_ago(hours=hours + 1)))
    page = clients.patient.get("/api/v1/entries/", {"page_size": 2}).json()
    seen = [row["id"] for row in page["results"]]
    while page["next"]:
        page = clients.patient.get(page["next"]).json()
        seen += [row["id"] for row in page["results"]]
    assert len(seen) == len(set(seen)) == 5


def test_list_query_count_is_flat(clients, django_assert_num_queries):
    for hours in range(3):
        post(clients.patient, check_in(occurred_at=iso_ago(hours=hours + 1)))
    # Queries: sign-in with user and patient, the page.
    with django_assert_num_queries(2):
        clients.patient.get("/api/v1/entries/")
    for hours in range(30):
        post(clients.patient, check_in(occurred_at=iso_ago(hours=hours + 5)))
    with django_assert_num_queries(2):
        clients.patient.get("/api/v1/entries/")


def test_edit_bumps_version_keeps_revision_and_checks_if_match(clients, cast):
    entry = post(clients.patient, check_in(note="first")).json()
    url = f"/api/v1/entries/{entry['id']}/"
    edited = clients.patient.patch(url, {"craving": 7, "note": "second"}, format="json", HTTP_IF_MATCH='"1"')
    assert edited.status_code == 200
    assert (edited.json()["version"], edited.json()["edited"], edited.json()["craving"]) == (2, True, 7)
    assert edited["ETag"] == '"2"'
    stale = clients.patient.patch(url, {"craving": 1}, format="json", HTTP_IF_MATCH='"1"')
    assert stale.status_code == 412
    assert stale.json()["error"]["code"] == "precondition_failed"
    revision = EntryRevision.objects.get()
    assert (revision.version, revision.content["craving"], revision.note) == (1, 4, "first")
    revisions = clients.clinician.get(f"/api/v1/patients/{cast.patient.id}/entries/{entry['id']}/revisions/").json()
    assert [(r["version"], r["note"]) for r in revisions] == [(1, "first")]
    assert revisions[0]["content"]["occurred_at"] == entry["occurred_at"]  # UTC with Z, as SPEC §3 says


def test_edit_revalidates_the_whole_entry(clients):
    entry = post(clients.patient, check_in()).json()
    response = clients.patient.patch(f"/api/v1/entries/{entry['id']}/", {"kind": "use"}, format="json")
    assert response.json()["error"]["field_codes"]["substance"] == ["required"]


def test_edit_without_change_does_not_bump(clients):
    entry = post(clients.patient, check_in()).json()
    response = clients.patient.patch(f"/api/v1/entries/{entry['id']}/", {"craving": 4}, format="json")
    assert response.json()["version"] == 1


def test_delete_leaves_a_tombstone(clients):
    entry = post(clients.patient, check_in()).json()
    url = f"/api/v1/entries/{entry['id']}/"
    assert clients.patient.delete(url, HTTP_IF_MATCH='"7"').status_code == 412
    assert clients.patient.delete(url).status_code == 204
    assert clients.patient.get(url).status_code == 404
    assert clients.patient.get("/api/v1/entries/").json()["results"] == []
    stored = Entry.objects.get()
    assert stored.deleted_at is not None and stored.version == 2
    assert post(clients.patient, check_in(id=entry["id"])).status_code == 409


def test_patient_cannot_touch_another_patients_entry(clients, cast):
    theirs = post(clients.other_patient, check_in(note="private")).json()
    url = f"/api/v1/entries/{theirs['id']}/"
    assert clients.patient.get(url).status_code == 404
    assert clients.patient.patch(url, {"craving": 1}, format="json").status_code == 404
    assert clients.patient.delete(url).status_code == 404
    assert Entry.objects.get().version == 1


def test_clinicians_read_the_journal_with_notes_but_cannot_use_patient_routes(clients, cast):
    post(clients.patient, check_in(note="for my therapist"))
    rows = clients.clinician.get(f"/api/v1/patients/{cast.patient.id}/entries/").json()["results"]
    assert rows[0]["note"] == "for my therapist"
    assert clients.outsider.get(f"/api/v1/patients/{cast.patient.id}/entries/").status_code == 404
    assert clients.clinician.get("/api/v1/entries/").status_code == 403
    assert clients.clinician.post("/api/v1/entries/", check_in(), format="json").status_code == 403


def test_the_hand_written_entry_rendering_equals_the_declared_fields(clients, cast):
    from rest_framework import serializers

    from journal.models import Entry
    from journal.serializers.entries import EntrySerializer

    now = datetime.now(UTC) - timedelta(minutes=1)
    payloads = [
        {"kind": "check_in", "occurred_at": now.isoformat(), "craving": 0, "mood": 10, "anxiety": 3,
         "sleep_hours": 7.25, "triggers": ["stress", "boredom"], "coping": ["exercise"], "note": "=1+2 a note"},
        {"kind": "use", "occurred_at": (now - timedelta(hours=30)).isoformat(), "substance": "alcohol",
         "amount": "two glasses"},
        {"kind": "craving", "occurred_at": now.isoformat(), "craving": 9, "prompt_id": str(uuid.uuid4())},
    ]  # fmt: skip
    for payload in payloads:
        assert clients.patient.post("/api/v1/entries/", payload, format="json").status_code == 201
    entries = list(Entry.objects.filter(patient=cast.patient))
    assert len(entries) == 3
    for entry in entries:
        generic = serializers.Serializer.to_representation(EntrySerializer(), entry)
        assert EntrySerializer(entry).data == generic
