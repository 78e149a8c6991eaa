"""Questionnaires (SPEC §6): the catalogue, scoring, validation, safe retries, who may read them,
and the alert seam's `support` block."""

import contextlib
import threading
import uuid
from datetime import UTC, datetime, timedelta, timezone

import pytest
import time_machine
from django.db import connection
from rest_framework.test import APIClient

from accounts.models import AccessLog, Patient
from journal import risk
from journal.instruments import GAD7, INSTRUMENTS, PHQ9
from journal.models import Assessment
from journal.services import assessments as assessment_services
from tests.conftest import client_for, sign_in

pytestmark = pytest.mark.django_db

JOINED = datetime(2026, 1, 1, tzinfo=UTC)
NOW = datetime(2026, 3, 10, 12, 0, tzinfo=UTC)


@pytest.fixture
def cast(cast):
    """The usual cast, with patients who joined the clinic on JOINED, so fixed dates after it are valid."""
    Patient.objects.filter(pk__in=[cast.patient.pk, cast.other_patient.pk]).update(created_at=JOINED)
    cast.patient.refresh_from_db()
    cast.other_patient.refresh_from_db()
    return cast


@contextlib.contextmanager
def _patient_at(moment: datetime, patient: Patient):
    """The patient's phone with the clock stopped at `moment` (signed in then, so its token is valid)."""
    with time_machine.travel(moment, tick=False):
        yield client_for(patient.user)


def _answers_summing_to(total: int, items: int, high: int) -> list[int]:
    answers = []
    for _ in range(items):
        answers.append(min(high, total))
        total -= answers[-1]
    assert total == 0
    return answers


QUIET_PHQ9 = [2, 1, 1, 1, 1, 1, 1, 1, 0]


def _payload(instrument="phq9", answers=None, completed_at=None, **fields) -> dict:
    if answers is None:
        # A mild PHQ-9 (9) with item 9 at 0: the self-harm alert has tests of its own (test_alert_rules).
        answers = QUIET_PHQ9 if instrument == "phq9" else [1] * INSTRUMENTS[instrument].item_count
    if completed_at is None:
        completed_at = (datetime.now(UTC) - timedelta(hours=1)).isoformat()
    return {"instrument": instrument, "answers": answers, "completed_at": completed_at, **fields}


def _post(client, **payload):
    return client.post("/api/v1/assessments/", _payload(**payload), format="json")


def _field_codes(response) -> dict:
    assert response.status_code == 400, response.content
    error = response.json()["error"]
    assert error["code"] == "validation_error"
    return error["field_codes"]


# --- The catalogue --------------------------------------------------------------------------------


def test_catalogue_lists_every_instrument_with_items_options_and_scoring(clients):
    response = clients.patient.get("/api/v1/instruments/")
    assert response.status_code == 200
    body = response.json()
    assert body["next"] is None
    by_code = {row["code"]: row for row in body["results"]}
    assert set(by_code) == {"phq9", "gad7", "pacs"}

    phq9 = by_code["phq9"]
    assert phq9["name"] == "PHQ-9"
    assert len(phq9["items"]) == 9
    assert phq9["items"][0]["text"] == "Little interest or pleasure in doing things"
    assert phq9["items"][8]["text"] == "Thoughts that you would be better off dead, or of hurting yourself in some way"
    assert phq9["items"][0]["options"] == [
        {"value": 0, "label": "Not at all"},
        {"value": 1, "label": "Several days"},
        {"value": 2, "label": "More than half the days"},
        {"value": 3, "label": "Nearly every day"},
    ]
    assert phq9["scoring"]["min"] == 0 and phq9["scoring"]["max"] == 27
    assert [band["severity"] for band in phq9["scoring"]["bands"]] == [
        "minimal",
        "mild",
        "moderate",
        "moderately_severe",
        "severe",
    ]

    assert len(by_code["gad7"]["items"]) == 7
    assert by_code["gad7"]["scoring"]["max"] == 21
    pacs = by_code["pacs"]
    assert len(pacs["items"]) == 5
    assert all([o["value"] for o in item["options"]] == list(range(7)) for item in pacs["items"])
    assert pacs["scoring"] == {"min": 0, "max": 30, "bands": []}


