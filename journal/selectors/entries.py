from django.db.models import QuerySet

from accounts.models import Patient
from journal.models import Entry, EntryRevision


def entries_of(patient: Patient, *, from_date=None, to_date=None, kind=None) -> QuerySet[Entry]:
    """A patient's live entries (tombstones excluded), filtered by journal day and kind."""
    queryset = Entry.objects.filter(patient=patient, deleted_at__isnull=True)
    if from_date:
        queryset = queryset.filter(local_date__gte=from_date)
    if to_date:
        queryset = queryset.filter(local_date__lte=to_date)
    if kind:
        queryset = queryset.filter(kind=kind)
    return queryset


def entry_of(patient: Patient, entry_id) -> Entry | None:
    return Entry.objects.filter(patient=patient, pk=entry_id, deleted_at__isnull=True).first()


def changes_since(patient: Patient, after_seq: int, *, limit: int) -> tuple[list[Entry], bool]:
    """This patient's changes after `after_seq` in commit order (tombstones included)."""
    rows = list(Entry.objects.filter(patient=patient, change_seq__gt=after_seq).order_by("change_seq")[: limit + 1])
    return rows[:limit], len(rows) > limit


def revisions_of(entry: Entry) -> QuerySet[EntryRevision]:
    return entry.revisions.order_by("-version")
