import threading
import time
import uuid
from concurrent.futures import ThreadPoolExecutor

import pytest
from django.db import connection, transaction
from rest_framework.test import APIClient

from journal import risk
from journal.models import Entry
from journal.services.entries import entry_create
from tests.conftest import client_for
from tests.timeutil import iso_ago

pytestmark = pytest.mark.django_db


def item(**fields) -> dict:
    return {"id": str(uuid.uuid4()), "kind": "craving", "craving": 5, "occurred_at": iso_ago(hours=3), **fields}


def fired(rule: str) -> risk.Firing:
    return risk.Firing(rule, {"at": "2026-01-01T00:00:00Z"})


def sync(client, entries):
    return client.post("/api/v1/entries/sync/", {"entries": entries}, format="json")


def test_sync_creates_and_reports_per_item(clients):
    batch = [item(), item(craving=9), item(kind="use", substance="alcohol", craving=None)]
    response = sync(clients.patient, batch)
    assert response.status_code == 200
    body = response.json()
    assert [r["status"] for r in body["results"]] == ["created"] * 3
    assert [r["id"] for r in body["results"]] == [b["id"] for b in batch]
    assert body["server_time"].endswith("Z")
    assert Entry.objects.count() == 3


def test_replaying_a_batch_creates_nothing_new(clients):
    batch = [item(note=f"n{i}") for i in range(20)]
    sync(clients.patient, batch)
    again = sync(clients.patient, batch).json()
    assert {r["status"] for r in again["results"]} == {"unchanged"}
    assert Entry.objects.count() == 20


def test_one_bad_item_does_not_sink_the_others(clients):
    batch = [item(), item(craving=42), {"kind": "craving"}, "not even an object", item(), None]
    response = sync(clients.patient, batch)
    assert response.status_code == 200
    statuses = [r["status"] for r in response.json()["results"]]
    assert statuses == ["created", "invalid", "invalid", "invalid", "created", "invalid"]
    bad = response.json()["results"][1]
    assert bad["errors"]["field_codes"] == {"craving": ["max_value"]}
    assert Entry.objects.count() == 2


def test_replaying_a_batch_of_items_without_ids_creates_nothing_new(clients):
    """The server makes the id of an item sent without one (SPEC §5) from the patient and the
    content, so the replay finds what the first try stored."""
    batch = [{k: v for k, v in item(craving=n).items() if k != "id"} for n in (2, 3)]
    first = sync(clients.patient, batch).json()["results"]
    again = sync(clients.patient, batch).json()["results"]
    assert [r["status"] for r in first] == ["created", "created"]
    assert [r["status"] for r in again] == ["unchanged", "unchanged"]
    assert [r["id"] for r in again] == [r["id"] for r in first]
    assert Entry.objects.count() == 2
    # The same content from another patient is that patient's own entry, not a conflict.
    assert [r["status"] for r in sync(clients.other_patient, batch).json()["results"]] == ["created", "created"]
    assert Entry.objects.count() == 4


def test_a_replayed_batch_repeats_the_support_block_its_first_answer_carried(clients):
    """The real rules: a `use` item fires use_reported (high), whose evidence names the entry."""
    batch = [item(), item(kind="use", substance="alcohol", craving=None)]
    first = sync(clients.patient, batch).json()
    assert first["support"]["resources"]
    replay = sync(clients.patient, batch).json()
    assert {r["status"] for r in replay["results"]} == {"unchanged"}
    assert replay["support"] == first["support"]
    assert "support" not in sync(clients.patient, [item()]).json()


def test_base_version_updates_and_stale_versions_conflict(clients):
    first = item()
    sync(clients.patient, [first])
    updated = sync(clients.patient, [{**first, "craving": 2, "base_version": 1}]).json()["results"][0]
    assert (updated["status"], updated["version"]) == ("updated", 2)
    stale = sync(clients.patient, [{**first, "craving": 8, "base_version": 1}]).json()["results"][0]
    assert (stale["status"], stale["version"]) == ("conflict", 2)
    no_base = sync(clients.patient, [{**first, "craving": 8}]).json()["results"][0]
    assert no_base["status"] == "conflict"
    stored = Entry.objects.get()
    assert (stored.craving, stored.version, stored.revisions.count()) == (2, 2, 1)


