"""The alert rules of SPEC §9 that run on writes: each at its threshold and one step below, with
the clinic's own thresholds, and which days they look at. Driven through the write services (the
API's own path into the seam) with the clock stopped at NOW."""

import uuid
from datetime import UTC, date, datetime, time, timedelta
from zoneinfo import ZoneInfo

import pytest
import time_machine

from journal.models import Alert
from journal.services.assessments import assessment_create
from journal.services.entries import entries_sync, entry_create, entry_delete, entry_update

pytestmark = pytest.mark.django_db

NEW_YORK = ZoneInfo("America/New_York")
NOW = datetime(2026, 3, 10, 17, 0, tzinfo=UTC)  # 13:00 in New York
TODAY = date(2026, 3, 10)


@pytest.fixture(autouse=True)
def _stopped_clock():
    with time_machine.travel(NOW, tick=False):
        yield


def at(days_ago: int, hour: int = 9) -> datetime:
    """An instant on the patient's journal day `days_ago` days before TODAY (New York)."""
    return datetime.combine(TODAY - timedelta(days=days_ago), time(hour), NEW_YORK)


def log(patient, days_ago: int = 0, hour: int = 9, kind: str = "craving", **fields):
    """Writes one entry; returns (entry, support)."""
    data = {"id": uuid.uuid4(), "kind": kind, "occurred_at": at(days_ago, hour), **fields}
    entry, created, support = entry_create(patient=patient, data=data)
    assert created
    return entry, support


def phq9(patient, answers, hours_ago: int = 1):
    data = {"instrument": "phq9", "answers": answers, "completed_at": NOW - timedelta(hours=hours_ago)}
    assessment, created, support = assessment_create(patient=patient, data=data, request_time=NOW)
    assert created
    return assessment, support


def alerts(patient, rule: str) -> list[Alert]:
    return list(Alert.objects.filter(patient=patient, rule=rule).order_by("opened_at"))


def the_alert(patient, rule: str) -> Alert:
    [alert] = alerts(patient, rule)
    return alert


def set_clinic(patient, **thresholds) -> None:
    clinic = patient.clinic
    for name, value in thresholds.items():
        setattr(clinic, name, value)
    clinic.save()


def answers_with(item9: int, total: int) -> list[int]:
    """PHQ-9 answers with this item 9 and this total."""
    rest, answers = total - item9, []
    for _ in range(8):
        answers.append(min(3, rest))
        rest -= answers[-1]
    assert rest == 0
    return [*answers, item9]


# --- phq9_self_harm (urgent) ------------------------------------------------------------------------


def test_item9_at_the_threshold_fires_self_harm_with_the_answer_as_evidence(cast):
    assessment, support = phq9(cast.patient, answers_with(item9=1, total=4))
    alert = the_alert(cast.patient, "phq9_self_harm")
    assert (alert.severity, alert.status) == ("urgent", "open")
    [evidence] = alert.evidence
    assert evidence["assessment"] == str(assessment.id)
    assert evidence["item9"] == 1
    assert support["resources"][0]["phone"] == "988"


def test_item9_at_zero_fires_nothing(cast):
    _, support = phq9(cast.patient, answers_with(item9=0, total=4))
    assert not Alert.objects.exists()
    assert support is None


def test_self_harm_threshold_is_the_clinics(cast):
    set_clinic(cast.patient, alert_self_harm_item9_min=2)
    phq9(cast.patient, answers_with(item9=1, total=4))
    assert alerts(cast.patient, "phq9_self_harm") == []
    phq9(cast.patient, answers_with(item9=2, total=4))
    assert the_alert(cast.patient, "phq9_self_harm").evidence[0]["item9"] == 2


def test_gad7_never_fires_phq9_rules(cast):
    data = {"instrument": "gad7", "answers": [3] * 7, "completed_at": NOW - timedelta(hours=1)}
    assessment_create(patient=cast.patient, data=data, request_time=NOW)
    assert not Alert.objects.exists()


