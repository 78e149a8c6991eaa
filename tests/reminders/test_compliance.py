"""Prompt compliance in CREMAS terms (SPEC §7): a funnel over the prompts due in a range of journal
days, overall and by kind, for the patient and their care team."""

import itertools
from datetime import UTC, date, datetime, timedelta
from datetime import time as clock

import pytest
import time_machine

from accounts.models import AccessLog, Patient
from reminders.models import WEEKDAYS, Prompt, PromptKind, Schedule
from reminders.selectors.compliance import compliance_of
from tests.conftest import client_for

pytestmark = pytest.mark.django_db

FIRST_DAY = date(2026, 3, 2)
LAST_DAY = date(2026, 3, 8)
_slots = itertools.count()


def _schedule(patient: Patient, kind: str) -> Schedule:
    instrument = "phq9" if kind == "assessment" else None
    return Schedule.objects.get_or_create(
        patient=patient,
        kind=kind,
        defaults={"days": list(WEEKDAYS), "time": clock(9), "instrument": instrument},
    )[0]


def _prompt(
    patient: Patient,
    status: str,
    *,
    day: date = FIRST_DAY,
    kind: str = "check_in",
    sent: bool = False,
    receipt: bool = False,
    latency: int | None = None,
) -> Prompt:
    """A prompt due at 09:00 New York time on `day`; `latency` seconds from send to answer."""
    scheduled_for = datetime(day.year, day.month, day.day, 14, tzinfo=UTC)
    sent_at = scheduled_for if sent or latency is not None else None
    return Prompt.objects.create(
        patient=patient,
        schedule=_schedule(patient, kind),
        kind=kind,
        instrument="phq9" if kind == "assessment" else None,
        local_date=day,
        slot=next(_slots),
        scheduled_for=scheduled_for,
        expires_at=scheduled_for + timedelta(hours=2),
        next_attempt_at=scheduled_for,
        status=status,
        sent_at=sent_at,
        received_at=scheduled_for + timedelta(seconds=5) if receipt else None,
        completed_at=sent_at + timedelta(seconds=latency) if latency is not None else None,
    )


def _funnel(scheduled=0, skipped=0, failed=0, sent=0, received=0, completed=0, expired=0, rate=None, median=None):
    return {
        "scheduled": scheduled,
        "skipped": skipped,
        "failed": failed,
        "sent": sent,
        "received": received,
        "completed": completed,
        "expired": expired,
        "completion_rate": rate,
        "median_latency_seconds": median,
    }


def _every_status(patient: Patient) -> None:
    """check_in: one of each fate, three answered in 60, 120 and 600 s; assessment: two answered
    in 30 and 90 s, one of them without a recorded receipt; and prompts just outside the range."""
    _prompt(patient, "skipped")
    _prompt(patient, "failed")
    _prompt(patient, "scheduled", day=LAST_DAY)  # still to go out
    _prompt(patient, "expired")  # expired before it could be sent: counts in `scheduled` only
    _prompt(patient, "sent", sent=True)
    _prompt(patient, "received", sent=True, receipt=True)
    for latency in (600, 60, 120):
        _prompt(patient, "completed", receipt=True, latency=latency, day=FIRST_DAY + timedelta(days=1))
    _prompt(patient, "expired", sent=True)
    _prompt(patient, "expired", sent=True, receipt=True)  # seen, never answered
    _prompt(patient, "completed", kind="assessment", receipt=True, latency=30)
    _prompt(patient, "completed", kind="assessment", latency=90)  # the answer is the receipt
    _prompt(patient, "completed", latency=5, day=FIRST_DAY - timedelta(days=1))
    _prompt(patient, "completed", latency=5, day=LAST_DAY + timedelta(days=1))


CHECK_IN = _funnel(
    scheduled=11, skipped=1, failed=1, sent=7, received=5, completed=3, expired=2, rate=3 / 7, median=120
)
ASSESSMENT = _funnel(scheduled=2, sent=2, received=2, completed=2, rate=1.0, median=60)
EVERY_STATUS = {
    "from": FIRST_DAY.isoformat(),
    "to": LAST_DAY.isoformat(),
    **_funnel(scheduled=13, skipped=1, failed=1, sent=9, received=7, completed=5, expired=2, rate=5 / 9, median=90),
    "by_kind": {"check_in": CHECK_IN, "assessment": ASSESSMENT, "custom": _funnel(), "craving_check": _funnel()},
}


def _range(**params) -> dict:
    return {"from": FIRST_DAY.isoformat(), "to": LAST_DAY.isoformat(), **params}


# --- The funnel ----------------------------------------------------------------------------------


def test_the_funnel_counts_every_fate_of_a_prompt(cast, clients):
    _every_status(cast.patient)
    _prompt(cast.other_patient, "completed", latency=1)

    response = clients.patient.get("/api/v1/me/compliance/", _range())

    assert response.status_code == 200
    assert response.json() == EVERY_STATUS


def test_by_kind_lists_every_kind(cast):
    result = compliance_of(cast.patient, from_date=FIRST_DAY, to_date=LAST_DAY)
    assert set(result["by_kind"]) == set(PromptKind.values)
    assert result["completion_rate"] is None and result["median_latency_seconds"] is None


def test_the_median_of_an_even_count_is_the_mean_of_the_middle_two(cast):
    for latency in (10, 40, 50, 1000):
        _prompt(cast.patient, "completed", latency=latency)

    result = compliance_of(cast.patient, from_date=FIRST_DAY, to_date=FIRST_DAY)

    assert result["median_latency_seconds"] == 45
    assert result["by_kind"]["check_in"]["median_latency_seconds"] == 45