def test_sync_cannot_write_over_another_patients_entry(clients, cast):
    theirs = item(note="theirs")
    sync(clients.other_patient, [theirs])
    result = sync(clients.patient, [{**theirs, "craving": 0, "base_version": 1}]).json()["results"][0]
    assert result["status"] == "conflict"
    stored = Entry.objects.get()
    assert (stored.patient_id, stored.craving, stored.note) == (cast.other_patient.id, 5, "theirs")


def test_duplicate_ids_in_one_batch(clients):
    one = item()
    results = sync(clients.patient, [one, one, {**one, "craving": 1}]).json()["results"]
    assert [r["status"] for r in results] == ["created", "unchanged", "conflict"]


def test_batch_over_500_is_413_so_the_app_splits_it(clients):
    response = sync(clients.patient, [item() for _ in range(501)])
    assert response.status_code == 413
    assert response.json()["error"]["code"] == "payload_too_large"
    assert sync(clients.patient, [item() for _ in range(500)]).status_code == 200


def test_sync_envelope_must_be_a_list(clients):
    assert sync(clients.patient, "nope").status_code == 400
    assert clients.patient.post("/api/v1/entries/sync/", {}, format="json").status_code == 400


def test_sync_query_count_does_not_grow_with_the_batch(clients, django_assert_max_num_queries):
    # Auth, sequence, existing ids, bulk insert, rollups (+ savepoint bookkeeping), and for the alert
    # rules the clinic's thresholds and one read of the rollups: not one per entry.
    with django_assert_max_num_queries(10):
        sync(clients.patient, [item() for _ in range(5)])
    with django_assert_max_num_queries(10):
        sync(clients.patient, [item() for _ in range(200)])
    batch = [item() for _ in range(100)]
    sync(clients.patient, batch)
    with django_assert_max_num_queries(12):
        sync(clients.patient, [{**b, "craving": 1, "base_version": 1} for b in batch])
    assert Entry.objects.filter(craving=1).count() == 100


def test_sync_carries_one_support_block_when_an_item_fires(clients, monkeypatch):
    # A stand-in rule: a rule returns its firings; severity is the rule's (SEVERITY_OF_RULE).
    monkeypatch.setattr(
        risk,
        "RULES",
        [lambda written: [fired("use_reported")] if any(e.kind == "use" for e in written.entries) else []],
    )
    quiet = sync(clients.patient, [item()]).json()
    assert "support" not in quiet
    loud = sync(clients.patient, [item(), item(kind="use", substance="cocaine")]).json()
    assert loud["support"]["resources"] and loud["support"]["monitored"]


def test_the_seam_adds_support_to_create_and_edit(clients, monkeypatch):
    monkeypatch.setattr(
        risk,
        "RULES",
        [lambda written: [fired("phq9_self_harm" if written.entries[0].craving == 10 else "craving_rising")]],
    )
    medium = clients.patient.post("/api/v1/entries/", item(craving=3), format="json").json()
    assert "support" not in medium
    urgent = clients.patient.post("/api/v1/entries/", item(craving=10), format="json").json()
    assert urgent["support"]["resources"][0]["phone"] == "988"
    edited = clients.patient.patch(f"/api/v1/entries/{medium['id']}/", {"craving": 10}, format="json").json()
    assert "support" in edited


def test_the_seam_runs_inside_the_writes_transaction(clients, monkeypatch):
    def failing_rule(written):
        raise RuntimeError("rule crashed")

    monkeypatch.setattr(risk, "RULES", [failing_rule])
    client = clients.patient
    client.raise_request_exception = False
    assert client.post("/api/v1/entries/", item(), format="json").status_code == 500
    assert Entry.objects.count() == 0  # nothing half-written


# --- Changes feed ---------------------------------------------------------------------------------


def changes(client, cursor=None):
    params = {"cursor": cursor} if cursor else {}
    return client.get("/api/v1/entries/changes/", params).json()


