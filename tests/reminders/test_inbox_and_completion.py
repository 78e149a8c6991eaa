"""The prompt inbox, receipts, and answers that complete prompts (SPEC §7): an entry or assessment
carrying `prompt_id` completes an open prompt through the journal's `prompt_answered` hook, and
one answering an expired prompt is kept, marked late."""

import itertools
import threading
import time
import uuid
from datetime import UTC, datetime, timedelta
from datetime import time as clock

import pytest
from django.db import connection, transaction

from accounts.models import Patient
from journal.models import Assessment, Entry
from reminders.models import WEEKDAYS, Prompt, Schedule
from reminders.services.prompts import prompt_complete, prompts_expire

pytestmark = pytest.mark.django_db

INBOX_FIELDS = {"id", "kind", "instrument", "message", "scheduled_for", "sent_at", "expires_at", "status"}
_slots = itertools.count()


def _now() -> datetime:
    return datetime.now(UTC).replace(microsecond=0)


def _schedule(patient: Patient) -> Schedule:
    return Schedule.objects.get_or_create(
        patient=patient, kind="check_in", defaults={"days": list(WEEKDAYS), "time": clock(9)}
    )[0]


def _prompt(patient: Patient, *, status: str = "sent", ago: timedelta = timedelta(hours=1), **fields) -> Prompt:
    """A prompt due `ago` before now; sent then unless it is one that never went out."""
    scheduled_for = _now() - ago
    sent = status not in ("scheduled", "skipped", "failed")
    values = {
        "patient": patient,
        "schedule": _schedule(patient),
        "kind": "check_in",
        "local_date": patient.journal_day(scheduled_for)[0],
        "slot": next(_slots),
        "scheduled_for": scheduled_for,
        "expires_at": scheduled_for + timedelta(hours=2),
        "next_attempt_at": scheduled_for,
        "status": status,
        "sent_at": scheduled_for if sent else None,
        **fields,
    }
    return Prompt.objects.create(**values)


def _iso(moment: datetime) -> str:
    return moment.isoformat().replace("+00:00", "Z")


def _answer(client, prompt_id, occurred_at: datetime, **fields):
    payload = {"kind": "check_in", "occurred_at": _iso(occurred_at), "craving": 3, "mood": 6, **fields}
    return client.post("/api/v1/entries/", {**payload, "prompt_id": str(prompt_id)}, format="json")


# --- The inbox -----------------------------------------------------------------------------------


def test_inbox_shows_only_the_patients_open_prompts_newest_first(cast, clients):
    older = _prompt(cast.patient, status="sent", ago=timedelta(minutes=90))
    newer = _prompt(cast.patient, status="received", ago=timedelta(minutes=30), received_at=_now())
    _prompt(cast.patient, status="completed", completed_at=_now())
    _prompt(cast.patient, status="expired", ago=timedelta(hours=5))
    _prompt(cast.patient, status="sent", ago=timedelta(hours=3))  # past expires_at, not yet swept
    _prompt(cast.patient, status="scheduled", ago=-timedelta(hours=1))
    _prompt(cast.patient, status="skipped", skip_reason="quiet_hours")
    _prompt(cast.patient, status="failed")
    _prompt(cast.other_patient, status="sent", ago=timedelta(minutes=10))

    response = clients.patient.get("/api/v1/prompts/", {"status": "open"})

    assert response.status_code == 200
    body = response.json()
    assert [row["id"] for row in body["results"]] == [str(newer.id), str(older.id)]
    assert body["next"] is None
    row = body["results"][1]
    assert set(row) == INBOX_FIELDS
    assert row["status"] == "sent"
    assert row["kind"] == "check_in"
    assert row["sent_at"].endswith("Z") and row["expires_at"].endswith("Z") and row["scheduled_for"].endswith("Z")


def test_inbox_filters_by_literal_status_and_lists_everything_without_one(cast, clients):
    completed = _prompt(cast.patient, status="completed", completed_at=_now())
    skipped = _prompt(cast.patient, status="skipped", ago=timedelta(hours=3))
    _prompt(cast.other_patient, status="completed", completed_at=_now())

    only_completed = clients.patient.get("/api/v1/prompts/", {"status": "completed"}).json()["results"]
    everything = clients.patient.get("/api/v1/prompts/").json()["results"]

    assert [row["id"] for row in only_completed] == [str(completed.id)]
    assert [row["id"] for row in everything] == [str(completed.id), str(skipped.id)]


