"""Writes of journal entries (SPEC §5): create (idempotent by the phone's id), edit, delete, sync.

Every write first bumps the patient's JournalSequence with one UPDATE … RETURNING. That takes the
patient's row lock until commit, which (1) serialises one patient's writes, so two requests racing
with the same id find each other instead of colliding, and (2) hands out change_seq numbers in
commit order, which is what lets the changes feed promise that a cursor never skips a change.

That journal lock is also the first lock of every write: the rows a write locks after it (the
entry, its day's rollup, the prompt it answers) are taken only while holding it. Two writes of one
patient that took the same two locks in opposite orders would deadlock, and PostgreSQL would abort
one of them, a whole sync batch with it; a POST that completed its prompt before numbering its
entry did exactly that against a sync or a PATCH answering the same prompt.
"""

import json
import uuid
from datetime import UTC, datetime, timedelta
from decimal import Decimal

from django.db import IntegrityError, connection, transaction
from django.utils import timezone
from rest_framework.exceptions import NotFound

from accounts.models import Patient
from backend import hooks
from backend.api.exceptions import Conflict, PreconditionFailed
from backend.db import column_value, insert_unless_exists, mark_saved
from journal.models import Entry, EntryRevision, JournalSequence
from journal.risk import Written, evaluate_writes, support_for_retry
from journal.serializers.entries import as_validation_error, content_errors
from journal.services.rollups import ROLLUP_ADD_NEW_ENTRY, rollups_refresh

CLIENT_FIELDS = (
    "kind", "occurred_at", "craving", "mood", "anxiety", "sleep_hours", "substance", "amount", "triggers",
    "coping", "note", "prompt_id",
)  # fmt: skip
LATE_AFTER = timedelta(hours=24)


def sequence_allocate(patient_id, count: int) -> int:
    """Reserves `count` change numbers for this patient; returns the last one. Holds the patient's
    journal lock until the transaction ends."""
    table = JournalSequence._meta.db_table
    with connection.cursor() as cursor:
        cursor.execute(
            f"INSERT INTO {table} (patient_id, last_seq) VALUES (%s, %s) "  # noqa: S608 - table from the model
            f"ON CONFLICT (patient_id) DO UPDATE SET last_seq = {table}.last_seq + %s RETURNING last_seq",
            [column_value(JournalSequence, "patient", patient_id), count, count],
        )
        return cursor.fetchone()[0]


def _entry_insert_counted(entry: Entry) -> bool:
    """Numbers a new entry in its patient's journal sequence, inserts it unless its id exists and
    counts it in its day's rollup; True when inserted. Sets `entry.change_seq`.

    On PostgreSQL one statement does all three (data-modifying CTEs: the sequence bump takes the
    patient's journal lock and hands its number to the insert, whose returned row feeds the rollup
    upsert, so an id that already existed adds nothing); elsewhere, three.
    """
    if connection.vendor != "postgresql":
        entry.change_seq = sequence_allocate(entry.patient_id, 1)
        if not insert_unless_exists(entry):
            return False
        rollups_refresh(patient_id=entry.patient_id, days=[entry.local_date])
        return True
    fields = [field for field in Entry._meta.local_concrete_fields if field.attname != "change_seq"]
    entry.change_seq = 0  # a placeholder for pre_save; the number comes from `seq`
    params = [field.get_db_prep_save(field.pre_save(entry, True), connection) for field in fields]
    columns = ", ".join(connection.ops.quote_name(field.column) for field in fields)
    values = ", ".join(["%s"] * len(fields))
    sequence = JournalSequence._meta.db_table
    with connection.cursor() as cursor:
        cursor.execute(
            f"WITH seq AS (INSERT INTO {sequence} (patient_id, last_seq) VALUES (%s, 1) "  # noqa: S608 - model names
            f"ON CONFLICT (patient_id) DO UPDATE SET last_seq = {sequence}.last_seq + 1 RETURNING last_seq), "
            f"new AS (INSERT INTO {Entry._meta.db_table} ({columns}, change_seq) SELECT {values}, last_seq FROM seq "
            "ON CONFLICT DO NOTHING RETURNING patient_id, local_date, kind, craving, mood, anxiety, sleep_hours, "
            f"change_seq), counted AS ({ROLLUP_ADD_NEW_ENTRY} RETURNING 1) SELECT change_seq FROM new",
            [column_value(JournalSequence, "patient", entry.patient_id), *params],
        )
        row = cursor.fetchone()
    if row is None:
        return False
    entry.change_seq = row[0]
    mark_saved(entry)
    return True


