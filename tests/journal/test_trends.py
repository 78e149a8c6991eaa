"""Trends (SPEC §8) against an independent computation: plain Python over the raw entry rows, on
random histories with a DST change, edits that move entries between days, deletes and late
entries. The app reads rollups; this test never does."""

import random
import statistics
import uuid
from collections import defaultdict
from datetime import UTC, date, datetime, timedelta
from decimal import Decimal
from zoneinfo import ZoneInfo

import pytest
import time_machine

from accounts.models import Patient
from journal.models import Entry, SessionKind
from journal.services.entries import entry_create, entry_delete, entry_update
from journal.services.sessions import session_create

ZONE = "America/New_York"  # the US change to summer time is on 2026-03-08
NOW = datetime(2026, 3, 21, 15, 0, tzinfo=UTC)
FIRST, LAST = date(2026, 2, 20), date(2026, 3, 20)


def _content(rng: random.Random, occurred_at: datetime) -> dict:
    kind = rng.choice(["check_in", "check_in", "craving", "use"])
    words = rng.sample(["stress", "boredom", "conflict"], rng.randrange(0, 3))
    content = {"kind": kind, "occurred_at": occurred_at, "triggers": words}
    if kind != "use" or rng.random() < 0.5:
        content["craving"] = rng.randrange(0, 11)
    if kind == "check_in":
        content["mood"] = rng.randrange(0, 11)
        if rng.random() < 0.6:
            content["anxiety"] = rng.randrange(0, 11)
        if rng.random() < 0.4:
            content["sleep_hours"] = Decimal(rng.randrange(0, 49)) / 4
    if kind == "use":
        content["substance"] = "alcohol"
    return content


def _history(patient: Patient, clinician, seed: int) -> None:
    rng = random.Random(seed)
    start = datetime(2026, 2, 10, tzinfo=UTC)
    ids = []
    for _ in range(160):
        occurred_at = start + timedelta(minutes=rng.randrange(0, 38 * 24 * 60))
        entry, _, _ = entry_create(patient=patient, data={"id": uuid.uuid4(), **_content(rng, occurred_at)})
        ids.append(entry.id)
    for entry_id in rng.sample(ids, 25):  # edits, some to another day
        occurred_at = start + timedelta(minutes=rng.randrange(0, 38 * 24 * 60))
        entry_update(patient=patient, entry_id=entry_id, changes=_content(rng, occurred_at), if_match=None)
    for entry_id in rng.sample(ids, 15):
        if Entry.objects.filter(pk=entry_id, deleted_at__isnull=True).exists():
            entry_delete(patient=patient, entry_id=entry_id, if_match=None)
    for day in (3, 17, 31):
        session_create(
            patient=patient,
            created_by=clinician,
            data={
                "kind": SessionKind.KETAMINE,
                "starts_at": start + timedelta(days=day, hours=15),
                "duration_minutes": 90,
            },  # fmt: skip
        )


def _mean(values) -> float | None:
    values = [v for v in values if v is not None]
    return round(statistics.fmean(values), 2) if values else None


