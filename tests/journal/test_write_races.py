"""Entry writes that answer prompts, race each other or follow a time-zone change (SPEC §5, §7).

One patient's devices may write at once, and every write path (POST, PATCH, a sync create or
update) must take its locks in one order, the patient's journal lock first, or two of them deadlock.
An edit means the same whether it comes as a PATCH or as an offline phone's sync update. And a
journal day is computed once, at write time: an edit moves an entry only when it moves `occurred_at`.
"""

import itertools
import threading
import uuid
from concurrent.futures import ThreadPoolExecutor
from datetime import UTC, datetime, timedelta
from datetime import time as clock
from zoneinfo import ZoneInfo

import pytest
from django.db import connection

from accounts.models import Patient
from backend import hooks
from journal.models import Alert, DailyRollup, Entry, JournalSequence
from journal.services import entries
from journal.services.alerts import alert_resolve
from reminders.models import WEEKDAYS, Prompt, PromptStatus, Schedule
from tests.timeutil import iso_ago

pytestmark = pytest.mark.django_db

_slots = itertools.count()


def _prompt(patient: Patient, *, expired: bool = False) -> Prompt:
    """A prompt sent to the patient: open until an hour from now, or sent 3 h ago and expired."""
    now = datetime.now(UTC)
    sent_at = now - timedelta(hours=3 if expired else 1)
    schedule, _ = Schedule.objects.get_or_create(
        patient=patient, kind="check_in", defaults={"days": list(WEEKDAYS), "time": clock(9)}
    )
    return Prompt.objects.create(
        patient=patient,
        schedule=schedule,
        kind="check_in",
        local_date=patient.journal_day(sent_at)[0],
        slot=next(_slots),
        scheduled_for=sent_at,
        next_attempt_at=sent_at,
        expires_at=now - timedelta(hours=1) if expired else now + timedelta(hours=1),
        status=PromptStatus.EXPIRED if expired else PromptStatus.SENT,
        sent_at=sent_at,
    )


def _content(**fields) -> dict:
    """An entry's content as the services get it (validated, internal values)."""
    occurred_at = datetime.now(UTC).replace(microsecond=0) - timedelta(minutes=5)
    return {"id": uuid.uuid4(), "kind": "craving", "craving": 4, "occurred_at": occurred_at, **fields}


def _post(client, **fields) -> dict:
    body = {"id": str(uuid.uuid4()), "kind": "craving", "craving": 3, "occurred_at": iso_ago(minutes=5), **fields}
    response = client.post("/api/v1/entries/", body, format="json")
    assert response.status_code == 201, response.content
    return body


def _edit(client, body: dict, *, via: str, **changes) -> Entry:
    """Edits the entry POSTed as `body`: by PATCH, or as an offline phone does, by a sync item that
    carries the whole new content and the version it edited."""
    if via == "patch":
        response = client.patch(f"/api/v1/entries/{body['id']}/", changes, format="json")
        assert response.status_code == 200, response.content
    else:
        item = {**body, **changes, "base_version": Entry.objects.get(pk=body["id"]).version}
        response = client.post("/api/v1/entries/sync/", {"entries": [item]}, format="json")
        assert response.json()["results"][0]["status"] == "updated", response.content
    return Entry.objects.get(pk=body["id"])


# --- One lock order ------------------------------------------------------------------------------


@pytest.mark.parametrize("write", ["post", "sync_create", "sync_update", "patch"])
def test_every_write_answering_a_prompt_holds_the_journal_lock_before_it_locks_the_prompt(cast, monkeypatch, write):
    """The sequence bump is what takes the journal lock: when the prompt handler runs, this
    transaction must already have bumped it."""
    patient = cast.patient
    prompt = _prompt(patient)
    edited = _content()
    entries.entry_create(patient=patient, data=edited)
    before = JournalSequence.objects.get(patient=patient).last_seq
    seen = []

    def record_sequence(**_):
        seen.append(JournalSequence.objects.get(patient=patient).last_seq)
        return False

    monkeypatch.setattr(hooks.prompt_answered, "_handlers", [record_sequence, *hooks.prompt_answered._handlers])
    if write == "post":
        entries.entry_create(patient=patient, data=_content(prompt_id=prompt.pk))
    elif write == "sync_create":
        entries.entries_sync(patient=patient, items=[{"data": _content(prompt_id=prompt.pk)}])
    elif write == "sync_update":
        update = {**edited, "prompt_id": prompt.pk, "base_version": 1}
        assert entries.entries_sync(patient=patient, items=[{"data": update}])["results"][0]["status"] == "updated"
    else:
        entries.entry_update(patient=patient, entry_id=edited["id"], changes={"prompt_id": prompt.pk}, if_match=1)
    assert seen == [before + 1]
    prompt.refresh_from_db()
    assert prompt.status == PromptStatus.COMPLETED