def test_an_unknown_status_filter_is_a_400(clients):
    response = clients.patient.get("/api/v1/prompts/", {"status": "pending"})
    assert response.status_code == 400
    assert response.json()["error"]["field_codes"] == {"status": ["invalid_choice"]}


def test_the_inbox_is_for_patients(clients):
    assert clients.clinician.get("/api/v1/prompts/").status_code == 403
    assert clients.anonymous.get("/api/v1/prompts/").status_code == 401


def test_inbox_query_count_does_not_grow_with_prompts(cast, clients, django_assert_num_queries):
    for minutes in range(3):
        _prompt(cast.patient, ago=timedelta(minutes=minutes + 1))
    # Queries: the signed-in user with their patient, the page.
    with django_assert_num_queries(2):
        assert len(clients.patient.get("/api/v1/prompts/", {"status": "open"}).json()["results"]) == 3
    for minutes in range(27):
        _prompt(cast.patient, ago=timedelta(minutes=minutes + 10))
    with django_assert_num_queries(2):
        assert len(clients.patient.get("/api/v1/prompts/", {"status": "open"}).json()["results"]) == 30


# --- Receipts ------------------------------------------------------------------------------------


def test_a_receipt_moves_sent_to_received_once(cast, clients):
    prompt = _prompt(cast.patient, status="sent")
    url = f"/api/v1/prompts/{prompt.id}/receipt/"

    first = clients.patient.post(url, format="json")
    prompt.refresh_from_db()
    received_at = prompt.received_at
    again = clients.patient.post(url, format="json")
    prompt.refresh_from_db()

    assert first.status_code == 200
    assert set(first.json()) == INBOX_FIELDS
    assert (first.json()["id"], first.json()["status"]) == (str(prompt.id), "received")
    assert again.status_code == 200 and again.json() == first.json()
    assert prompt.status == "received"
    assert received_at is not None and prompt.received_at == received_at


def test_a_receipt_for_another_patients_prompt_is_404_and_changes_nothing(cast, clients):
    theirs = _prompt(cast.other_patient, status="sent")

    response = clients.patient.post(f"/api/v1/prompts/{theirs.id}/receipt/", format="json")
    unknown = clients.patient.post(f"/api/v1/prompts/{uuid.uuid4()}/receipt/", format="json")

    assert response.status_code == 404 and unknown.status_code == 404
    assert response.json() == unknown.json()
    theirs.refresh_from_db()
    assert (theirs.status, theirs.received_at) == ("sent", None)


def test_a_receipt_never_reopens_a_completed_or_expired_prompt(cast, clients):
    completed = _prompt(cast.patient, status="completed", completed_at=_now())  # no receipt recorded
    expired = _prompt(cast.patient, status="expired", ago=timedelta(hours=5))
    never_sent = _prompt(cast.patient, status="failed")

    for prompt in (completed, expired, never_sent):
        assert clients.patient.post(f"/api/v1/prompts/{prompt.id}/receipt/", format="json").status_code == 200
        prompt.refresh_from_db()

    assert (completed.status, completed.received_at is not None) == ("completed", True)
    assert (expired.status, expired.received_at is not None) == ("expired", True)  # it was shown, not answered
    assert (never_sent.status, never_sent.received_at) == ("failed", None)


def test_receipts_are_for_patients(cast, clients):
    prompt = _prompt(cast.patient)
    assert clients.clinician.post(f"/api/v1/prompts/{prompt.id}/receipt/", format="json").status_code == 403


# --- Completion through the journal --------------------------------------------------------------


def test_an_entry_answering_an_open_prompt_completes_it(cast, clients):
    prompt = _prompt(cast.patient, status="sent", ago=timedelta(minutes=50))
    answered_at = prompt.sent_at + timedelta(minutes=20)

    response = _answer(clients.patient, prompt.id, answered_at)

    assert response.status_code == 201, response.content
    assert (response.json()["prompt_id"], response.json()["late"]) == (str(prompt.id), False)
    prompt.refresh_from_db()
    assert prompt.status == "completed"
    assert prompt.completed_at == answered_at
    assert prompt.completed_at - prompt.sent_at == timedelta(minutes=20)
    assert prompt.received_at == answered_at  # an answer counts as received
    assert clients.patient.get("/api/v1/prompts/", {"status": "open"}).json()["results"] == []


