"""Daily rollups stay exact: after any mix of creates, edits (also across days), deletes, late
entries and syncs through the API, the incrementally kept rows equal a rebuild from the entries."""

import random
import uuid
from datetime import timedelta

import pytest
from django.core.management import call_command
from django.utils import timezone

from journal.models import DailyRollup
from journal.services.rollups import rollups_rebuild

ROLLUP_FIELDS = (
    "patient_id", "local_date", "entries", "check_ins", "uses", "craving_sum", "craving_count", "craving_max",
    "mood_sum", "mood_count", "anxiety_sum", "anxiety_count", "sleep_sum", "sleep_count",
)  # fmt: skip


def snapshot() -> list[tuple]:
    return sorted(DailyRollup.objects.values_list(*ROLLUP_FIELDS))


def random_content(rng: random.Random) -> dict:
    kind = rng.choice(["check_in", "craving", "use"])
    # Up to 40 hours back (some days apart, some late), in a zone where that crosses days.
    occurred = timezone.now() - timedelta(minutes=rng.randrange(1, 40 * 60))
    content = {"kind": kind, "occurred_at": occurred.isoformat()}
    if kind in ("check_in", "craving") or rng.random() < 0.5:
        content["craving"] = rng.randrange(0, 11)
    if kind == "check_in":
        content["mood"] = rng.randrange(0, 11)
        if rng.random() < 0.5:
            content["anxiety"] = rng.randrange(0, 11)
        if rng.random() < 0.5:
            content["sleep_hours"] = rng.randrange(0, 49) / 4
    if kind == "use":
        content["substance"] = rng.choice(["alcohol", "cocaine"])
    return content


@pytest.mark.parametrize("seed", [1, 2, 3])
def test_incremental_rollups_equal_a_rebuild_after_random_writes(clients, cast, seed):
    cast.patient.timezone = "Pacific/Kiritimati"  # UTC+14: recent hours fall on several journal days
    cast.patient.save()
    rng = random.Random(seed)
    live: dict[str, int] = {}  # id -> version
    for _ in range(60):
        action = rng.choice(["create", "create", "edit", "delete", "sync"])
        if action == "create" or not live:
            entry_id = str(uuid.uuid4())
            response = clients.patient.post("/api/v1/entries/", {"id": entry_id, **random_content(rng)}, format="json")
            assert response.status_code == 201, response.content
            live[entry_id] = 1
        elif action == "edit":
            entry_id = rng.choice(sorted(live))
            changes = random_content(rng)
            response = clients.patient.patch(f"/api/v1/entries/{entry_id}/", changes, format="json")
            assert response.status_code == 200, response.content
            live[entry_id] = response.json()["version"]
        elif action == "delete":
            entry_id = rng.choice(sorted(live))
            assert clients.patient.delete(f"/api/v1/entries/{entry_id}/").status_code == 204
            del live[entry_id]
        else:
            batch = [{"id": str(uuid.uuid4()), **random_content(rng)} for _ in range(rng.randrange(1, 5))]
            for entry_id in rng.sample(sorted(live), min(2, len(live))):
                batch.append({"id": entry_id, **random_content(rng), "base_version": live[entry_id]})
            response = clients.patient.post("/api/v1/entries/sync/", {"entries": batch}, format="json")
            assert response.status_code == 200, response.content
            for result in response.json()["results"]:
                assert result["status"] in ("created", "updated"), result
                live[str(result["id"])] = result["version"]
    incremental = snapshot()
    assert incremental, "the writes produced rollups"
    rollups_rebuild()
    assert snapshot() == incremental


def test_rebuild_command_recomputes_from_entries(clients, cast):
    clients.patient.post(
        "/api/v1/entries/", {"kind": "craving", "occurred_at": timezone.now().isoformat(), "craving": 7}, format="json"
    )
    before = snapshot()
    DailyRollup.objects.all().update(craving_sum=0)
    call_command("rebuild_rollups")
    assert snapshot() == before
    assert before[0][ROLLUP_FIELDS.index("craving_max")] == 7


def test_a_day_whose_last_entry_is_deleted_has_no_rollup(clients):
    response = clients.patient.post(
        "/api/v1/entries/", {"kind": "craving", "occurred_at": timezone.now().isoformat(), "craving": 3}, format="json"
    )
    assert DailyRollup.objects.count() == 1
    assert clients.patient.delete(f"/api/v1/entries/{response.json()['id']}/").status_code == 204
    assert DailyRollup.objects.count() == 0


def test_a_retried_create_is_counted_once(clients):
    body = {"id": str(uuid.uuid4()), "kind": "check_in", "occurred_at": timezone.now().isoformat(), "craving": 4,
            "mood": 6, "sleep_hours": 7.5}  # fmt: skip
    assert clients.patient.post("/api/v1/entries/", body, format="json").status_code == 201
    assert clients.patient.post("/api/v1/entries/", body, format="json").status_code == 200
    [rollup] = DailyRollup.objects.all()
    assert (rollup.entries, rollup.check_ins, rollup.craving_sum, rollup.mood_count) == (1, 1, 4, 1)
    assert float(rollup.sleep_sum) == 7.5
    incremental = snapshot()
    rollups_rebuild()
    assert snapshot() == incremental