WAIT = 1.0  # seconds each write gives the other to take its first lock


@pytest.mark.django_db(transaction=True)
@pytest.mark.parametrize("other", ["sync", "patch"])
def test_a_post_and_another_write_answering_one_prompt_both_commit(cast, monkeypatch, other):
    """Two devices answer one prompt at once: a POST, and a sync or a PATCH. Each write waits for
    the other to take its first lock. When the POST locked the prompt before the journal and the
    other took them the other way round, PostgreSQL aborted one with "deadlock detected" (a 503, and
    a whole sync batch to resend). Now the second to arrive waits for the first, and both commit."""
    patient = cast.patient
    prompt = _prompt(patient)
    edited = _content()
    entries.entry_create(patient=patient, data=edited)
    post_has_prompt, other_has_journal = threading.Event(), threading.Event()
    role = threading.local()

    def after_prompt_locked(**_):  # after reminders' handler, whose UPDATE locked the prompt's row
        if getattr(role, "name", None) == "post":
            post_has_prompt.set()
            other_has_journal.wait(WAIT)
        return False

    monkeypatch.setattr(hooks.prompt_answered, "_handlers", [*hooks.prompt_answered._handlers, after_prompt_locked])
    allocate = entries.sequence_allocate

    def allocate_then_wait(patient_id, count):
        last_seq = allocate(patient_id, count)  # the journal lock is held from here to commit
        if getattr(role, "name", None) == other:
            other_has_journal.set()
            post_has_prompt.wait(WAIT)
        return last_seq

    monkeypatch.setattr(entries, "sequence_allocate", allocate_then_wait)

    def as_device(name, write):
        def run():
            role.name = name
            try:
                write()
            finally:
                connection.close()

        return run

    def post():
        entries.entry_create(patient=patient, data=_content(prompt_id=prompt.pk))

    def other_write():
        if other == "sync":
            entries.entries_sync(patient=patient, items=[{"data": _content(prompt_id=prompt.pk)}])
        else:
            entries.entry_update(patient=patient, entry_id=edited["id"], changes={"prompt_id": prompt.pk}, if_match=1)

    with ThreadPoolExecutor(max_workers=2) as pool:
        futures = [pool.submit(as_device("post", post)), pool.submit(as_device(other, other_write))]
        errors = [future.exception(timeout=10) for future in futures]
    assert errors == [None, None]
    assert Entry.objects.filter(patient=patient, prompt_id=prompt.pk).count() == 2
    prompt.refresh_from_db()
    assert prompt.status == PromptStatus.COMPLETED


# --- An edit means the same by PATCH and by sync --------------------------------------------------


@pytest.mark.parametrize("via", ["patch", "sync"])
def test_an_edit_that_names_a_prompt_completes_it(cast, clients, via):
    """SPEC §7: an entry with `prompt_id` completes an open prompt, and an offline phone's edit is
    an entry write like any other."""
    prompt = _prompt(cast.patient)
    body = _post(clients.patient)
    entry = _edit(clients.patient, body, via=via, prompt_id=str(prompt.pk))
    assert (entry.prompt_id, entry.late) == (prompt.pk, False)
    prompt.refresh_from_db()
    assert prompt.status == PromptStatus.COMPLETED
    assert prompt.completed_at is not None


@pytest.mark.parametrize("via", ["patch", "sync"])
def test_an_edit_keeps_an_answer_to_an_expired_prompt_late(cast, clients, via):
    """SPEC §5: `late` is true for an entry answering an expired prompt; changing its craving does
    not make the answer any less late."""
    prompt = _prompt(cast.patient, expired=True)
    body = _post(clients.patient, prompt_id=str(prompt.pk))
    assert Entry.objects.get(pk=body["id"]).late is True
    entry = _edit(clients.patient, body, via=via, craving=4)
    assert (entry.craving, entry.version, entry.late) == (4, 2, True)
    prompt.refresh_from_db()
    assert prompt.status == PromptStatus.EXPIRED