def test_an_assessment_answering_an_open_prompt_completes_it(cast, clients):
    prompt = _prompt(cast.patient, status="received", ago=timedelta(minutes=40), kind="assessment", instrument="phq9")
    received_at = prompt.sent_at + timedelta(minutes=1)
    Prompt.objects.filter(pk=prompt.pk).update(received_at=received_at)
    completed_at = prompt.sent_at + timedelta(minutes=15)

    response = clients.patient.post(
        "/api/v1/assessments/",
        {"instrument": "phq9", "answers": [1] * 9, "completed_at": _iso(completed_at), "prompt_id": str(prompt.id)},
        format="json",
    )

    assert response.status_code == 201, response.content
    assert Assessment.objects.get().late is False
    prompt.refresh_from_db()
    assert (prompt.status, prompt.completed_at, prompt.received_at) == ("completed", completed_at, received_at)


def test_an_entry_answering_an_expired_prompt_is_kept_late_and_the_prompt_stays_expired(cast, clients):
    prompt = _prompt(cast.patient, status="expired", ago=timedelta(hours=5))

    response = _answer(clients.patient, prompt.id, _now() - timedelta(minutes=5))

    assert response.status_code == 201
    assert response.json()["late"] is True
    assert Entry.objects.get().late is True
    prompt.refresh_from_db()
    assert (prompt.status, prompt.completed_at) == ("expired", None)


def test_an_answer_after_expiry_expires_a_prompt_the_sweep_has_not_reached(cast, clients):
    prompt = _prompt(cast.patient, status="received", ago=timedelta(hours=3), received_at=_now() - timedelta(hours=3))

    response = _answer(clients.patient, prompt.id, _now() - timedelta(minutes=5))

    assert response.json()["late"] is True
    prompt.refresh_from_db()
    assert (prompt.status, prompt.completed_at) == ("expired", None)


def test_an_answer_given_in_time_offline_completes_a_prompt_the_sweep_already_expired(cast, clients):
    # Answered while the phone was offline, synced after the sweep ran: judged by when the patient
    # answered, not by whether the sweep got there first.
    prompt = _prompt(cast.patient, status="expired", ago=timedelta(hours=3))
    answered_at = prompt.sent_at + timedelta(minutes=30)

    response = _answer(clients.patient, prompt.id, answered_at)

    assert response.json()["late"] is False
    prompt.refresh_from_db()
    assert (prompt.status, prompt.completed_at) == ("completed", answered_at)


def test_answering_another_patients_prompt_changes_nothing_and_keeps_the_entry(cast, clients):
    theirs = _prompt(cast.other_patient, status="sent", ago=timedelta(minutes=30))
    expired_theirs = _prompt(cast.other_patient, status="expired", ago=timedelta(hours=5))

    first = _answer(clients.patient, theirs.id, _now() - timedelta(minutes=5))
    second = _answer(clients.patient, expired_theirs.id, _now() - timedelta(minutes=4))
    unknown = _answer(clients.patient, uuid.uuid4(), _now() - timedelta(minutes=3))

    assert [r.status_code for r in (first, second, unknown)] == [201, 201, 201]
    assert [r.json()["late"] for r in (first, second, unknown)] == [False, False, False]
    theirs.refresh_from_db()
    expired_theirs.refresh_from_db()
    assert (theirs.status, theirs.completed_at, theirs.received_at) == ("sent", None, None)
    assert expired_theirs.status == "expired"


def test_a_prompt_not_yet_sent_is_not_completed_by_an_answer(cast, clients):
    prompt = _prompt(cast.patient, status="scheduled", ago=timedelta(minutes=10))

    response = _answer(clients.patient, prompt.id, _now() - timedelta(minutes=1))

    assert response.json()["late"] is False
    prompt.refresh_from_db()
    assert (prompt.status, prompt.completed_at) == ("scheduled", None)


def test_a_second_answer_to_one_prompt_leaves_the_first_completion(cast, clients):
    prompt = _prompt(cast.patient, status="sent", ago=timedelta(minutes=50))
    first_at = prompt.sent_at + timedelta(minutes=10)

    _answer(clients.patient, prompt.id, first_at)
    second = _answer(clients.patient, prompt.id, prompt.sent_at + timedelta(minutes=20))

    assert (second.status_code, second.json()["late"]) == (201, False)
    prompt.refresh_from_db()
    assert (prompt.status, prompt.completed_at) == ("completed", first_at)


