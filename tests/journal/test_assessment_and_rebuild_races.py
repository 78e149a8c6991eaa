"""PHQ-9s that arrive out of order or at once, and `rebuild_rollups` while patients write.

SPEC §9: `phq9_worsening` fires on a PHQ-9 total ≥ 20, or ≥ 5 above the previous one — the one
completed before it, whatever order an offline phone delivers them in. The race tests run real
PostgreSQL transactions in threads; events and a wait on pg_stat_activity fix the interleaving.
"""

import threading
import uuid
from concurrent.futures import ThreadPoolExecutor
from datetime import UTC, datetime, timedelta

import pytest
from django.core.management import call_command
from django.db import transaction
from django.utils import timezone

from journal import alert_rules, risk
from journal.models import Alert, DailyRollup
from journal.services.assessments import assessment_create
from journal.services.entries import entry_create, sequence_allocate
from journal.services.rollups import rollups_rebuild
from tests.support.db_threads import in_thread, wait_for_a_backend_waiting_on_a_lock

pytestmark = pytest.mark.django_db

NOW = datetime.now(UTC)


def answers_with(total: int) -> list[int]:
    """PHQ-9 answers with this total and item 9 at 0 (no self-harm alert in the way)."""
    answers, rest = [], total
    for _ in range(8):
        answers.append(min(3, rest))
        rest -= answers[-1]
    assert rest == 0
    return [*answers, 0]


def phq9_data(total: int, days_ago: int) -> dict:
    return {
        "id": uuid.uuid4(),
        "instrument": "phq9",
        "answers": answers_with(total),
        "completed_at": NOW - timedelta(days=days_ago),
    }


def phq9_api(total: int, days_ago: int) -> dict:
    """The same PHQ-9 as the phone posts it."""
    completed_at = (timezone.now() - timedelta(days=days_ago)).isoformat().replace("+00:00", "Z")
    return {"instrument": "phq9", "answers": answers_with(total), "completed_at": completed_at}


def phq9(patient, total: int, days_ago: int):
    assessment, created, _ = assessment_create(patient=patient, data=phq9_data(total, days_ago), request_time=NOW)
    assert created
    return assessment


def worsening_alerts(patient) -> list[Alert]:
    return list(Alert.objects.filter(patient=patient, rule="phq9_worsening"))


# --- A PHQ-9 that arrives late --------------------------------------------------------------------


def test_an_older_phq9_arriving_late_fires_on_the_rise_it_reveals(cast):
    """An offline phone sends last week's PHQ-9 (0) after this week's (12): this week's is 12 above
    the previous one, whatever order the server got them in."""
    this_week = phq9(cast.patient, 12, days_ago=1)
    assert worsening_alerts(cast.patient) == []
    last_week = phq9(cast.patient, 0, days_ago=8)
    [alert] = worsening_alerts(cast.patient)
    [evidence] = alert.evidence
    assert evidence["assessment"] == str(this_week.pk)  # the PHQ-9 that rose
    assert evidence["score"] == 12
    assert evidence["previous_assessment"] == str(last_week.pk)
    assert evidence["previous_score"] == 0
    assert evidence["rise"] == 12


def test_a_retry_of_the_late_phq9_repeats_the_support_its_rise_earned(clients):
    """The late PHQ-9 is named in the evidence as the one the rise was measured from, so its
    retry (its first answer lost) finds the alert and answers with the same support block."""
    assert clients.patient.post("/api/v1/assessments/", phq9_api(12, days_ago=1), format="json").status_code == 201
    late = {**phq9_api(0, days_ago=8), "id": str(uuid.uuid4())}
    first = clients.patient.post("/api/v1/assessments/", late, format="json")
    assert first.status_code == 201 and first.json()["support"]
    retry = clients.patient.post("/api/v1/assessments/", late, format="json")
    assert retry.status_code == 200 and retry.json()["support"] == first.json()["support"]


def test_a_retry_of_a_phq9_that_a_later_one_rose_from_carries_no_support_it_never_had(clients):
    """In order: last week's 0 (no alert), then this week's 12 (a rise from it). Retrying last
    week's must not answer with the support block this week's earned."""
    older = {**phq9_api(0, days_ago=8), "id": str(uuid.uuid4())}
    assert "support" not in clients.patient.post("/api/v1/assessments/", older, format="json").json()
    assert clients.patient.post("/api/v1/assessments/", phq9_api(12, days_ago=1), format="json").json()["support"]
    retry = clients.patient.post("/api/v1/assessments/", older, format="json")
    assert retry.status_code == 200 and "support" not in retry.json()


@pytest.mark.parametrize(("late_total", "fires"), [(9, True), (10, False)])
def test_a_late_phq9_between_two_makes_the_next_one_a_rise_at_the_step_and_not_below(cast, late_total, fires):
    """10 two weeks ago, 14 yesterday: +4, no alert. Last week's arrives late: 14 is now +5 over a 9
    (fires) or +4 over a 10 (does not)."""
    phq9(cast.patient, 10, days_ago=14)
    yesterday = phq9(cast.patient, 14, days_ago=1)
    assert worsening_alerts(cast.patient) == []
    last_week = phq9(cast.patient, late_total, days_ago=7)
    alerts = worsening_alerts(cast.patient)
    assert len(alerts) == (1 if fires else 0)
    if fires:
        [evidence] = alerts[0].evidence
        assert (evidence["assessment"], evidence["previous_assessment"]) == (str(yesterday.pk), str(last_week.pk))
        assert (evidence["previous_score"], evidence["rise"]) == (late_total, 14 - late_total)