def test_changes_feed_returns_creates_edits_and_tombstones_in_order(clients):
    a, b = item(), item()
    sync(clients.patient, [a, b])
    first = changes(clients.patient)
    assert [row["id"] for row in first["results"]] == [a["id"], b["id"]]
    assert first["has_more"] is False
    clients.patient.patch(f"/api/v1/entries/{a['id']}/", {"craving": 1}, format="json")
    clients.patient.delete(f"/api/v1/entries/{b['id']}/")
    second = changes(clients.patient, first["cursor"])
    assert second["results"][0]["id"] == a["id"] and second["results"][0]["craving"] == 1
    assert second["results"][1] == {"id": b["id"], "deleted": True}
    assert changes(clients.patient, second["cursor"])["results"] == []


def test_changes_feed_pages_with_has_more(clients):
    sync(clients.patient, [item() for _ in range(450)])
    seen, cursor, pages = [], None, 0
    while True:
        page = changes(clients.patient, cursor)
        seen += [row["id"] for row in page["results"]]
        cursor, pages = page["cursor"], pages + 1
        if not page["has_more"]:
            break
    assert len(seen) == len(set(seen)) == 450
    assert pages == 3


def test_changes_feed_is_per_patient(clients):
    sync(clients.other_patient, [item()])
    assert changes(clients.patient)["results"] == []


def test_bad_cursor_is_400(clients):
    assert clients.patient.get("/api/v1/entries/changes/", {"cursor": "garbage!"}).status_code == 400


@pytest.mark.django_db(transaction=True)
def test_a_cursor_never_skips_a_write_that_commits_late(cast):
    """Two devices write concurrently: the first to start commits last. A reader that polls in
    between must still see both, in the order their changes became visible."""
    patient = cast.patient
    reader = client_for(patient.user)
    slow_started, reader_done = threading.Event(), threading.Event()

    def slow_device():
        try:
            with transaction.atomic():
                entry_create(patient=patient, data=_content())
                slow_started.set()
                reader_done.wait(timeout=10)  # hold the transaction open while others act
        finally:
            connection.close()

    def fast_device():
        try:
            entry_create(patient=patient, data=_content())  # waits on the slow device's lock
        finally:
            connection.close()

    with ThreadPoolExecutor(max_workers=2) as pool:
        slow = pool.submit(slow_device)
        assert slow_started.wait(timeout=10)
        fast = pool.submit(fast_device)
        time.sleep(0.5)  # room for the fast device to commit, if anything let it
        mid = changes(reader)  # neither committed yet: nothing, and the cursor must not move past them
        reader_done.set()
        slow.result(timeout=10)
        fast.result(timeout=10)
    assert mid["results"] == []
    after = changes(reader, mid["cursor"])
    assert len(after["results"]) == 2


@pytest.mark.django_db(transaction=True)
def test_two_requests_racing_with_one_id_make_one_row_and_no_500(cast):
    payload = item(note="racing")
    barrier = threading.Barrier(2)

    def attempt():
        try:
            client = client_for(cast.patient.user)
            barrier.wait(timeout=10)
            return client.post("/api/v1/entries/", payload, format="json").status_code
        finally:
            connection.close()

    with ThreadPoolExecutor(max_workers=2) as pool:
        codes = sorted(pool.map(lambda _: attempt(), range(2)))
    assert codes == [200, 201]
    assert Entry.objects.count() == 1


def _content() -> dict:
    from datetime import UTC, datetime, timedelta

    return {"id": uuid.uuid4(), "kind": "craving", "craving": 4, "occurred_at": datetime.now(UTC) - timedelta(hours=1)}


def test_anonymous_and_clinicians_cannot_sync(clients):
    assert APIClient().post("/api/v1/entries/sync/", {"entries": []}, format="json").status_code == 401
    assert sync(clients.clinician, []).status_code == 403


def test_changes_query_count_is_flat(clients, django_assert_num_queries):
    sync(clients.patient, [item() for _ in range(3)])
    # Queries: sign-in with user and patient, one page of changes.
    with django_assert_num_queries(2):
        changes(clients.patient)
    sync(clients.patient, [item() for _ in range(150)])
    with django_assert_num_queries(2):
        assert len(changes(clients.patient)["results"]) == 153