def canonical(content: dict) -> dict:
    """The comparable form of an entry's client content: what "the same content" means."""
    sleep = content.get("sleep_hours")
    occurred_at = content.get("occurred_at")
    return {
        "kind": content.get("kind"),
        "occurred_at": occurred_at.astimezone(UTC).isoformat() if occurred_at else None,
        "craving": content.get("craving"),
        "mood": content.get("mood"),
        "anxiety": content.get("anxiety"),
        "sleep_hours": str(Decimal(sleep).quantize(Decimal("0.01"))) if sleep is not None else None,
        "substance": content.get("substance"),
        "amount": content.get("amount") or "",
        "triggers": list(content.get("triggers") or []),
        "coping": list(content.get("coping") or []),
        "note": content.get("note") or "",
        "prompt_id": str(content["prompt_id"]) if content.get("prompt_id") else None,
    }


def _stored_content(entry: Entry) -> dict:
    return {field: getattr(entry, field) for field in CLIENT_FIELDS}


def _set_content(entry: Entry, content: dict) -> None:
    for field in CLIENT_FIELDS:
        value = content.get(field)
        if field in ("amount", "note"):
            value = value or ""
        elif field in ("triggers", "coping"):
            value = list(value or [])
        setattr(entry, field, value)


def _received_late(entry: Entry) -> bool:
    # Received more than a day after it happened: the phone was offline. Kept, but marked late.
    return entry.received_at - entry.occurred_at > LATE_AFTER


def _answer_prompt(entry: Entry, patient: Patient) -> bool:
    """Completes the prompt the entry answers; an answer to one that had already expired is late
    (SPEC §5, §7). Returns True when that made the entry late.

    The handler locks the prompt's row: call this only under the patient's journal lock (see the
    module docstring)."""
    expired = any(hooks.prompt_answered.call(patient=patient, prompt_id=entry.prompt_id, answered_at=entry.occurred_at))
    if expired and not entry.late:
        entry.late = True
        return True
    return False


def _edit(entry: Entry, content: dict, *, patient: Patient) -> None:
    """Applies an edit's full content to a live entry. PATCH (its changes over the stored content)
    and a sync update both come here, so an edit means the same whichever way the phone sends it.

    - The journal day is computed once, at write time: only a new `occurred_at` moves the entry,
      then to its day in the patient's current zone. A note fixed after a move abroad leaves the
      entry, and that day's figures, where they were.
    - Naming a new prompt completes it, as a create does; an answer found late stays late.
    """
    occurred_at, prompt_id, was_late = entry.occurred_at, entry.prompt_id, entry.late
    _set_content(entry, content)
    if entry.occurred_at != occurred_at:
        entry.local_date, entry.local_hour = patient.journal_day(entry.occurred_at)
    entry.late = _received_late(entry)
    if entry.prompt_id and entry.prompt_id != prompt_id:
        _answer_prompt(entry, patient)
    elif entry.prompt_id:
        entry.late = entry.late or was_late


# Namespace of the ids the server makes for entries sent without one.
_SERVER_MADE_IDS = uuid.UUID("6f1f8a52-3f7b-4d0e-9a57-2a1c3b1f0e64")


def synced_entry_id(patient: Patient, content: dict) -> uuid.UUID:
    """A synced item's id: the phone's, or, when it sent none, one made from the patient and the
    content (SPEC §5: the server makes one). Made, not random, so that a replayed batch finds what
    its first try stored instead of storing it twice ("a replay creates nothing new"). Only for
    sync: a single POST without an id is a new entry even when its content repeats an earlier one
    that has since been edited, which a made id would turn into a 409."""
    if content.get("id"):
        return content["id"]
    made_of = json.dumps(canonical(content), sort_keys=True)
    return uuid.uuid5(_SERVER_MADE_IDS, f"{patient.pk}:{made_of}")


