"""The triage list, GET /api/v1/patients/ (SPEC §8): row figures, orderings, search, the care-team
rule and a query count that does not grow with patients or entries."""

import itertools
import uuid
from datetime import UTC, date, datetime, timedelta

import pytest
import time_machine

from accounts.models import AccessLog
from journal.models import Alert, SessionKind, TherapySession
from journal.services.entries import entry_create
from reminders.models import Prompt, Schedule
from tests.factories import PatientFactory, care_team_add

NOW = datetime(2026, 6, 15, 16, 0, tzinfo=UTC)  # 12:00 in New York, the factories' zone
TODAY = date(2026, 6, 15)
_slots = itertools.count()


@pytest.fixture(autouse=True)
def _frozen():
    with time_machine.travel(NOW, tick=False):
        yield


def _entry(patient, days_ago: int, **content):
    occurred = NOW - timedelta(days=days_ago, hours=1)
    content.setdefault("kind", "craving")
    entry_create(patient=patient, data={"id": uuid.uuid4(), "occurred_at": occurred, **content})


def _patient(cast, name: str):
    patient = PatientFactory(clinic=cast.clinician.clinic, display_name=name, created_at=NOW - timedelta(days=90))
    care_team_add(patient, cast.clinician)
    return patient


def _alert(patient, rule: str, severity: str, status: str = "open"):
    clinician = patient.care_team_memberships.first().clinician
    extra = {
        "open": {},
        "acknowledged": {"acknowledged_at": NOW, "acknowledged_by": clinician},
        "resolved": {"resolved_at": NOW, "resolved_by": clinician},
    }[status]
    return Alert.objects.create(
        patient=patient, rule=rule, severity=severity, status=status, opened_at=NOW, last_fired_at=NOW, **extra
    )


def _prompt(patient, days_ago: int, *, sent: bool, completed: bool):
    schedule = Schedule.objects.create(patient=patient, kind="check_in", days=["mon"], time="09:00")
    at = NOW - timedelta(days=days_ago)
    return Prompt.objects.create(
        patient=patient, schedule=schedule, kind="check_in", local_date=TODAY - timedelta(days=days_ago),
        slot=next(_slots), scheduled_for=at, expires_at=at + timedelta(hours=2), next_attempt_at=at,
        status="completed" if completed else ("sent" if sent else "scheduled"),
        sent_at=at if sent else None, completed_at=at + timedelta(minutes=3) if completed else None,
    )  # fmt: skip


def _rows(client, **params) -> list[dict]:
    response = client.get("/api/v1/patients/", params)
    assert response.status_code == 200, response.content
    body = response.json()
    assert body["count"] == len(body["results"])
    return body["results"]


def test_a_row_has_the_figures_of_the_last_7_and_the_7_days_before(cast, clients):
    patient = _patient(cast, "Avery")
    _entry(patient, 0, kind="check_in", craving=6, mood=4)
    _entry(patient, 2, craving=8)
    _entry(patient, 3, kind="use", substance="alcohol")
    _entry(patient, 9, kind="check_in", craving=2, mood=6)
    _entry(patient, 20, craving=9)  # outside both windows
    _alert(patient, "phq9_worsening", "high")
    _alert(patient, "craving_rising", "medium", status="acknowledged")
    _alert(patient, "mood_low", "medium", status="resolved")
    _prompt(patient, 1, sent=True, completed=True)
    _prompt(patient, 2, sent=True, completed=False)
    _prompt(patient, 3, sent=False, completed=False)
    _prompt(patient, 8, sent=True, completed=False)  # outside the window
    session = TherapySession.objects.create(
        patient=patient, kind=SessionKind.INTEGRATION, starts_at=NOW + timedelta(days=2), local_date=TODAY,
        duration_minutes=60,
    )  # fmt: skip
    [row] = [r for r in _rows(clients.clinician) if r["display_name"] == "Avery"]
    assert row["last_entry_at"] == (NOW - timedelta(hours=1)).isoformat().replace("+00:00", "Z")
    assert row["days_since_last_entry"] == 0
    assert row["entries_7d"] == 3
    assert row["check_in_days_7d"] == 1
    assert row["craving_mean_7d"] == 7.0
    assert row["craving_mean_prev_7d"] == 2.0
    assert row["mood_mean_7d"] == 4.0
    assert row["use_days_7d"] == 1
    # Unresolved by severity: the two above and whatever the alert rules opened for these entries.
    unresolved = Alert.objects.filter(patient=patient).exclude(status="resolved")
    assert row["open_alerts"] == {s: unresolved.filter(severity=s).count() for s in ("urgent", "high", "medium", "low")}
    assert row["open_alerts"]["high"] >= 1 and row["open_alerts"]["medium"] >= 1
    assert row["compliance_7d"] == 0.5
    assert row["next_session_at"] == session.starts_at.isoformat().replace("+00:00", "Z")
    assert row["craving_daily_14d"][-1] == 6.0 and row["craving_daily_14d"][-3] == 8.0
    assert len(row["craving_daily_14d"]) == 14