# --- phq9_worsening (high) ---------------------------------------------------------------------------


def test_phq9_total_at_20_fires_worsening_and_19_does_not(cast):
    phq9(cast.patient, answers_with(item9=0, total=19), hours_ago=48)
    assert alerts(cast.patient, "phq9_worsening") == []
    # 19 → 20 is a rise of 1, but 20 is severe on its own.
    assessment, support = phq9(cast.patient, answers_with(item9=0, total=20))
    alert = the_alert(cast.patient, "phq9_worsening")
    assert alert.severity == "high"
    assert alert.evidence[0]["assessment"] == str(assessment.id)
    assert (alert.evidence[0]["score"], alert.evidence[0]["previous_score"]) == (20, 19)
    assert support is not None


def test_a_rise_of_5_over_the_previous_phq9_fires_and_4_does_not(cast):
    phq9(cast.patient, answers_with(item9=0, total=6), hours_ago=24 * 14)
    phq9(cast.patient, answers_with(item9=0, total=10), hours_ago=24 * 7)  # +4
    assert alerts(cast.patient, "phq9_worsening") == []
    phq9(cast.patient, answers_with(item9=0, total=15))  # +5 over the 10, the one just before
    evidence = the_alert(cast.patient, "phq9_worsening").evidence[0]
    assert (evidence["score"], evidence["previous_score"], evidence["rise"]) == (15, 10, 5)


def test_the_previous_phq9_is_by_completion_time_so_a_late_one_compares_with_its_predecessor(cast):
    phq9(cast.patient, answers_with(item9=0, total=4), hours_ago=24 * 14)
    phq9(cast.patient, answers_with(item9=0, total=5), hours_ago=1)
    # Completed a week ago, delivered now: compared with the one of two weeks ago (+5).
    phq9(cast.patient, answers_with(item9=0, total=9), hours_ago=24 * 7)
    assert the_alert(cast.patient, "phq9_worsening").evidence[0]["previous_score"] == 4


def test_phq9_worsening_thresholds_are_the_clinics(cast):
    set_clinic(cast.patient, alert_phq9_total_min=15, alert_phq9_rise_min=10)
    phq9(cast.patient, answers_with(item9=0, total=5), hours_ago=48)
    phq9(cast.patient, answers_with(item9=0, total=14))  # +9, below 15
    assert alerts(cast.patient, "phq9_worsening") == []
    phq9(cast.patient, answers_with(item9=0, total=15), hours_ago=0)
    assert the_alert(cast.patient, "phq9_worsening").evidence[0]["score"] == 15


# --- use_reported (high) -------------------------------------------------------------------------------


def test_a_use_entry_fires_use_reported_with_support(cast):
    entry, support = log(cast.patient, kind="use", substance="alcohol", amount="a whole bottle")
    alert = the_alert(cast.patient, "use_reported")
    assert alert.severity == "high"
    [evidence] = alert.evidence
    assert evidence["entry"] == str(entry.id)
    assert evidence["substance"] == "alcohol"
    assert "a whole bottle" not in str(alert.evidence)  # free text stays in the journal
    assert support["resources"]


def test_a_craving_entry_fires_no_use(cast):
    log(cast.patient, craving=3)
    assert alerts(cast.patient, "use_reported") == []


def test_an_edit_that_makes_an_entry_a_use_fires_and_an_edit_of_a_use_does_not(cast):
    entry, _ = log(cast.patient, craving=3)
    entry_update(
        patient=cast.patient, entry_id=entry.id, changes={"kind": "use", "substance": "cocaine"}, if_match=None
    )
    assert len(the_alert(cast.patient, "use_reported").evidence) == 1
    entry_update(patient=cast.patient, entry_id=entry.id, changes={"amount": "one line"}, if_match=None)
    assert len(the_alert(cast.patient, "use_reported").evidence) == 1