def _new_entry(*, patient: Patient, content: dict, entry_id, seq: int, now: datetime) -> Entry:
    """The entry to insert; the prompt it answers, if any, is the caller's to complete (under the
    journal lock)."""
    entry = Entry(
        id=entry_id,
        patient=patient,
        received_at=now,
        change_seq=seq,
        created_at=now,
        updated_at=now,
    )
    _set_content(entry, content)
    entry.local_date, entry.local_hour = patient.journal_day(entry.occurred_at)
    entry.late = _received_late(entry)
    return entry


def _revision_of(entry: Entry, now: datetime) -> EntryRevision:
    content = canonical(_stored_content(entry))
    note = content.pop("note")
    return EntryRevision(entry=entry, version=entry.version, content=content, note=note, replaced_at=now)


def _bump(entry: Entry, *, seq: int, now: datetime) -> None:
    entry.version += 1
    entry.change_seq = seq
    entry.updated_at = now


def _raise_if_invalid(content: dict, patient: Patient, now: datetime) -> None:
    messages, codes = content_errors(content, patient, now)
    if messages:
        raise as_validation_error(messages, codes)


def entry_create(*, patient: Patient, data: dict) -> tuple[Entry, bool, dict | None]:
    """Creates an entry; the same id with the same content again is a safe retry (created=False).

    Returns (entry, created, support). The same id with other content, a deleted entry's id or
    another patient's id is a 409.
    """
    try:
        return _entry_create(patient=patient, data=data)
    except IntegrityError:
        # Only another patient's concurrent insert of the same id gets here (this patient's writes
        # are serialised by the sequence row); the whole write rolled back, nothing is half-done.
        raise Conflict("This id is already taken.") from None


@transaction.atomic
def _entry_create(*, patient: Patient, data: dict) -> tuple[Entry, bool, dict | None]:
    now = timezone.now()
    # Insert first and look only when the id was taken: a new entry is the common case.
    entry = _new_entry(patient=patient, content=data, entry_id=data.get("id") or uuid.uuid4(), seq=0, now=now)
    if _entry_insert_counted(entry):
        # Only now, under the journal lock the insert took, may the prompt's row be locked (the
        # module docstring). The rare answer to an expired prompt costs one more UPDATE; a taken
        # id never reaches the prompt.
        if entry.prompt_id and _answer_prompt(entry, patient):
            Entry.objects.filter(pk=entry.pk).update(late=True)
        return entry, True, evaluate_writes(Written(patient=patient, entries=[entry]))
    existing = Entry.objects.filter(pk=entry.pk).first()
    if existing is None or existing.patient_id != patient.pk or existing.is_deleted:
        raise Conflict("This id is already taken.")
    if canonical(_stored_content(existing)) != canonical(data):
        raise Conflict("An entry with this id and other content exists.")
    return existing, False, support_for_retry(patient, entry_ids=[existing.pk])


def _own_live_entry(patient: Patient, entry_id) -> Entry:
    entry = Entry.objects.select_for_update().filter(pk=entry_id, patient=patient, deleted_at__isnull=True).first()
    if entry is None:
        raise NotFound()
    return entry


def _check_if_match(entry: Entry, if_match: int | None) -> None:
    if if_match is not None and if_match != entry.version:
        raise PreconditionFailed(f"The entry is at version {entry.version}.")


def entry_update(*, patient: Patient, entry_id, changes: dict, if_match: int | None) -> tuple[Entry, dict | None]:
    """Edits an entry: bumps its version and keeps the previous content as a revision."""
    now = timezone.now()
    with transaction.atomic():
        seq = sequence_allocate(patient.pk, 1)
        entry = _own_live_entry(patient, entry_id)
        _check_if_match(entry, if_match)
        merged = {**_stored_content(entry), **{k: v for k, v in changes.items() if k in CLIENT_FIELDS}}
        if canonical(merged) == canonical(_stored_content(entry)):
            return entry, None
        _raise_if_invalid(merged, patient, now)
        _revision_of(entry, now).save()
        old_day = entry.local_date
        _edit(entry, merged, patient=patient)
        _bump(entry, seq=seq, now=now)
        entry.save()
        rollups_refresh(patient_id=patient.pk, days=[old_day, entry.local_date], days_may_empty=True)
        support = evaluate_writes(Written(patient=patient, entries=[entry]))
    return entry, support