def test_catalogue_is_open_to_clinicians_but_not_to_anonymous(clients):
    assert clients.clinician.get("/api/v1/instruments/").status_code == 200
    assert clients.anonymous.get("/api/v1/instruments/").status_code == 401


@pytest.mark.parametrize("spec", [PHQ9, GAD7], ids=lambda spec: spec.code)
def test_bands_cover_every_possible_total_without_gaps(spec):
    totals = [total for band in spec.bands for total in range(band.min, band.max + 1)]
    assert totals == list(range(spec.min_score, spec.max_score + 1))


# --- Scoring --------------------------------------------------------------------------------------

PHQ9_BOUNDARIES = [
    (0, "minimal"),
    (4, "minimal"),
    (5, "mild"),
    (9, "mild"),
    (10, "moderate"),
    (14, "moderate"),
    (15, "moderately_severe"),
    (19, "moderately_severe"),
    (20, "severe"),
    (27, "severe"),
]
GAD7_BOUNDARIES = [
    (0, "minimal"),
    (4, "minimal"),
    (5, "mild"),
    (9, "mild"),
    (10, "moderate"),
    (14, "moderate"),
    (15, "severe"),
    (21, "severe"),
]


@pytest.mark.parametrize(("total", "severity"), PHQ9_BOUNDARIES)
def test_phq9_total_lands_in_its_band(clients, total, severity):
    response = _post(clients.patient, instrument="phq9", answers=_answers_summing_to(total, 9, 3))
    assert response.status_code == 201, response.content
    assert (response.json()["score"], response.json()["severity"]) == (total, severity)


@pytest.mark.parametrize(("total", "severity"), GAD7_BOUNDARIES)
def test_gad7_total_lands_in_its_band(clients, total, severity):
    response = _post(clients.patient, instrument="gad7", answers=_answers_summing_to(total, 7, 3))
    assert response.status_code == 201, response.content
    assert (response.json()["score"], response.json()["severity"]) == (total, severity)


def test_pacs_scores_up_to_thirty_with_no_severity(clients):
    response = _post(clients.patient, instrument="pacs", answers=[6, 6, 6, 6, 6])
    assert response.status_code == 201, response.content
    assert response.json()["score"] == 30
    assert response.json()["severity"] is None
    assert Assessment.objects.get().severity is None


def test_created_assessment_carries_server_fields(cast):
    assessment_id = str(uuid.uuid4())
    prompt_id = str(uuid.uuid4())
    with _patient_at(NOW, cast.patient) as phone:
        response = _post(
            phone,
            id=assessment_id,
            prompt_id=prompt_id,
            completed_at="2026-03-10T07:30:00-04:00",
        )
    assert response.status_code == 201, response.content
    body = response.json()
    assert body == {
        "id": assessment_id,
        "instrument": "phq9",
        "answers": QUIET_PHQ9,
        "score": 9,
        "severity": "mild",
        "completed_at": "2026-03-10T11:30:00Z",
        "local_date": "2026-03-10",
        "received_at": "2026-03-10T12:00:00Z",
        "late": False,
        "prompt_id": prompt_id,
    }
    assert Assessment.objects.get().patient == cast.patient


def test_server_owned_fields_in_the_body_are_ignored(cast, clients):
    response = _post(clients.patient, score=0, severity="minimal", late=True, patient=str(cast.other_patient.id))
    assert response.status_code == 201
    assert response.json()["score"] == 9
    assert response.json()["late"] is False
    assert Assessment.objects.get().patient == cast.patient


def test_local_date_is_the_journal_day_in_the_patients_zone(cast, clients):
    cast.patient.timezone = "Pacific/Kiritimati"  # UTC+14
    cast.patient.save(update_fields=["timezone"])
    response = _post(clients.patient, completed_at="2026-03-01T20:00:00Z")
    assert response.status_code == 201, response.content
    assert response.json()["local_date"] == "2026-03-02"