def test_the_range_is_inclusive_journal_days(cast, clients):
    _prompt(cast.patient, "completed", latency=10, day=date(2026, 3, 3))
    _prompt(cast.patient, "completed", latency=20, day=date(2026, 3, 4))
    _prompt(cast.patient, "skipped", day=date(2026, 3, 5))

    one_day = clients.patient.get("/api/v1/me/compliance/", {"from": "2026-03-04", "to": "2026-03-04"}).json()
    two_days = clients.patient.get("/api/v1/me/compliance/", {"from": "2026-03-03", "to": "2026-03-04"}).json()

    assert (one_day["scheduled"], one_day["completed"], one_day["median_latency_seconds"]) == (1, 1, 20)
    assert (two_days["scheduled"], two_days["completed"], two_days["median_latency_seconds"]) == (2, 2, 15)


def test_the_rate_is_null_when_nothing_was_sent(cast, clients):
    _prompt(cast.patient, "skipped")
    _prompt(cast.patient, "failed")

    body = clients.patient.get("/api/v1/me/compliance/", _range()).json()

    assert body == {**EVERY_STATUS, **_funnel(scheduled=2, skipped=1, failed=1), "by_kind": body["by_kind"]}
    assert body["by_kind"]["check_in"] == _funnel(scheduled=2, skipped=1, failed=1)


# --- The range -----------------------------------------------------------------------------------


def test_the_default_range_is_the_last_30_journal_days_in_the_patients_zone(cast):
    # 02:00 UTC on the 10th is still the 9th in New York.
    with time_machine.travel(datetime(2026, 3, 10, 2, 0, tzinfo=UTC), tick=False):
        _prompt(cast.patient, "completed", latency=10, day=date(2026, 3, 9))
        _prompt(cast.patient, "completed", latency=10, day=date(2026, 2, 8))  # day 30 back
        _prompt(cast.patient, "completed", latency=10, day=date(2026, 2, 7))  # day 31 back
        body = client_for(cast.patient.user).get("/api/v1/me/compliance/").json()
        only_to = client_for(cast.patient.user).get("/api/v1/me/compliance/", {"to": "2026-02-10"}).json()

    assert (body["from"], body["to"], body["completed"]) == ("2026-02-08", "2026-03-09", 2)
    assert (only_to["from"], only_to["to"], only_to["completed"]) == ("2026-01-12", "2026-02-10", 2)


@pytest.mark.parametrize(
    ("params", "field", "code"),
    [
        ({"from": "2026-03-09", "to": "2026-03-08"}, "from", "from_after_to"),
        ({"from": "2024-03-07", "to": "2026-03-08"}, "to", "range_too_long"),  # 732 days
        ({"from": "2026-3-1"}, "from", "invalid"),
        ({"to": "yesterday"}, "to", "invalid"),
    ],
)
def test_a_bad_range_is_a_400(clients, params, field, code):
    response = clients.patient.get("/api/v1/me/compliance/", params)
    assert response.status_code == 400
    assert response.json()["error"]["field_codes"] == {field: [code]}


def test_a_range_of_731_days_is_allowed(clients):
    response = clients.patient.get("/api/v1/me/compliance/", {"from": "2024-03-08", "to": "2026-03-08"})
    assert response.status_code == 200


# --- Who reads it --------------------------------------------------------------------------------


def test_the_care_team_reads_the_same_figures_and_the_read_is_logged(cast, clients):
    _every_status(cast.patient)

    response = clients.clinician.get(f"/api/v1/patients/{cast.patient.id}/compliance/", _range())

    assert response.status_code == 200
    assert response.json() == EVERY_STATUS
    assert list(AccessLog.objects.values_list("actor_id", "patient_id", "action")) == [
        (cast.clinician.id, cast.patient.id, "view")
    ]


def test_a_clinician_outside_the_care_team_gets_404_and_no_log(cast, clients):
    for client in (clients.outsider, clients.admin):
        response = client.get(f"/api/v1/patients/{cast.patient.id}/compliance/", _range())
        assert response.status_code == 404
        assert response.json()["error"]["code"] == "not_found"
    assert not AccessLog.objects.exists()


def test_a_patient_token_on_the_clinician_route_is_403(cast, clients):
    response = clients.patient.get(f"/api/v1/patients/{cast.patient.id}/compliance/", _range())
    assert response.status_code == 403
    assert response.json()["error"]["code"] == "permission_denied"


def test_a_patient_reads_only_their_own_and_a_clinician_has_no_me_route(cast, clients):
    _every_status(cast.patient)

    theirs = clients.other_patient.get("/api/v1/me/compliance/", _range()).json()

    assert theirs["scheduled"] == 0
    assert clients.clinician.get("/api/v1/me/compliance/").status_code == 403
    assert not AccessLog.objects.exists()


# --- Cost ----------------------------------------------------------------------------------------


def test_query_count_does_not_grow_with_prompts(cast, clients, django_assert_num_queries):
    _every_status(cast.patient)
    # Queries: the signed-in user with their patient, the funnel grouped by kind, the overall median.
    with django_assert_num_queries(3):
        clients.patient.get("/api/v1/me/compliance/", _range())
    # And the clinician's: the signed-in user, the care-team lookup with its access-log row, the same two.
    with django_assert_num_queries(4):
        clients.clinician.get(f"/api/v1/patients/{cast.patient.id}/compliance/", _range())
    for day in range(7):
        for kind in ("custom", "assessment", "check_in"):
            _prompt(cast.patient, "completed", kind=kind, latency=day + 1, day=FIRST_DAY + timedelta(days=day))
    with django_assert_num_queries(3):
        clients.patient.get("/api/v1/me/compliance/", _range())
    with django_assert_num_queries(4):
        clients.clinician.get(f"/api/v1/patients/{cast.patient.id}/compliance/", _range())
