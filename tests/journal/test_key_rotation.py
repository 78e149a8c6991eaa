from datetime import UTC, date, datetime
from io import StringIO

import pytest
from cryptography.fernet import Fernet
from django.core.management import CommandError, call_command
from django.db import connection

from backend.encryption import decrypt, encrypt
from journal.models import Entry, EntryRevision, TherapySession
from journal.services.sessions import session_create

pytestmark = pytest.mark.django_db

SESSION_NOTE = "Spoke about the relapse after the wedding."
ENTRY_NOTE = "Walked past the old bar and kept going."


def _key() -> str:
    return Fernet.generate_key().decode()


def _raw(table: str, column: str) -> list[str]:
    with connection.cursor() as cursor:
        cursor.execute(f"SELECT {column} FROM {table} ORDER BY {column}")
        return [value for (value,) in cursor.fetchall()]


def _rotate(*args) -> tuple[str, str]:
    out, err = StringIO(), StringIO()
    call_command("rotate_encryption_keys", *args, stdout=out, stderr=err)
    return out.getvalue(), err.getvalue()


def _entry(patient, note: str, seq: int) -> Entry:
    moment = datetime(2026, 3, 10, 14, seq, tzinfo=UTC)
    return Entry.objects.create(
        patient=patient,
        kind="craving",
        craving=4,
        occurred_at=moment,
        local_date=date(2026, 3, 10),
        local_hour=10,
        received_at=moment,
        change_seq=seq,
        created_at=moment,
        updated_at=moment,
        note=note,
    )


@pytest.fixture
def old_key(settings) -> str:
    key = _key()
    settings.FIELD_ENCRYPTION_KEYS = [key]
    return key


@pytest.fixture
def notes_under_old_key(cast, old_key):
    data = {"kind": "integration", "starts_at": datetime(2026, 3, 10, 15, tzinfo=UTC), "duration_minutes": 60}
    session = session_create(patient=cast.patient, created_by=cast.clinician, data={**data, "notes": SESSION_NOTE})
    entry = _entry(cast.patient, ENTRY_NOTE, seq=1)
    _entry(cast.patient, "", seq=2)  # no note: stays empty, is not counted
    EntryRevision.objects.create(
        entry=entry, version=1, content={}, note="An earlier wording.", replaced_at=entry.created_at
    )
    return session, entry


def test_rotation_rewrites_every_encrypted_column_under_the_newest_key(settings, old_key, notes_under_old_key):
    session, entry = notes_under_old_key
    before = {
        "session": _raw("journal_therapysession", "notes"),
        "entry": _raw("journal_entry", "note"),
        "revision": _raw("journal_entryrevision", "note"),
    }
    new_key = _key()
    settings.FIELD_ENCRYPTION_KEYS = [new_key, old_key]

    out, _ = _rotate()

    assert "journal.TherapySession (notes): 1 re-encrypted, 0 already under the newest key, 0 unreadable" in out
    assert "journal.Entry (note): 1 re-encrypted" in out
    assert "journal.EntryRevision (note): 1 re-encrypted" in out
    after = {
        "session": _raw("journal_therapysession", "notes"),
        "entry": _raw("journal_entry", "note"),
        "revision": _raw("journal_entryrevision", "note"),
    }
    assert after["entry"][0] == ""
    for name in before:
        assert after[name] != before[name]
    settings.FIELD_ENCRYPTION_KEYS = [new_key]  # the old key is gone: everything still reads
    assert decrypt(after["session"][0]) == SESSION_NOTE
    assert decrypt(after["entry"][1]) == ENTRY_NOTE
    assert TherapySession.objects.get(pk=session.pk).notes == SESSION_NOTE
    assert Entry.objects.get(pk=entry.pk).note == ENTRY_NOTE
    assert EntryRevision.objects.get().note == "An earlier wording."


def test_rotation_never_prints_a_note_and_shows_progress(settings, old_key, notes_under_old_key):
    settings.FIELD_ENCRYPTION_KEYS = [_key(), old_key]
    out, err = _rotate()
    assert "journal.TherapySession: 100%" in err
    for text in (SESSION_NOTE, ENTRY_NOTE, "fernet:"):
        assert text not in out
        assert text not in err


def test_running_it_again_rotates_nothing(settings, old_key, notes_under_old_key):
    settings.FIELD_ENCRYPTION_KEYS = [_key(), old_key]
    _rotate()
    rotated = _raw("journal_therapysession", "notes") + _raw("journal_entry", "note")

    out, _ = _rotate()

    assert "journal.TherapySession (notes): 0 re-encrypted, 1 already under the newest key" in out
    assert "journal.Entry (note): 0 re-encrypted, 1 already under the newest key" in out
    assert _raw("journal_therapysession", "notes") + _raw("journal_entry", "note") == rotated


def test_an_interrupted_run_is_finished_by_the_next(settings, cast, old_key):
    for seq in range(1, 8):
        _entry(cast.patient, f"note {seq}", seq=seq)
    new_key = _key()
    settings.FIELD_ENCRYPTION_KEYS = [new_key, old_key]
    # Half the rows rotated (as by a run that died), half not: the next run finishes the rest.
    with connection.cursor() as cursor:
        cursor.execute("SELECT id, note FROM journal_entry ORDER BY id LIMIT 3")
        for pk, stored in cursor.fetchall():
            cursor.execute("UPDATE journal_entry SET note = %s WHERE id = %s", [encrypt(decrypt(stored)), pk])

    out, _ = _rotate("--batch-size", "2")

    assert "journal.Entry (note): 4 re-encrypted, 3 already under the newest key, 0 unreadable" in out
    settings.FIELD_ENCRYPTION_KEYS = [new_key]
    assert sorted(e.note for e in Entry.objects.all()) == [f"note {seq}" for seq in range(1, 8)]


def test_a_value_no_key_decrypts_is_left_alone_and_reported(settings, cast, old_key):
    _entry(cast.patient, "readable", seq=1)
    lost = _entry(cast.patient, "soon unreadable", seq=2)
    settings.FIELD_ENCRYPTION_KEYS = [_key()]
    orphan = encrypt("written under a key nobody kept")
    with connection.cursor() as cursor:
        cursor.execute("UPDATE journal_entry SET note = %s WHERE id = %s", [orphan, lost.pk])
    new_key = _key()
    settings.FIELD_ENCRYPTION_KEYS = [new_key, old_key]

    with pytest.raises(CommandError, match="1 values could not be decrypted"):
        _rotate()

    settings.FIELD_ENCRYPTION_KEYS = [new_key]
    assert Entry.objects.get(change_seq=1).note == "readable"
    with connection.cursor() as cursor:
        cursor.execute("SELECT note FROM journal_entry WHERE id = %s", [lost.pk])
        assert cursor.fetchone()[0] == orphan


def test_only_encrypted_columns_are_touched(settings, old_key, notes_under_old_key):
    session, entry = notes_under_old_key
    stamps = (TherapySession.objects.get().updated_at, Entry.objects.get(pk=entry.pk).updated_at)
    settings.FIELD_ENCRYPTION_KEYS = [_key(), old_key]
    _rotate()
    assert (TherapySession.objects.get().updated_at, Entry.objects.get(pk=entry.pk).updated_at) == stamps
    assert Entry.objects.get(pk=entry.pk).version == 1