def test_received_more_than_a_day_after_completion_is_late(cast):
    with _patient_at(NOW, cast.patient) as phone:
        late = _post(phone, completed_at=(NOW - timedelta(hours=24, seconds=1)).isoformat())
        on_time = _post(phone, completed_at=(NOW - timedelta(hours=24)).isoformat())
    assert late.json()["late"] is True
    assert on_time.json()["late"] is False


# --- Validation -----------------------------------------------------------------------------------


@pytest.mark.parametrize(("instrument", "count"), [("phq9", 8), ("phq9", 10), ("gad7", 9), ("pacs", 0)])
def test_wrong_number_of_answers_is_400_wrong_count(clients, instrument, count):
    codes = _field_codes(_post(clients.patient, instrument=instrument, answers=[0] * count))
    assert codes == {"answers": ["wrong_count"]}
    assert not Assessment.objects.exists()


@pytest.mark.parametrize(
    ("instrument", "bad"),
    [("phq9", 4), ("phq9", -1), ("gad7", 4), ("pacs", 7)],
)
def test_answer_out_of_range_is_400_on_that_item(clients, instrument, bad):
    answers = [0] * INSTRUMENTS[instrument].item_count
    answers[3] = bad
    codes = _field_codes(_post(clients.patient, instrument=instrument, answers=answers))
    assert codes == {"answers.3": ["out_of_range"]}


@pytest.mark.parametrize("bad", ["2", 2.0, True, None, [1], {"value": 1}])
def test_answer_that_is_not_a_json_integer_is_400(clients, bad):
    answers = [0] * 9
    answers[3] = bad
    codes = _field_codes(_post(clients.patient, answers=answers))
    assert set(codes) == {"answers.3"}
    assert not Assessment.objects.exists()


@pytest.mark.parametrize("bad", ["phq10", "PHQ9", "phq9\x00", "", 9, None])
def test_unknown_instrument_is_400(clients, bad):
    assert set(_field_codes(_post(clients.patient, instrument=bad, answers=[0] * 9))) == {"instrument"}


def test_nul_byte_in_instrument_is_not_echoed_back(clients):
    response = _post(clients.patient, instrument="phq9\x00", answers=[0] * 9)
    assert "\\u0000" not in response.content.decode()


def test_naive_completed_at_is_400(clients):
    codes = _field_codes(_post(clients.patient, completed_at="2026-03-10T09:00:00"))
    assert codes == {"completed_at": ["naive"]}


def test_completed_at_more_than_five_minutes_ahead_is_400_in_future(cast):
    with _patient_at(NOW, cast.patient) as phone:
        ahead = _post(phone, completed_at=(NOW + timedelta(minutes=5, seconds=1)).isoformat())
        skew = _post(phone, completed_at=(NOW + timedelta(minutes=5)).isoformat())
    assert _field_codes(ahead) == {"completed_at": ["completed_at_in_future"]}
    assert skew.status_code == 201


def test_completed_at_long_before_the_patient_joined_is_400_too_old(cast, clients):
    joined = cast.patient.created_at
    too_old = _post(clients.patient, completed_at=(joined - timedelta(days=30, seconds=1)).isoformat())
    assert _field_codes(too_old) == {"completed_at": ["completed_at_too_old"]}
    oldest = _post(clients.patient, completed_at=(joined - timedelta(days=30)).isoformat())
    assert oldest.status_code == 201
    assert oldest.json()["late"] is True


def test_time_and_answer_errors_are_reported_together(cast):
    with _patient_at(NOW, cast.patient) as phone:
        response = _post(phone, answers=[0] * 3, completed_at=(NOW + timedelta(days=1)).isoformat())
    assert _field_codes(response) == {"completed_at": ["completed_at_in_future"], "answers": ["wrong_count"]}


@pytest.mark.parametrize("bad_id", ["not-a-uuid", 12345, "\x00"])
def test_malformed_id_is_400(clients, bad_id):
    assert set(_field_codes(_post(clients.patient, id=bad_id))) == {"id"}


# --- Safe retries ---------------------------------------------------------------------------------


