"""What a trend costs in queries (SPEC §8, issue 5): one statement for whatever the range needs, for
1 or 731 days; only a check-in streak longer than the days it read costs a second query. Counted on
the selector, below the care-team read's own queries (auth, care-team check, access log)."""

import uuid
from datetime import UTC, datetime, timedelta

import pytest
import time_machine

from journal.selectors.trends import trends_of
from journal.services.entries import entry_create

NOW = datetime(2026, 3, 21, 15, 0, tzinfo=UTC)
TODAY = NOW.date()  # the cast's patient journals in UTC


def _check_in(patient, days_ago: int) -> None:
    entry_create(
        patient=patient,
        data={"id": uuid.uuid4(), "kind": "check_in", "occurred_at": NOW - timedelta(days=days_ago, hours=1),
              "craving": 4, "mood": 6, "triggers": ["stress"]},
    )  # fmt: skip


def _use(patient, days_ago: int) -> None:
    entry_create(
        patient=patient,
        data={"id": uuid.uuid4(), "kind": "use", "occurred_at": NOW - timedelta(days=days_ago, hours=2),
              "substance": "alcohol", "craving": 8},
    )  # fmt: skip


@pytest.fixture
def patient(cast):
    with time_machine.travel(NOW, tick=False):
        yield cast.patient


@pytest.mark.parametrize("days", [1, 30, 365, 731])
def test_a_trend_is_one_query_whatever_its_length(patient, django_assert_num_queries, days):
    for days_ago in (0, 1, 3):  # the streak (2 days) ends inside the days read
        _check_in(patient, days_ago)
    _use(patient, 200)  # long before a short range: the last use is in the same statement
    with django_assert_num_queries(1):
        trends = trends_of(patient, first=TODAY - timedelta(days=days - 1), last=TODAY)
    assert trends["summary"]["current_streak"] == 2
    assert trends["summary"]["days_since_last_use"] == 200


def test_a_patient_without_entries_is_one_query(patient, django_assert_num_queries):
    with django_assert_num_queries(1):
        trends = trends_of(patient, first=TODAY - timedelta(days=29), last=TODAY)
    assert trends["summary"]["current_streak"] == 0
    assert trends["summary"]["days_since_last_use"] is None


LONG_AGO = TODAY - timedelta(days=800)  # the days read end there, not today


@pytest.mark.parametrize(("first", "last"), [(TODAY - timedelta(days=4), TODAY), (LONG_AGO, LONG_AGO)])
def test_a_streak_longer_than_the_days_read_costs_one_more_query(patient, django_assert_num_queries, first, last):
    for days_ago in range(40):
        _check_in(patient, days_ago)
    with django_assert_num_queries(2):
        trends = trends_of(patient, first=first, last=last)
    assert trends["summary"]["current_streak"] == 40