def test_a_sync_that_turns_an_entry_into_a_use_fires(cast):
    entry, _ = log(cast.patient, craving=3)
    content = {"id": entry.id, "kind": "use", "substance": "cocaine", "occurred_at": entry.occurred_at}
    response = entries_sync(patient=cast.patient, items=[{"data": {**content, "base_version": 1}}])
    assert response["results"][0]["status"] == "updated"
    assert the_alert(cast.patient, "use_reported").evidence[0]["entry"] == str(entry.id)
    assert response["support"]


def test_a_second_use_adds_evidence_to_the_open_alert(cast):
    log(cast.patient, days_ago=1, kind="use", substance="alcohol")
    log(cast.patient, kind="use", substance="alcohol")
    assert len(the_alert(cast.patient, "use_reported").evidence) == 2


# --- craving_high (high) ---------------------------------------------------------------------------------


def test_craving_8_on_two_consecutive_days_fires(cast):
    log(cast.patient, days_ago=1, craving=9)
    assert alerts(cast.patient, "craving_high") == []
    entry, support = log(cast.patient, craving=8)
    evidence = the_alert(cast.patient, "craving_high").evidence[0]
    assert evidence["days"] == ["2026-03-09", "2026-03-10"]
    assert evidence["day_max"] == [9, 8]
    assert evidence["entry"] == str(entry.id)
    assert support is not None


def test_craving_7_on_the_second_day_does_not_fire(cast):
    log(cast.patient, days_ago=1, craving=8)
    log(cast.patient, craving=7)
    assert alerts(cast.patient, "craving_high") == []


def test_days_with_a_gap_are_not_consecutive(cast):
    log(cast.patient, days_ago=2, craving=9)
    log(cast.patient, craving=9)
    assert alerts(cast.patient, "craving_high") == []


def test_the_days_maximum_counts_not_every_entry(cast):
    log(cast.patient, days_ago=1, hour=8, craving=9)
    log(cast.patient, days_ago=1, hour=20, craving=1)
    log(cast.patient, craving=8)
    assert the_alert(cast.patient, "craving_high").evidence[0]["day_max"] == [9, 8]


def test_an_offline_sync_of_an_old_day_fires_with_its_neighbour(cast):
    log(cast.patient, days_ago=6, craving=9)
    old = {"id": uuid.uuid4(), "kind": "craving", "occurred_at": at(5), "craving": 10}
    entries_sync(patient=cast.patient, items=[{"data": old}])
    assert the_alert(cast.patient, "craving_high").evidence[0]["days"] == ["2026-03-04", "2026-03-05"]


def test_a_calm_entry_on_a_high_day_does_not_reopen_a_resolved_alert(cast):
    from journal.services.alerts import alert_resolve

    log(cast.patient, days_ago=1, craving=9)
    log(cast.patient, craving=9)
    alert_resolve(alert=the_alert(cast.patient, "craving_high"), by=cast.clinician, note="Called, safe plan.")
    log(cast.patient, hour=11, craving=2)
    assert [a.status for a in alerts(cast.patient, "craving_high")] == ["resolved"]


def test_a_deleted_entry_leaves_the_run(cast):
    entry, _ = log(cast.patient, days_ago=1, craving=9)
    entry_delete(patient=cast.patient, entry_id=entry.id, if_match=None)
    log(cast.patient, craving=9)
    assert alerts(cast.patient, "craving_high") == []


def test_craving_high_thresholds_are_the_clinics(cast):
    set_clinic(cast.patient, alert_craving_high_level=9, alert_craving_high_days=3)
    log(cast.patient, days_ago=2, craving=9)
    log(cast.patient, days_ago=1, craving=8)
    log(cast.patient, craving=10)
    assert alerts(cast.patient, "craving_high") == []
    log(cast.patient, days_ago=1, hour=10, craving=9)
    assert the_alert(cast.patient, "craving_high").evidence[0]["day_max"] == [9, 9, 10]