def entry_delete(*, patient: Patient, entry_id, if_match: int | None) -> None:
    """Leaves a tombstone: out of every figure, still in the changes feed for other devices."""
    now = timezone.now()
    with transaction.atomic():
        seq = sequence_allocate(patient.pk, 1)
        entry = _own_live_entry(patient, entry_id)
        _check_if_match(entry, if_match)
        entry.deleted_at = now
        _bump(entry, seq=seq, now=now)
        entry.save(update_fields=["deleted_at", "version", "change_seq", "updated_at"])
        rollups_refresh(patient_id=patient.pk, days=[entry.local_date], days_may_empty=True)


def entries_sync(*, patient: Patient, items: list[dict]) -> dict:
    """An offline batch (SPEC §5): one transaction, bulk writes, a status per item.

    `items` are validated items ({"data": {...}} with their internal values, or {"errors": ...}).
    A replay of the same batch creates nothing new: every item comes back `unchanged`.
    """
    for attempt in range(2):
        try:
            return _sync_once(patient=patient, items=items)
        except IntegrityError:
            # Another patient inserted one of these ids at the same instant; re-read and retry once.
            if attempt:
                raise
    raise AssertionError("unreachable")


def _sync_once(*, patient: Patient, items: list[dict]) -> dict:
    now = timezone.now()
    results: list[dict] = []
    creates: list[Entry] = []
    updates: list[Entry] = []
    revisions: list[EntryRevision] = []
    days_left: list = []  # journal days that updates moved entries away from
    with transaction.atomic():
        valid = [item["data"] for item in items if "data" in item]
        last_seq = sequence_allocate(patient.pk, max(len(valid), 1))
        next_seq = iter(range(last_seq - len(valid) + 1, last_seq + 1))
        ids = [synced_entry_id(patient, data) for data in valid]  # the valid items' ids, in order
        existing = {entry.id: entry for entry in Entry.objects.filter(pk__in=ids)} if ids else {}
        id_of_next_valid_item = iter(ids)
        seen_in_batch: dict = {}
        for item in items:
            if "errors" in item:
                results.append({"id": item.get("id"), "status": "invalid", "version": None, "errors": item["errors"]})
                continue
            data = item["data"]
            entry_id = next(id_of_next_valid_item)
            if entry_id in seen_in_batch:
                first = seen_in_batch[entry_id]
                same = canonical(_stored_content(first)) == canonical(data)
                results.append(
                    {"id": entry_id, "status": "unchanged" if same else "conflict", "version": first.version}
                )
                continue
            entry = existing.get(entry_id)
            if entry is None:
                entry = _new_entry(patient=patient, content=data, entry_id=entry_id, seq=next(next_seq), now=now)
                if entry.prompt_id:
                    _answer_prompt(entry, patient)
                creates.append(entry)
                status = "created"
            elif entry.patient_id != patient.pk:
                results.append({"id": entry_id, "status": "conflict", "version": None})
                continue
            elif entry.is_deleted:
                status = "conflict"
            elif canonical(_stored_content(entry)) == canonical(data):
                status = "unchanged"
            elif data.get("base_version") == entry.version:
                revisions.append(_revision_of(entry, now))
                days_left.append(entry.local_date)
                _edit(entry, data, patient=patient)
                _bump(entry, seq=next(next_seq), now=now)
                updates.append(entry)
                status = "updated"
            else:
                status = "conflict"
            seen_in_batch[entry_id] = entry
            results.append({"id": entry_id, "status": status, "version": entry.version})
        if creates:
            Entry.objects.bulk_create(creates)
        if updates:
            Entry.objects.bulk_update(updates, [*CLIENT_FIELDS, "local_date", "local_hour", "late", "version",
                                                "change_seq", "updated_at"])  # fmt: skip
        if revisions:
            EntryRevision.objects.bulk_create(revisions)
        rollups_refresh(
            patient_id=patient.pk,
            days=[*days_left, *(entry.local_date for entry in (*creates, *updates))],
            days_may_empty=bool(days_left),
        )
        replayed = [result["id"] for result in results if result["status"] == "unchanged"]
        support = (
            evaluate_writes(Written(patient=patient, entries=[*creates, *updates]), replayed_entry_ids=replayed)
            if creates or updates or replayed
            else None
        )
    response = {"results": results, "server_time": now}
    if support:
        response["support"] = support
    return response
