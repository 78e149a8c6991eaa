from journal.models.alerts import SEVERITY_OF_RULE, Alert, AlertRule, AlertSeverity, AlertStatus
from journal.models.assessments import Assessment, Instrument
from journal.models.entries import COPING, TRIGGERS, Entry, EntryKind, EntryRevision, JournalSequence
from journal.models.rollups import DailyRollup
from journal.models.sessions import KetamineRoute, SessionKind, TherapySession

__all__ = [
    "SEVERITY_OF_RULE",
    "Alert",
    "AlertRule",
    "AlertSeverity",
    "AlertStatus",
    "DailyRollup",
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