def test_same_id_and_content_again_is_200_with_the_stored_assessment(clients):
    payload = _payload(id=str(uuid.uuid4()), prompt_id=str(uuid.uuid4()))
    first = clients.patient.post("/api/v1/assessments/", payload, format="json")
    # The same instant written with another offset is the same content.
    instant = datetime.fromisoformat(payload["completed_at"]).astimezone(timezone(timedelta(hours=5, minutes=30)))
    again = clients.patient.post(
        "/api/v1/assessments/", {**payload, "completed_at": instant.isoformat()}, format="json"
    )
    assert first.status_code == 201
    assert again.status_code == 200
    assert again.json() == first.json()
    assert Assessment.objects.count() == 1


@pytest.mark.parametrize(
    "change",
    [
        {"answers": [2] * 9},
        {"instrument": "gad7", "answers": [1] * 7},
        {"completed_at": "2026-03-01T00:00:00Z"},
        {"prompt_id": None},
    ],
    ids=["answers", "instrument", "completed_at", "prompt_id"],
)
def test_same_id_with_other_content_is_409(clients, change):
    payload = _payload(id=str(uuid.uuid4()), prompt_id=str(uuid.uuid4()))
    assert clients.patient.post("/api/v1/assessments/", payload, format="json").status_code == 201
    response = clients.patient.post("/api/v1/assessments/", {**payload, **change}, format="json")
    assert response.status_code == 409
    assert response.json()["error"]["code"] == "conflict"
    assert Assessment.objects.count() == 1


def test_another_patients_assessment_id_is_409_and_reveals_nothing(cast, clients):
    payload = _payload(id=str(uuid.uuid4()), answers=[3] * 9)
    assert clients.other_patient.post("/api/v1/assessments/", payload, format="json").status_code == 201

    same_content = clients.patient.post("/api/v1/assessments/", payload, format="json")
    other_content = clients.patient.post("/api/v1/assessments/", {**payload, "answers": [0] * 9}, format="json")
    for response in (same_content, other_content):
        assert response.status_code == 409
        assert set(response.json()) == {"error"}
        assert "27" not in response.content.decode()
    assert same_content.json() == other_content.json()
    stored = Assessment.objects.get()
    assert stored.patient == cast.other_patient
    assert stored.answers == [3] * 9


def test_retry_that_lost_the_race_to_insert_reads_the_stored_row(clients, monkeypatch):
    # Simulates a parallel request storing the row between this request's read and its insert.
    payload = _payload(id=str(uuid.uuid4()))
    first = clients.patient.post("/api/v1/assessments/", payload, format="json")
    reads = []

    def stored_after_first_miss(assessment_id):
        reads.append(assessment_id)
        return None if len(reads) == 1 else Assessment.objects.filter(pk=assessment_id).first()

    monkeypatch.setattr(assessment_services, "_stored", stored_after_first_miss)
    again = clients.patient.post("/api/v1/assessments/", payload, format="json")
    assert again.status_code == 200
    assert again.json() == first.json()
    assert len(reads) == 2
    conflict = clients.patient.post("/api/v1/assessments/", {**payload, "answers": [0] * 9}, format="json")
    assert conflict.status_code == 409


def _post_in_thread(access: str, payload: dict, barrier: threading.Barrier, results: list) -> None:
    try:
        client = APIClient()
        client.credentials(HTTP_AUTHORIZATION=f"Bearer {access}")
        barrier.wait(timeout=10)
        response = client.post("/api/v1/assessments/", payload, format="json")
        results.append((response.status_code, response.json()))
    finally:
        connection.close()  # each thread has its own connection; give it back


@pytest.mark.django_db(transaction=True)
def test_two_parallel_posts_of_one_id_store_one_row_and_never_fail(cast):
    access = sign_in(APIClient(), cast.patient.user.email)["access"]
    for _ in range(3):  # a few rounds, each with a fresh id: the race is not won the same way every time
        payload = _payload(id=str(uuid.uuid4()))
        barrier, results = threading.Barrier(2), []
        threads = [threading.Thread(target=_post_in_thread, args=(access, payload, barrier, results)) for _ in range(2)]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join(timeout=30)
        assert sorted(status for status, _ in results) == [200, 201]
        assert results[0][1] == results[1][1]
        assert Assessment.objects.filter(pk=payload["id"]).count() == 1