def test_attention_puts_urgent_alerts_then_use_then_rising_craving_then_silence_first(cast, clients):
    calm = _patient(cast, "Calm")
    _entry(calm, 0, craving=2)
    _entry(calm, 8, craving=2)
    silent = _patient(cast, "Silent")
    _entry(silent, 12, craving=2)
    rising = _patient(cast, "Rising")
    _entry(rising, 1, craving=7)
    _entry(rising, 8, craving=2)
    used = _patient(cast, "Used")
    _entry(used, 1, kind="use", substance="cocaine")
    urgent = _patient(cast, "Urgent")
    _entry(urgent, 0, craving=1)
    _alert(urgent, "phq9_self_harm", "urgent")
    names = [row["display_name"] for row in _rows(clients.clinician)]
    # Pat has never written anything: the longest silence of all.
    assert names == ["Urgent", "Used", "Rising", "Pat", "Silent", "Calm"]
    assert [r["display_name"] for r in _rows(clients.clinician, ordering="name")][:2] == ["Calm", "Pat"]
    assert [r["display_name"] for r in _rows(clients.clinician, ordering="-name")][0] == "Used"
    by_silence = [r["display_name"] for r in _rows(clients.clinician, ordering="last_entry")]
    assert by_silence[:2] == ["Pat", "Silent"]  # Pat never wrote anything


def test_search_and_limit(cast, clients):
    for name in ("Quentin", "Quinn", "Bo"):
        _patient(cast, name)
    assert [r["display_name"] for r in _rows(clients.clinician, q="qu", ordering="name")] == ["Quentin", "Quinn"]
    assert len(_rows(clients.clinician, limit=2)) == 2


@pytest.mark.parametrize("params", [{"ordering": "shoe_size"}, {"limit": 0}, {"limit": 2001}, {"limit": "x"}])
def test_bad_parameters_are_a_400(cast, clients, params):
    response = clients.clinician.get("/api/v1/patients/", params)
    assert response.status_code == 400
    assert response.json()["error"]["code"]


def test_outsiders_see_nothing_of_the_patient_in_the_list_or_counts(cast, clients):
    _entry(cast.patient, 0, craving=5)
    _alert(cast.patient, "phq9_worsening", "high")
    assert [r["id"] for r in _rows(clients.outsider)] == [str(cast.other_patient.pk)]
    assert _rows(clients.outsider)[0]["open_alerts"] == {"urgent": 0, "high": 0, "medium": 0, "low": 0}
    assert _rows(clients.admin) == []
    assert clients.patient.get("/api/v1/patients/").status_code == 403


def test_each_listed_patient_gets_an_access_log_row(cast, clients):
    _patient(cast, "Second")
    _rows(clients.clinician)
    assert AccessLog.objects.filter(actor=cast.clinician, action="list").count() == 2


def test_the_query_count_does_not_grow_with_patients_or_entries(cast, clients, django_assert_num_queries):
    # Sign-in; patients with last entry and next session; rollups; alerts; prompts; access log.
    with django_assert_num_queries(6):
        _rows(clients.clinician)
    for n in range(25):
        patient = _patient(cast, f"P{n}")
        for day in range(0, 14, 3):
            _entry(patient, day, craving=n % 10)
        _alert(patient, "craving_high", "high")
        _prompt(patient, 1, sent=True, completed=bool(n % 2))
    with django_assert_num_queries(6):
        assert len(_rows(clients.clinician)) == 26