@pytest.mark.parametrize("via", ["patch", "sync"])
def test_an_edit_that_names_an_expired_prompt_makes_the_entry_late(cast, clients, via):
    prompt = _prompt(cast.patient, expired=True)
    body = _post(clients.patient)
    assert Entry.objects.get(pk=body["id"]).late is False
    assert _edit(clients.patient, body, via=via, prompt_id=str(prompt.pk)).late is True


# --- The journal day is fixed at write time -------------------------------------------------------


def _move(patient: Patient, zone: str) -> None:
    Patient.objects.filter(pk=patient.pk).update(timezone=zone)


@pytest.mark.parametrize("via", ["patch", "sync"])
def test_a_note_only_edit_after_a_zone_change_keeps_the_entry_on_its_journal_day(cast, clients, via):
    """A check-in at 22:00 or 23:00 in Los Angeles; the patient moves to Berlin, where that instant
    is the next morning, and fixes a typo in the note. The entry stays on its Los Angeles day, and
    so do that day's figures (check-in day, streak, hours) in the clinician's past trends."""
    patient = cast.patient
    _move(patient, "America/Los_Angeles")
    occurred_at = (datetime.now(UTC) - timedelta(days=5)).replace(hour=6, minute=0, second=0, microsecond=0)
    los_angeles = occurred_at.astimezone(ZoneInfo("America/Los_Angeles"))
    assert los_angeles.date() == occurred_at.date() - timedelta(days=1)  # the evening before
    body = _post(clients.patient, kind="check_in", mood=6, note="tpyo", occurred_at=occurred_at.isoformat())
    written = Entry.objects.get(pk=body["id"])
    assert (written.local_date, written.local_hour) == (los_angeles.date(), los_angeles.hour)
    _move(patient, "Europe/Berlin")
    entry = _edit(clients.patient, body, via=via, note="typo")
    assert (entry.note, entry.local_date, entry.local_hour) == ("typo", los_angeles.date(), los_angeles.hour)
    rollups = DailyRollup.objects.filter(patient=patient)
    assert dict(rollups.values_list("local_date", "check_ins")) == {los_angeles.date(): 1}


@pytest.mark.parametrize("via", ["patch", "sync"])
def test_a_note_only_edit_after_a_zone_change_fires_nothing_on_a_day_it_never_touched(cast, clients, via):
    """The alert rules agree with the edit: the entry did not leave any day, so a low-mood run on
    the Berlin day its instant now falls on is not the edit's to fire (mood_low looks at days an
    edit moved an entry off)."""
    patient = cast.patient
    _move(patient, "America/Los_Angeles")
    occurred_at = (datetime.now(UTC) - timedelta(days=5)).replace(hour=6, minute=0, second=0, microsecond=0)
    body = _post(clients.patient, kind="check_in", craving=0, mood=6, note="tpyo", occurred_at=occurred_at.isoformat())
    _move(patient, "Europe/Berlin")
    for days in (0, 1, 2):  # three low Berlin days from the entry's instant on: mood_low fires, is resolved
        at = occurred_at + timedelta(days=days, hours=5)
        _post(clients.patient, kind="check_in", craving=0, mood=1, occurred_at=at.isoformat())
    low = Alert.objects.get(rule="mood_low")
    alert_resolve(alert=low, by=cast.clinician, note="Spoke with them.")
    _edit(clients.patient, body, via=via, note="typo")
    assert list(Alert.objects.filter(rule="mood_low").values_list("status", flat=True)) == ["resolved"]


@pytest.mark.parametrize("via", ["patch", "sync"])
def test_an_edit_that_moves_occurred_at_takes_its_day_from_the_current_zone(cast, clients, via):
    patient = cast.patient
    _move(patient, "America/Los_Angeles")
    occurred_at = (datetime.now(UTC) - timedelta(days=5)).replace(hour=6, minute=0, second=0, microsecond=0)
    body = _post(clients.patient, kind="check_in", mood=6, occurred_at=occurred_at.isoformat())
    _move(patient, "Europe/Berlin")
    moved_to = occurred_at + timedelta(hours=1)
    entry = _edit(clients.patient, body, via=via, occurred_at=moved_to.isoformat())
    berlin = moved_to.astimezone(ZoneInfo("Europe/Berlin"))
    assert (entry.local_date, entry.local_hour) == (berlin.date(), berlin.hour)
    rollups = DailyRollup.objects.filter(patient=patient)
    assert dict(rollups.values_list("local_date", "check_ins")) == {berlin.date(): 1}