# --- Who reads what -------------------------------------------------------------------------------


def test_patient_lists_only_their_own_assessments_newest_first(cast, clients):
    older = _post(clients.patient, completed_at="2026-03-08T09:00:00Z").json()
    newer = _post(clients.patient, instrument="gad7", completed_at="2026-03-09T09:00:00Z").json()
    _post(clients.other_patient, completed_at="2026-03-09T10:00:00Z")
    body = clients.patient.get("/api/v1/assessments/").json()
    assert [row["id"] for row in body["results"]] == [newer["id"], older["id"]]
    assert body["next"] is None
    other = clients.other_patient.get("/api/v1/assessments/").json()["results"]
    assert len(other) == 1
    assert other[0]["id"] not in {older["id"], newer["id"]}


def test_patient_list_filters_by_instrument(clients):
    _post(clients.patient, instrument="phq9")
    _post(clients.patient, instrument="pacs")
    rows = clients.patient.get("/api/v1/assessments/", {"instrument": "pacs"}).json()["results"]
    assert [row["instrument"] for row in rows] == ["pacs"]


def test_empty_instrument_filter_lists_everything(clients):
    _post(clients.patient, instrument="phq9")
    _post(clients.patient, instrument="pacs")
    assert len(clients.patient.get("/api/v1/assessments/", {"instrument": ""}).json()["results"]) == 2


def test_unknown_instrument_filter_is_400(clients):
    assert _field_codes(clients.patient.get("/api/v1/assessments/", {"instrument": "bdi"})) == {
        "instrument": ["invalid_choice"]
    }


def test_patient_list_pages_with_a_cursor(clients):
    for day in range(1, 6):
        _post(clients.patient, completed_at=f"2026-03-0{day}T09:00:00Z")
    first = clients.patient.get("/api/v1/assessments/", {"page_size": 2}).json()
    second = clients.patient.get(first["next"]).json()
    dates = [row["completed_at"][:10] for row in first["results"] + second["results"]]
    assert dates == ["2026-03-05", "2026-03-04", "2026-03-03", "2026-03-02"]


def test_clinicians_do_not_post_or_list_on_the_patient_route(clients):
    assert _post(clients.clinician).status_code == 403
    assert clients.clinician.get("/api/v1/assessments/").status_code == 403


def test_care_team_clinician_reads_a_patients_assessments_and_it_is_logged(cast, clients):
    created = _post(clients.patient).json()
    _post(clients.patient, instrument="pacs")
    before = AccessLog.objects.filter(patient=cast.patient, actor=cast.clinician).count()
    response = clients.clinician.get(f"/api/v1/patients/{cast.patient.id}/assessments/", {"instrument": "phq9"})
    assert response.status_code == 200
    assert response.json()["results"] == [created]
    assert AccessLog.objects.filter(patient=cast.patient, actor=cast.clinician).count() == before + 1


def test_outsider_clinician_and_admin_get_404_on_the_patients_assessments(cast, clients):
    _post(clients.patient)
    for client in (clients.outsider, clients.admin):
        response = client.get(f"/api/v1/patients/{cast.patient.id}/assessments/")
        assert response.status_code == 404
        assert response.json()["error"]["code"] == "not_found"
    assert not AccessLog.objects.filter(patient=cast.patient).exists()


def test_patient_on_the_clinician_route_gets_403_even_for_themselves(cast, clients):
    response = clients.patient.get(f"/api/v1/patients/{cast.patient.id}/assessments/")
    assert response.status_code == 403
    assert response.json()["error"]["code"] == "permission_denied"


def test_patient_list_takes_the_same_queries_however_many_assessments(cast, clients, django_assert_num_queries):
    # Queries: 1 the sign-in with its user, clinic and patient; 1 the page of assessments.
    for count in (3, 30):
        while cast.patient.assessments.count() < count:
            _post(clients.patient)
        with django_assert_num_queries(2):
            response = clients.patient.get("/api/v1/assessments/")
        assert len(response.json()["results"]) == count


