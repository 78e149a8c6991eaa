import uuid

from django.db import models
from django.db.models import Q

from accounts.models import SUBSTANCES, Patient
from backend.encryption import EncryptedTextField

TRIGGERS = (
    "stress",
    "conflict",
    "loneliness",
    "boredom",
    "celebration",
    "social_pressure",
    "cue_exposure",
    "negative_mood",
    "physical_pain",
    "fatigue",
    "hunger",
    "other",
)
COPING = (
    "reached_out",
    "exercise",
    "mindfulness",
    "distraction",
    "delay",
    "medication",
    "therapy_skill",
    "support_meeting",
    "other",
)


class EntryKind(models.TextChoices):
    CHECK_IN = "check_in"
    CRAVING = "craving"
    USE = "use"


def _scale(field: str) -> Q:
    return Q(**{f"{field}__isnull": True}) | Q(**{f"{field}__gte": 0, f"{field}__lte": 10})


class Entry(models.Model):
    """One moment of a patient's day (SPEC §5). The phone makes the id, so retries are safe.

    `local_date` and `local_hour` are computed once, at write time, in the patient's zone; an edit
    recomputes them, in the patient's zone at that time, only when it changes `occurred_at`.
    A deleted entry stays as a tombstone (`deleted_at`) so the changes feed can tell other devices.
    `change_seq` orders this patient's changes in commit order (see JournalSequence).
    """

    id = models.UUIDField(primary_key=True, default=uuid.uuid4)
    patient = models.ForeignKey(Patient, on_delete=models.PROTECT, related_name="entries")
    kind = models.CharField(max_length=16, choices=EntryKind.choices)
    occurred_at = models.DateTimeField()
    local_date = models.DateField()
    local_hour = models.PositiveSmallIntegerField()
    craving = models.PositiveSmallIntegerField(null=True, blank=True)
    mood = models.PositiveSmallIntegerField(null=True, blank=True)
    anxiety = models.PositiveSmallIntegerField(null=True, blank=True)
    sleep_hours = models.DecimalField(max_digits=4, decimal_places=2, null=True, blank=True)
    substance = models.CharField(max_length=16, null=True, blank=True)
    amount = models.CharField(max_length=100, blank=True, default="")
    triggers = models.JSONField(default=list, blank=True)
    coping = models.JSONField(default=list, blank=True)
    note = EncryptedTextField(blank=True, default="")
    prompt_id = models.UUIDField(null=True, blank=True)
    received_at = models.DateTimeField()
    late = models.BooleanField(default=False)
    version = models.PositiveIntegerField(default=1)
    change_seq = models.BigIntegerField()
    deleted_at = models.DateTimeField(null=True, blank=True)
    created_at = models.DateTimeField()
    updated_at = models.DateTimeField()

    class Meta:
        constraints = [
            models.CheckConstraint(condition=Q(kind__in=EntryKind.values), name="entry_kind_valid"),
            models.CheckConstraint(condition=_scale("craving"), name="entry_craving_0_10"),
            models.CheckConstraint(condition=_scale("mood"), name="entry_mood_0_10"),
            models.CheckConstraint(condition=_scale("anxiety"), name="entry_anxiety_0_10"),
            models.CheckConstraint(
                condition=Q(sleep_hours__isnull=True) | Q(sleep_hours__gte=0, sleep_hours__lte=24),
                name="entry_sleep_0_24",
            ),
            models.CheckConstraint(
                condition=Q(substance__isnull=True) | Q(substance__in=SUBSTANCES), name="entry_substance_valid"
            ),
            models.CheckConstraint(condition=Q(local_hour__lte=23), name="entry_local_hour_0_23"),
            models.CheckConstraint(
                condition=~Q(kind=EntryKind.CHECK_IN) | Q(craving__isnull=False, mood__isnull=False),
                name="entry_check_in_has_craving_and_mood",
            ),
            models.CheckConstraint(
                condition=~Q(kind=EntryKind.CRAVING) | Q(craving__isnull=False), name="entry_craving_has_craving"
            ),
            models.CheckConstraint(
                condition=~Q(kind=EntryKind.USE) | Q(substance__isnull=False), name="entry_use_has_substance"
            ),
            models.CheckConstraint(condition=Q(version__gte=1), name="entry_version_positive"),
            models.UniqueConstraint(fields=["patient", "change_seq"], name="entry_change_seq_unique"),
        ]
        indexes = [
            models.Index(fields=["patient", "local_date"], name="entry_patient_day"),
            models.Index(fields=["patient", "-occurred_at"], name="entry_patient_recent"),
        ]

    def __str__(self) -> str:
        return f"{self.kind} {self.occurred_at:%Y-%m-%d %H:%M}"

    @property
    def edited(self) -> bool:
        return self.version > 1  # every edit bumps the version and keeps a revision

    @property
    def is_deleted(self) -> bool:
        return self.deleted_at is not None


class EntryRevision(models.Model):
    """The content an entry had before an edit: clinicians can read what changed."""

    entry = models.ForeignKey(Entry, on_delete=models.CASCADE, related_name="revisions")
    version = models.PositiveIntegerField()
    content = models.JSONField()  # every client field but the note
    note = EncryptedTextField(blank=True, default="")
    replaced_at = models.DateTimeField()

    class Meta:
        constraints = [models.UniqueConstraint(fields=["entry", "version"], name="entry_revision_once_per_version")]


class JournalSequence(models.Model):
    """Per-patient change counter. Every journal write bumps it with one UPDATE … RETURNING, which
    holds the row lock until commit: a patient's writes get sequence numbers in commit order, so a
    changes-feed reader that saw number N can never later find an uncommitted N-1 appearing."""

    patient = models.OneToOneField(Patient, on_delete=models.CASCADE, primary_key=True, related_name="+")
    last_seq = models.BigIntegerField(default=0)
