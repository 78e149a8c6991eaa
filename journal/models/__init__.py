from journal.models.assessments import Assessment, Instrument
from journal.models.entries import COPING, TRIGGERS, Entry, EntryKind, EntryRevision, JournalSequence
from journal.models.sessions import KetamineRoute, SessionKind, TherapySession

__all__ = [
    "COPING",
    "TRIGGERS",
    "Assessment",
    "Entry",
    "EntryKind",
    "EntryRevision",
    "Instrument",
    "JournalSequence",
    "KetamineRoute",
    "SessionKind",
    "TherapySession",
]