def test_clinician_list_takes_the_same_queries_however_many_assessments(cast, clients, django_assert_num_queries):
    # Queries: 1 sign-in; 1 the care-team lookup with its access-log insert; 1 the page.
    for count in (3, 30):
        while cast.patient.assessments.count() < count:
            _post(clients.patient)
        with django_assert_num_queries(3):
            response = clients.clinician.get(f"/api/v1/patients/{cast.patient.id}/assessments/")
        assert len(response.json()["results"]) == count


# --- The alert seam -------------------------------------------------------------------------------


def _fired(rule: str) -> list[risk.Firing]:
    return [risk.Firing(rule, {"at": "2026-01-01T00:00:00Z"})]


def _phq9_item9_rule(written: risk.Written) -> list[risk.Firing]:
    # A stand-in rule: a rule returns its firings; severity is the rule's (SEVERITY_OF_RULE).
    fires = any(a.instrument == "phq9" and a.answers[8] >= 1 for a in written.assessments)
    return _fired("phq9_self_harm") if fires else []


def test_assessment_that_fires_an_urgent_rule_answers_with_support(cast, clients, monkeypatch):
    seen = []
    monkeypatch.setattr(risk, "RULES", [lambda written: seen.append(written) or [], _phq9_item9_rule])
    answers = [0] * 8 + [1]
    response = _post(clients.patient, answers=answers, id=str(uuid.uuid4()))
    assert response.status_code == 201
    support = response.json()["support"]
    assert support["resources"][0]["phone"] == "988"
    assert support["monitored"] == cast.patient.clinic.monitoring_statement
    assert support["message"]
    [written] = seen
    assert written.patient == cast.patient
    assert [a.id for a in written.assessments] == [Assessment.objects.get().id]


def test_rules_do_not_run_again_on_a_safe_retry(clients, monkeypatch):
    calls = []
    monkeypatch.setattr(risk, "RULES", [lambda written: calls.append(written) or _fired("phq9_self_harm")])
    payload = _payload(id=str(uuid.uuid4()))
    assert "support" in clients.patient.post("/api/v1/assessments/", payload, format="json").json()
    retry = clients.patient.post("/api/v1/assessments/", payload, format="json")
    assert retry.status_code == 200
    assert len(calls) == 1


def test_a_safe_retry_repeats_the_support_block_its_first_answer_carried(clients):
    """The phone retries because the 201 was lost: a patient who answered item 9 must still see
    the crisis resources. The real rules, so the alert's evidence names the assessment."""
    payload = _payload(answers=[1] * 8 + [2], id=str(uuid.uuid4()))
    first = clients.patient.post("/api/v1/assessments/", payload, format="json")
    assert first.status_code == 201 and first.json()["support"]["resources"][0]["phone"] == "988"
    retry = clients.patient.post("/api/v1/assessments/", payload, format="json")
    assert retry.status_code == 200
    assert retry.json()["support"] == first.json()["support"]
    calm = _payload(answers=[0] * 9, id=str(uuid.uuid4()))
    clients.patient.post("/api/v1/assessments/", calm, format="json")
    assert "support" not in clients.patient.post("/api/v1/assessments/", calm, format="json").json()


def test_assessment_that_fires_only_a_medium_rule_has_no_support_block(clients, monkeypatch):
    monkeypatch.setattr(risk, "RULES", [lambda written: _fired("mood_low")])
    response = _post(clients.patient)
    assert response.status_code == 201
    assert "support" not in response.json()


def test_assessment_that_fires_nothing_has_no_support_block(clients, monkeypatch):
    monkeypatch.setattr(risk, "RULES", [_phq9_item9_rule])
    response = _post(clients.patient, answers=[3] * 8 + [0])
    assert response.status_code == 201
    assert "support" not in response.json()


def test_a_failing_rule_rolls_the_assessment_back(clients, monkeypatch):
    # The alert is written in the assessment's transaction: neither exists without the other.
    def broken(written):
        raise RuntimeError("rule crashed")

    monkeypatch.setattr(risk, "RULES", [broken])
    client = clients.patient
    client.raise_request_exception = False
    response = _post(client)
    assert response.status_code == 500
    assert not Assessment.objects.exists()