def test_a_phone_clock_behind_the_server_never_makes_latency_negative(cast):
    prompt = _prompt(cast.patient, status="sent", ago=timedelta(minutes=30))

    late = prompt_complete(patient=cast.patient, prompt_id=prompt.id, answered_at=prompt.sent_at - timedelta(minutes=2))

    prompt.refresh_from_db()
    assert late is False
    assert (prompt.status, prompt.completed_at, prompt.received_at) == ("completed", prompt.sent_at, prompt.sent_at)


def _complete_in_thread(patient, prompt_id, answered_at, hold: float, started: threading.Event, results: list):
    try:
        with transaction.atomic():
            results.append(prompt_complete(patient=patient, prompt_id=prompt_id, answered_at=answered_at))
            started.set()
            time.sleep(hold)  # keep the row locked while the other answer arrives
    finally:
        connection.close()


@pytest.mark.django_db(transaction=True)
def test_two_answers_racing_complete_the_prompt_once(cast):
    prompt = _prompt(cast.patient, status="sent", ago=timedelta(minutes=50))
    first_at, second_at = prompt.sent_at + timedelta(minutes=5), prompt.sent_at + timedelta(minutes=9)
    started, results = threading.Event(), []

    first = threading.Thread(
        target=_complete_in_thread, args=(cast.patient, prompt.id, first_at, 0.5, started, results)
    )
    first.start()
    assert started.wait(timeout=10)
    second = threading.Thread(
        target=_complete_in_thread, args=(cast.patient, prompt.id, second_at, 0, threading.Event(), results)
    )
    second.start()
    first.join(timeout=30)
    second.join(timeout=30)

    assert results == [False, False]
    prompt.refresh_from_db()
    assert (prompt.status, prompt.completed_at) == ("completed", first_at)


# --- The expiry sweep ----------------------------------------------------------------------------


def test_the_sweep_expires_sent_prompts_nobody_answered_in_time(cast):
    now = _now()
    overdue_sent = _prompt(cast.patient, status="sent", ago=timedelta(hours=3))
    overdue_received = _prompt(cast.other_patient, status="received", ago=timedelta(hours=4), received_at=now)
    still_open = _prompt(cast.patient, status="sent", ago=timedelta(minutes=30))
    answered = _prompt(cast.patient, status="completed", ago=timedelta(hours=3), completed_at=now)
    never_sent = _prompt(cast.patient, status="scheduled", ago=timedelta(hours=3))  # the delivery sweep's

    assert prompts_expire(now=now) == 2
    assert prompts_expire(now=now) == 0

    statuses = dict(Prompt.objects.values_list("id", "status"))
    assert statuses == {
        overdue_sent.id: "expired",
        overdue_received.id: "expired",
        still_open.id: "sent",
        answered.id: "completed",
        never_sent.id: "scheduled",
    }


def test_an_edit_that_names_the_prompt_it_answers_completes_it(cast, clients):
    prompt = _prompt(cast.patient, status="sent", ago=timedelta(minutes=50))
    answered_at = prompt.sent_at + timedelta(minutes=10)
    created = clients.patient.post(
        "/api/v1/entries/", {"kind": "craving", "occurred_at": _iso(answered_at), "craving": 3}, format="json"
    )
    assert created.status_code == 201
    edited = clients.patient.patch(
        f"/api/v1/entries/{created.json()['id']}/", {"prompt_id": str(prompt.id)}, format="json"
    )
    assert edited.status_code == 200, edited.content
    prompt.refresh_from_db()
    assert (prompt.status, prompt.completed_at) == ("completed", answered_at)


def test_an_answer_found_late_stays_late_through_an_edit(cast, clients):
    prompt = _prompt(cast.patient, status="expired", ago=timedelta(hours=5))
    response = _answer(clients.patient, prompt.id, _now() - timedelta(minutes=5))
    assert response.json()["late"] is True
    edited = clients.patient.patch(f"/api/v1/entries/{response.json()['id']}/", {"note": "later"}, format="json")
    assert edited.json()["late"] is True