def test_a_late_phq9_does_not_fire_the_total_of_the_one_after_it_again(cast):
    """The next PHQ-9's own total fired when it arrived; a late one only adds what it reveals: a
    rise. 20 then a late 18 (+2) leaves the alert with its one piece of evidence."""
    phq9(cast.patient, 20, days_ago=1)
    [alert] = worsening_alerts(cast.patient)
    assert len(alert.evidence) == 1
    phq9(cast.patient, 18, days_ago=8)
    [alert] = worsening_alerts(cast.patient)
    assert len(alert.evidence) == 1


def test_a_rise_a_late_phq9_reveals_adds_evidence_to_the_open_alert(cast):
    twenty = phq9(cast.patient, 20, days_ago=1)
    five = phq9(cast.patient, 5, days_ago=8)
    [alert] = worsening_alerts(cast.patient)  # one unresolved alert per rule
    assert [item.get("previous_assessment") for item in alert.evidence] == [None, str(five.pk)]
    assert alert.evidence[1]["assessment"] == str(twenty.pk)
    assert alert.evidence[1]["rise"] == 15


# --- Two PHQ-9s at once ---------------------------------------------------------------------------


@pytest.mark.django_db(transaction=True)
def test_two_phq9s_sent_at_once_fire_the_rise(cast, monkeypatch):
    """Two devices (or a retry queue) send last week's 0 and this week's 12 at the same moment.
    Each write must see the other: the later one in time is 12 above the earlier one.

    Each write's `phq9_worsening` waits (up to 2 s) for the other write to reach its rules too. If
    assessment writes are not serialised, both are then inserted and uncommitted, and each rule
    misses the other; serialised, the second write waits for the first to commit."""
    patient = cast.patient
    start = threading.Barrier(2, timeout=10)
    arrived = [threading.Event(), threading.Event()]
    original = alert_rules.phq9_worsening

    def slowed(written):
        mine = 0 if written.assessments[0].score == 0 else 1
        arrived[mine].set()
        arrived[1 - mine].wait(timeout=2)
        return original(written)

    monkeypatch.setattr(risk, "RULES", [slowed if rule is original else rule for rule in risk.RULES])

    @in_thread
    def send(data):
        start.wait()
        return assessment_create(patient=patient, data=data, request_time=timezone.now())

    with ThreadPoolExecutor(max_workers=2) as pool:
        results = list(pool.map(send, [phq9_data(0, 8), phq9_data(12, 1)]))
    assert [created for _, created, _ in results] == [True, True]
    [alert] = worsening_alerts(patient)
    [evidence] = alert.evidence
    assert (evidence["score"], evidence["previous_score"], evidence["rise"]) == (12, 0, 12)


@pytest.mark.django_db(transaction=True)
def test_an_assessment_write_waits_for_the_patients_journal_lock(cast):
    """The lock every entry write takes (the JournalSequence row) serialises assessments too."""
    patient = cast.patient
    held, release = threading.Event(), threading.Event()

    @in_thread
    def entry_writer():
        with transaction.atomic():
            sequence_allocate(patient.pk, 1)
            held.set()
            assert release.wait(timeout=10)

    @in_thread
    def send():
        return assessment_create(patient=patient, data=phq9_data(3, 1), request_time=timezone.now())

    with ThreadPoolExecutor(max_workers=2) as pool:
        writer = pool.submit(entry_writer)
        assert held.wait(timeout=10)
        sending = pool.submit(send)
        try:
            wait_for_a_backend_waiting_on_a_lock("INSERT INTO")
            assert not sending.done()
        finally:
            release.set()
        writer.result(timeout=10)
        assert sending.result(timeout=10)[1] is True


# --- rebuild_rollups on a live system -------------------------------------------------------------


def entry_data(days_ago: int) -> dict:
    return {"id": uuid.uuid4(), "kind": "craving", "craving": 4, "occurred_at": NOW - timedelta(days=days_ago)}


@pytest.mark.django_db(transaction=True)
def test_an_entry_written_during_rebuild_rollups_waits_for_it_and_is_counted_once(cast):
    """README: `rebuild_rollups` recomputes the rollups, and an operator runs it on a live system.
    While it runs (here its DELETE waits on another patient's rollup row that a writer holds), a
    new entry on a day with no rollup yet waits for it — the rebuild locks the rollup table
    against writes — and then adds to the rebuilt rows: no duplicate key, nothing counted twice."""
    patient, other = cast.patient, cast.other_patient
    entry_create(patient=other, data=entry_data(3))
    entry_create(patient=patient, data=entry_data(3))
    held, release = threading.Event(), threading.Event()

    @in_thread
    def writer_holding_a_rollup_row():
        with transaction.atomic():
            list(DailyRollup.objects.select_for_update().filter(patient=other))
            held.set()
            assert release.wait(timeout=10)

    @in_thread
    def rebuild():
        call_command("rebuild_rollups")

    @in_thread
    def new_entry():
        entry_create(patient=patient, data=entry_data(1))  # a new journal day

    with ThreadPoolExecutor(max_workers=3) as pool:
        holder = pool.submit(writer_holding_a_rollup_row)
        assert held.wait(timeout=10)
        rebuilding = pool.submit(rebuild)
        try:
            wait_for_a_backend_waiting_on_a_lock("DELETE FROM")
            writing = pool.submit(new_entry)
            wait_for_a_backend_waiting_on_a_lock("WITH seq AS")  # the entry's write waits for the rebuild
        finally:
            release.set()
        holder.result(timeout=10)
        rebuilding.result(timeout=30)
        writing.result(timeout=30)
    rows = {row.local_date: (row.entries, row.craving_sum) for row in DailyRollup.objects.filter(patient=patient)}
    assert rows == {patient.journal_day(NOW - timedelta(days=days))[0]: (1, 4) for days in (3, 1)}
    assert DailyRollup.objects.count() == rollups_rebuild() == 3