# --- mood_low (medium) -------------------------------------------------------------------------------------


def test_mood_at_2_on_three_consecutive_days_fires_without_support(cast):
    log(cast.patient, days_ago=2, kind="check_in", craving=1, mood=2)
    log(cast.patient, days_ago=1, kind="check_in", craving=1, mood=1)
    entry, support = log(cast.patient, kind="check_in", craving=1, mood=2)
    alert = the_alert(cast.patient, "mood_low")
    assert alert.severity == "medium"
    assert alert.evidence[0]["day_mean"] == [2.0, 1.0, 2.0]
    assert support is None  # medium: no support block


def test_a_days_mean_mood_above_2_breaks_the_run(cast):
    log(cast.patient, days_ago=2, kind="check_in", craving=1, mood=2)
    log(cast.patient, days_ago=1, hour=8, kind="check_in", craving=1, mood=2)
    log(cast.patient, days_ago=1, hour=20, kind="check_in", craving=1, mood=3)  # the day's mean: 2.5
    log(cast.patient, kind="check_in", craving=1, mood=2)
    assert alerts(cast.patient, "mood_low") == []


def test_an_edit_that_lowers_a_days_mean_fires_even_with_a_mood_above_the_level(cast):
    noon, _ = log(cast.patient, hour=12, kind="check_in", craving=1, mood=5)
    log(cast.patient, days_ago=2, kind="check_in", craving=1, mood=1)
    log(cast.patient, days_ago=1, kind="check_in", craving=1, mood=1)
    log(cast.patient, hour=8, kind="check_in", craving=1, mood=0)  # today's mean: 2.5
    assert alerts(cast.patient, "mood_low") == []
    entry_update(patient=cast.patient, entry_id=noon.id, changes={"mood": 4}, if_match=None)  # mean 2
    evidence = the_alert(cast.patient, "mood_low").evidence[0]
    assert evidence["day_mean"] == [1.0, 1.0, 2.0]
    assert evidence["entry"] == str(noon.id)


def test_mood_low_thresholds_are_the_clinics(cast):
    set_clinic(cast.patient, alert_mood_low_level=4, alert_mood_low_days=2)
    log(cast.patient, days_ago=1, kind="check_in", craving=1, mood=4)
    log(cast.patient, kind="check_in", craving=1, mood=4)
    assert the_alert(cast.patient, "mood_low").evidence[0]["days"] == ["2026-03-09", "2026-03-10"]


# --- craving_rising (medium) ----------------------------------------------------------------------------------


def rising(patient, previous: list[int], recent: list[int]):
    """Cravings on the days of the window before (8–13 days ago) and of the last 7 days (0–6)."""
    for offset, craving in enumerate(previous):
        log(patient, days_ago=13 - offset, craving=craving)
    support = None
    for offset, craving in enumerate(recent):
        _, support = log(patient, days_ago=len(recent) - 1 - offset, craving=craving)
    return support


def test_a_rise_of_2_in_the_7_day_mean_fires_without_support(cast):
    support = rising(cast.patient, previous=[2, 2, 2], recent=[4, 4, 4])
    alert = the_alert(cast.patient, "craving_rising")
    assert alert.severity == "medium"
    evidence = alert.evidence[0]
    assert (evidence["mean_7d"], evidence["mean_prev_7d"]) == (4.0, 2.0)
    assert evidence["window"] == ["2026-03-04", "2026-03-10"]
    assert (evidence["cravings_7d"], evidence["cravings_prev_7d"]) == (3, 3)
    assert support is None


def test_a_rise_just_under_2_does_not_fire(cast):
    rising(cast.patient, previous=[2, 2, 2], recent=[4, 4, 3])  # 3.67 vs 2
    assert alerts(cast.patient, "craving_rising") == []


def test_too_few_cravings_in_a_window_do_not_fire(cast):
    rising(cast.patient, previous=[1, 1], recent=[9, 9, 9])
    assert alerts(cast.patient, "craving_rising") == []