def _expected(patient: Patient) -> dict:
    """The SPEC's figures from the live entries, computed here without the app's rollups."""
    zone = ZoneInfo(ZONE)
    by_day = defaultdict(list)
    live = list(Entry.objects.filter(patient=patient, deleted_at__isnull=True))
    for entry in live:
        by_day[entry.occurred_at.astimezone(zone).date()].append(entry)

    def day_figures(day):
        entries = by_day.get(day, [])
        return {
            "date": day.isoformat(),
            "entries": len(entries),
            "craving_mean": _mean(e.craving for e in entries),
            "craving_max": max((e.craving for e in entries if e.craving is not None), default=None),
            "mood_mean": _mean(e.mood for e in entries),
            "anxiety_mean": _mean(e.anxiety for e in entries),
            "sleep_hours": _mean(float(e.sleep_hours) if e.sleep_hours is not None else None for e in entries),
            "used": any(e.kind == "use" for e in entries),
            "check_in": any(e.kind == "check_in" for e in entries),
        }

    span = [FIRST + timedelta(days=n) for n in range((LAST - FIRST).days + 1)]
    days = [day_figures(day) for day in span]

    def pooled(days_, field):
        return _mean(getattr(e, field) for d in days_ for e in by_day.get(d, []))

    rolling = [
        {
            "date": day.isoformat(),
            "craving_mean": pooled([day - timedelta(days=k) for k in range(7)], "craving"),
            "mood_mean": pooled([day - timedelta(days=k) for k in range(7)], "mood"),
        }
        for day in span
    ]
    previous = [FIRST - timedelta(days=n) for n in range(1, len(span) + 1)]
    in_range = [e for d in span for e in by_day.get(d, [])]
    points = [(n, d["craving_mean"]) for n, d in enumerate(days) if d["craving_mean"] is not None]
    slope = statistics.linear_regression([x for x, _ in points], [y for _, y in points]).slope * 7
    today = NOW.astimezone(zone).date()
    use_days = sorted(d for d, entries in by_day.items() if any(e.kind == "use" for e in entries) and d <= today)
    checked_in_today = any(e.kind == "check_in" for e in by_day.get(today, []))
    streak, day = 0, today if checked_in_today else today - timedelta(days=1)
    while any(e.kind == "check_in" for e in by_day.get(day, [])):
        streak, day = streak + 1, day - timedelta(days=1)
    triggers = defaultdict(list)
    hours = defaultdict(list)
    for entry in in_range:
        for word in entry.triggers:
            triggers[word].append(entry.craving)
        hours[entry.occurred_at.astimezone(zone).hour].append(entry.craving)
    uses = []
    for entry in sorted((e for e in in_range if e.kind == "use"), key=lambda e: e.occurred_at):
        before = [
            e.craving
            for e in live
            if entry.occurred_at - timedelta(hours=24) <= e.occurred_at < entry.occurred_at and e.craving is not None
        ]
        uses.append({"id": str(entry.id), "craving_before": max(before, default=None)})
    return {
        "days": days,
        "rolling_7d": rolling,
        "summary": {
            "craving_mean": pooled(span, "craving"),
            "craving_mean_prev": pooled(previous, "craving"),
            "mood_mean": pooled(span, "mood"),
            "mood_mean_prev": pooled(previous, "mood"),
            "craving_slope_per_week": round(slope, 3),
            "use_days": sum(1 for d in days if d["used"]),
            "days_since_last_use": (today - use_days[-1]).days if use_days else None,
            "check_in_days": sum(1 for d in days if d["check_in"]),
            "current_streak": streak,
        },
        "triggers": {word: (len(c), _mean(c)) for word, c in triggers.items()},
        "hours": {hour: (len(c), _mean(c)) for hour, c in hours.items()},
        "uses": uses,
        "by_day": by_day,
    }


@pytest.fixture
def history(cast):
    cast.patient.timezone = ZONE
    cast.patient.save()
    Patient.objects.filter(pk=cast.patient.pk).update(created_at=datetime(2026, 1, 1, tzinfo=UTC))
    cast.patient.refresh_from_db()
    with time_machine.travel(NOW, tick=False):
        yield cast


@pytest.mark.parametrize("seed", [11, 12])
def test_trends_equal_an_independent_computation(history, clients, seed):
    _history(history.patient, history.clinician, seed)
    response = clients.clinician.get(f"/api/v1/patients/{history.patient.pk}/trends/?from={FIRST}&to={LAST}")
    assert response.status_code == 200, response.content
    body = response.json()
    expected = _expected(history.patient)
    assert body["days"] == expected["days"]
    assert body["rolling_7d"] == expected["rolling_7d"]
    assert body["summary"] == pytest.approx(expected["summary"])
    assert {t["trigger"]: (t["count"], t["craving_mean"]) for t in body["triggers"]} == expected["triggers"]
    assert {h["hour"]: (h["entries"], h["craving_mean"]) for h in body["hours"] if h["entries"]} == expected["hours"]
    assert [{"id": u["id"], "craving_before": u["craving_before"]} for u in body["uses"]] == expected["uses"]
    assert [s["local_date"] for s in body["sessions"]] == ["2026-02-27", "2026-03-13"]  # 02-13 is before `from`


def test_session_anchored_trends_equal_an_independent_computation(history, clients):
    _history(history.patient, history.clinician, 13)
    response = clients.clinician.get(f"/api/v1/patients/{history.patient.pk}/trends/sessions/?before=7&after=14")
    assert response.status_code == 200, response.content
    body = response.json()
    by_day = _expected(history.patient)["by_day"]

    def pooled(days, field):
        return _mean(getattr(e, field) for d in days for e in by_day.get(d, []))

    deltas = []
    assert [s["local_date"] for s in body["sessions"]] == ["2026-02-13", "2026-02-27", "2026-03-13"]
    for session in body["sessions"]:
        day0 = date.fromisoformat(session["local_date"])
        pre = [day0 - timedelta(days=n) for n in range(1, 8)]
        post = [day0 + timedelta(days=n) for n in range(1, 15)]
        assert session["pre"] == {"craving_mean": pooled(pre, "craving"), "mood_mean": pooled(pre, "mood"),
                                  "entries": sum(len(by_day.get(d, [])) for d in pre)}  # fmt: skip
        assert session["post"]["craving_mean"] == pooled(post, "craving")
        expected_delta = round(pooled(post, "craving") - pooled(pre, "craving"), 2)
        assert session["delta"]["craving"] == pytest.approx(expected_delta)
        deltas.append(session["delta"]["craving"])
        day3 = day0 + timedelta(days=3)
        expected_day3 = {"offset": 3, "craving_mean": pooled([day3], "craving"), "mood_mean": pooled([day3], "mood"),
                         "entries": len(by_day.get(day3, []))}  # fmt: skip
        assert session["days"][7 + 3] == expected_day3
    assert body["average"]["sessions"] == 3
    assert body["average"]["delta"]["craving"] == pytest.approx(round(statistics.fmean(deltas), 2))
    at_zero = [s["days"][7]["craving_mean"] for s in body["sessions"] if s["days"][7]["craving_mean"] is not None]
    assert body["average"]["days"][7]["craving_mean"] == (round(statistics.fmean(at_zero), 2) if at_zero else None)


def test_the_patient_reads_their_own_trends_and_nobody_else_does(history, clients):
    _history(history.patient, history.clinician, 14)
    mine = clients.patient.get(f"/api/v1/me/trends/?from={FIRST}&to={LAST}")
    assert mine.status_code == 200
    theirs = clients.clinician.get(f"/api/v1/patients/{history.patient.pk}/trends/?from={FIRST}&to={LAST}").json()
    assert mine.json() == theirs
    assert clients.outsider.get(f"/api/v1/patients/{history.patient.pk}/trends/").status_code == 404
    assert clients.outsider.get(f"/api/v1/patients/{history.patient.pk}/trends/sessions/").status_code == 404
    assert clients.patient.get(f"/api/v1/patients/{history.patient.pk}/trends/").status_code == 403


def test_default_range_is_the_last_30_journal_days(history, clients):
    body = clients.patient.get("/api/v1/me/trends/").json()
    today = NOW.astimezone(ZoneInfo(ZONE)).date()
    assert body["to"] == today.isoformat()
    assert len(body["days"]) == 30 and body["days"][0]["date"] == (today - timedelta(days=29)).isoformat()


@pytest.mark.parametrize(
    "query",
    ["from=2026-03-10&to=2026-03-01", "from=2024-01-01&to=2026-03-01", "from=yesterday", "to=2026-02-30",
     "before=0", "after=61", "kind=yoga",
     # the date arithmetic of a range (a default `from`, the window before) would overflow: not a 500
     "to=0001-01-05", "from=0001-01-01&to=0001-01-05", "from=9999-12-20&to=9999-12-31"],
)  # fmt: skip
def test_bad_ranges_are_a_400_in_the_error_shape(history, clients, query):
    path = "trends/sessions/" if query.split("=")[0] in ("before", "after", "kind") else "trends/"
    response = clients.clinician.get(f"/api/v1/patients/{history.patient.pk}/{path}?{query}")
    assert response.status_code == 400, response.content
    assert response.json()["error"]["code"]


def test_trends_take_a_fixed_number_of_queries(history, clients, django_assert_num_queries):
    # The sign-in; the care-team check with its access-log row; the trend (one statement, plus one
    # for a check-in streak longer than the days read): the same for 30 or 731 days.
    _history(history.patient, history.clinician, 15)
    url = f"/api/v1/patients/{history.patient.pk}/trends/"
    with django_assert_num_queries(3):
        assert clients.clinician.get(url).status_code == 200
    with django_assert_num_queries(3):
        assert clients.clinician.get(url + "?from=2024-03-21&to=2026-03-20").status_code == 200


def test_streak_and_last_use_reach_past_the_range_read(history, clients):
    # A check-in on each of the last 60 journal days and one use 40 days ago: a 5-day range reads
    # far fewer rollups than the streak and the last use need.
    for back in range(60):
        entry_create(
            patient=history.patient,
            data={"id": uuid.uuid4(), "kind": "check_in", "occurred_at": NOW - timedelta(days=back, hours=1),
                  "craving": 3, "mood": 6},
        )  # fmt: skip
    entry_create(
        patient=history.patient,
        data={"id": uuid.uuid4(), "kind": "use", "occurred_at": NOW - timedelta(days=40), "substance": "alcohol"},
    )
    url = f"/api/v1/patients/{history.patient.pk}/trends/"
    for query in (
        "?from=2026-03-17&to=2026-03-21",
        "?from=2025-01-01&to=2025-01-31",
        "?from=2024-03-01&to=2024-03-05",
        "",
    ):
        summary = clients.clinician.get(url + query).json()["summary"]
        assert summary["current_streak"] == 60, query
        assert summary["days_since_last_use"] == 40, query