def test_craving_rising_thresholds_are_the_clinics(cast):
    from decimal import Decimal

    set_clinic(cast.patient, alert_craving_rise_min=Decimal("1.5"), alert_craving_rise_min_entries=2)
    rising(cast.patient, previous=[2, 2], recent=[4, 3])
    assert the_alert(cast.patient, "craving_rising").evidence[0]["mean_7d"] == 3.5


def test_an_old_rise_that_a_sync_delivers_does_not_fire(cast):
    # Three weeks ago the cravings rose; today's window is calm. History, not a call today.
    items = [
        {"data": {"id": uuid.uuid4(), "kind": "craving", "occurred_at": at(days), "craving": craving}}
        for days, craving in [(34, 1), (33, 1), (32, 1), (26, 6), (25, 6), (24, 6)]
    ]
    entries_sync(patient=cast.patient, items=items)
    assert alerts(cast.patient, "craving_rising") == []


# --- Who fires ---------------------------------------------------------------------------------------------------


def test_a_paused_patient_fires_no_alert_but_still_gets_support(cast):
    cast.patient.status = "paused"
    cast.patient.save()
    _, support = phq9(cast.patient, answers_with(item9=2, total=10))
    assert not Alert.objects.exists()
    assert support["resources"][0]["phone"] == "988"


# --- An edit that moves an entry to another day re-checks mood_low on the day it left ---------


def test_moving_a_good_mood_off_a_day_fires_mood_low_there(cast):
    log(cast.patient, days_ago=3, kind="check_in", craving=1, mood=1)
    log(cast.patient, days_ago=2, kind="check_in", craving=1, mood=1)
    good, _ = log(cast.patient, days_ago=2, hour=12, kind="check_in", craving=1, mood=7)  # day 2: mean 4
    log(cast.patient, days_ago=1, kind="check_in", craving=1, mood=2)
    assert alerts(cast.patient, "mood_low") == []
    entry_update(patient=cast.patient, entry_id=good.id, changes={"occurred_at": at(6, 12)}, if_match=None)
    evidence = the_alert(cast.patient, "mood_low").evidence[0]
    assert evidence["days"] == ["2026-03-07", "2026-03-08", "2026-03-09"]
    assert evidence["day_mean"] == [1.0, 1.0, 2.0]
    assert evidence["entry"] == str(good.id)


def test_moving_a_low_mood_off_a_day_does_not_fire_there(cast):
    log(cast.patient, days_ago=3, kind="check_in", craving=1, mood=1)
    low, _ = log(cast.patient, days_ago=2, kind="check_in", craving=1, mood=2)
    log(cast.patient, days_ago=2, hour=12, kind="check_in", craving=1, mood=4)  # day 2: mean 3
    log(cast.patient, days_ago=1, kind="check_in", craving=1, mood=2)
    entry_update(patient=cast.patient, entry_id=low.id, changes={"occurred_at": at(9, 12), "mood": 5}, if_match=None)
    assert alerts(cast.patient, "mood_low") == []


def test_a_sync_that_moves_a_good_mood_off_a_day_fires(cast):
    log(cast.patient, days_ago=3, kind="check_in", craving=1, mood=1)
    log(cast.patient, days_ago=2, kind="check_in", craving=1, mood=1)
    good, _ = log(cast.patient, days_ago=2, hour=12, kind="check_in", craving=1, mood=7)
    log(cast.patient, days_ago=1, kind="check_in", craving=1, mood=2)
    item = {
        "data": {
            "id": good.id,
            "kind": "check_in",
            "occurred_at": at(6, 12),
            "craving": 1,
            "mood": 7,
            "base_version": good.version,
        }
    }
    entries_sync(patient=cast.patient, items=[item])
    assert the_alert(cast.patient, "mood_low").evidence[0]["days"] == ["2026-03-07", "2026-03-08", "2026-03-09"]
