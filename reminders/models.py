"""Schedules say when to remind; each reminder they produce is a Prompt row (SPEC §7).

The database is the source of truth for every pending send: the sweeper claims due prompts by
`next_attempt_at` (indexed, partial on status='scheduled'), a delivery task re-claims its prompt
with a lease before sending, and a retry is a new `next_attempt_at`, never a long Celery ETA.
"""

import uuid

from django.conf import settings
from django.db import models
from django.db.models import Q

from accounts.models import Patient
from journal.models import Instrument, TherapySession

WEEKDAYS = ("mon", "tue", "wed", "thu", "fri", "sat", "sun")


class ScheduleKind(models.TextChoices):
    CHECK_IN = "check_in"
    ASSESSMENT = "assessment"
    CUSTOM = "custom"


class Schedule(models.Model):
    """When to remind one patient: a fixed local time or a window (a random time inside it each
    day), on some weekdays. Times are the patient's wall-clock time.

    Deleting a schedule keeps the row (`deleted_at`, disabled): its past prompts are the patient's
    compliance history, which a later deletion must not rewrite. A deleted schedule is invisible
    to the API and, being disabled, never planned again."""

    id = models.UUIDField(primary_key=True, default=uuid.uuid4, editable=False)
    patient = models.ForeignKey(Patient, on_delete=models.CASCADE, related_name="schedules")
    kind = models.CharField(max_length=16, choices=ScheduleKind.choices)
    instrument = models.CharField(max_length=8, choices=Instrument.choices, null=True, blank=True)
    message = models.CharField(max_length=200, blank=True, default="")
    days = models.JSONField(default=list)  # weekday codes from WEEKDAYS; stored in full, never empty
    time = models.TimeField(null=True, blank=True)
    window_start = models.TimeField(null=True, blank=True)
    window_end = models.TimeField(null=True, blank=True)
    expires_after_minutes = models.PositiveSmallIntegerField(default=120)
    enabled = models.BooleanField(default=True)
    created_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.SET_NULL, null=True, blank=True, related_name="+"
    )
    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)
    deleted_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        constraints = [
            models.CheckConstraint(condition=Q(kind__in=ScheduleKind.values), name="schedule_kind_valid"),
            # Planning reads `enabled=True` only; this keeps a deleted schedule out of it for good.
            models.CheckConstraint(
                condition=Q(deleted_at__isnull=True) | Q(enabled=False), name="schedule_deleted_is_disabled"
            ),
            models.CheckConstraint(
                condition=Q(time__isnull=False, window_start__isnull=True, window_end__isnull=True)
                | Q(time__isnull=True, window_start__isnull=False, window_end__isnull=False),
                name="schedule_time_xor_window",
            ),
            models.CheckConstraint(
                condition=~Q(kind=ScheduleKind.ASSESSMENT) | Q(instrument__isnull=False),
                name="schedule_assessment_has_instrument",
            ),
            models.CheckConstraint(
                condition=Q(expires_after_minutes__gte=15, expires_after_minutes__lte=1440),
                name="schedule_expiry_15_1440",
            ),
        ]


class PromptKind(models.TextChoices):
    CHECK_IN = "check_in"
    ASSESSMENT = "assessment"
    CUSTOM = "custom"
    CRAVING_CHECK = "craving_check"  # intensive sampling after a ketamine session


class PromptStatus(models.TextChoices):
    SCHEDULED = "scheduled"
    SKIPPED = "skipped"
    SENT = "sent"
    RECEIVED = "received"
    COMPLETED = "completed"
    EXPIRED = "expired"
    FAILED = "failed"


class Prompt(models.Model):
    """One reminder, unique per source (a schedule or a ketamine session), journal day and slot.

    Its source is PROTECTed: schedules and sessions are soft-deleted, so what was sent and
    answered stays in the compliance history."""

    id = models.UUIDField(primary_key=True, default=uuid.uuid4, editable=False)
    patient = models.ForeignKey(Patient, on_delete=models.CASCADE, related_name="prompts")
    schedule = models.ForeignKey(Schedule, on_delete=models.PROTECT, null=True, blank=True, related_name="prompts")
    session = models.ForeignKey(TherapySession, on_delete=models.PROTECT, null=True, blank=True, related_name="prompts")
    kind = models.CharField(max_length=16, choices=PromptKind.choices)
    instrument = models.CharField(max_length=8, choices=Instrument.choices, null=True, blank=True)
    message = models.CharField(max_length=200, blank=True, default="")
    local_date = models.DateField()
    slot = models.PositiveSmallIntegerField(default=0)
    scheduled_for = models.DateTimeField()
    expires_at = models.DateTimeField()
    status = models.CharField(max_length=16, choices=PromptStatus.choices, default=PromptStatus.SCHEDULED)
    skip_reason = models.CharField(max_length=32, blank=True, default="")
    # Delivery bookkeeping: the sweeper's due-time column, the lease a sender holds, attempts so far.
    next_attempt_at = models.DateTimeField()
    lease_owner = models.CharField(max_length=64, blank=True, default="")
    lease_until = models.DateTimeField(null=True, blank=True)
    attempts = models.PositiveSmallIntegerField(default=0)
    last_error = models.CharField(max_length=200, blank=True, default="")
    channel = models.CharField(max_length=8, blank=True, default="")  # push or email, once sent
    sent_at = models.DateTimeField(null=True, blank=True)
    received_at = models.DateTimeField(null=True, blank=True)
    completed_at = models.DateTimeField(null=True, blank=True)
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        constraints = [
            models.CheckConstraint(condition=Q(status__in=PromptStatus.values), name="prompt_status_valid"),
            models.CheckConstraint(
                condition=Q(schedule__isnull=False, session__isnull=True)
                | Q(schedule__isnull=True, session__isnull=False),
                name="prompt_one_source",
            ),
            models.UniqueConstraint(
                fields=["schedule", "local_date", "slot"],
                condition=Q(schedule__isnull=False),
                name="prompt_once_per_schedule_day_slot",
            ),
            models.UniqueConstraint(
                fields=["session", "local_date", "slot"],
                condition=Q(session__isnull=False),
                name="prompt_once_per_session_day_slot",
            ),
        ]
        indexes = [
            # The sweeper's query: due, still to send. Partial, so it stays small however many
            # prompts history holds.
            models.Index(fields=["next_attempt_at"], condition=Q(status="scheduled"), name="prompt_due"),
            # The expiry sweep: sent but unanswered prompts whose time is up.
            models.Index(fields=["expires_at"], condition=Q(status__in=["sent", "received"]), name="prompt_open"),
            # /metrics counts failed deliveries at every scrape: without it, a scan of all history.
            models.Index(fields=["id"], condition=Q(status="failed"), name="prompt_failed"),
            models.Index(fields=["patient", "status", "-scheduled_for"], name="prompt_inbox"),
            models.Index(fields=["patient", "local_date"], name="prompt_patient_day"),
        ]


class Platform(models.TextChoices):
    ANDROID = "android"
    IOS = "ios"


class Device(models.Model):
    """A phone that can receive pushes: a patient's, or a clinician's (for alert notifications)."""

    id = models.UUIDField(primary_key=True, default=uuid.uuid4, editable=False)
    user = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="devices")
    platform = models.CharField(max_length=8, choices=Platform.choices)
    token = models.CharField(max_length=512, unique=True)
    active = models.BooleanField(default=True)
    deactivated_reason = models.CharField(max_length=32, blank=True, default="")
    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        indexes = [models.Index(fields=["user"], condition=Q(active=True), name="device_active_by_user")]


class NotificationChannel(models.TextChoices):
    EMAIL = "email"
    PUSH = "push"


class NotificationStatus(models.TextChoices):
    SCHEDULED = "scheduled"
    SENT = "sent"
    CANCELLED = "cancelled"  # the alert was acknowledged or resolved before this round was due
    FAILED = "failed"  # nowhere to send (no email address, no active device) or retries ran out


class AlertNotification(models.Model):
    """One message about an alert to one clinician on one channel, in one round (SPEC §9).

    Written in the transaction that opens the alert, so a notification exists even when Redis is
    down; sent like a prompt (claimed by the sweeper over `next_attempt_at`, leased while sending).
    Urgent alerts get rounds 0–3 at 0/15/30/45 minutes, sent only while the alert is unacknowledged;
    clinic admins get the later rounds (or every round when the care team is empty). Rounds from 4
    on are renewals: an urgent trigger on an acknowledged alert, sent until it is resolved.
    """

    id = models.UUIDField(primary_key=True, default=uuid.uuid4, editable=False)
    alert = models.ForeignKey("journal.Alert", on_delete=models.CASCADE, related_name="notifications")
    recipient = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="+")
    channel = models.CharField(max_length=8, choices=NotificationChannel.choices)
    round = models.PositiveSmallIntegerField()
    escalation = models.BooleanField(default=False)  # to a clinic admin, not the care team
    due_at = models.DateTimeField()
    status = models.CharField(max_length=16, choices=NotificationStatus.choices, default=NotificationStatus.SCHEDULED)
    next_attempt_at = models.DateTimeField()
    lease_owner = models.CharField(max_length=64, blank=True, default="")
    lease_until = models.DateTimeField(null=True, blank=True)
    attempts = models.PositiveSmallIntegerField(default=0)
    last_error = models.CharField(max_length=200, blank=True, default="")
    sent_at = models.DateTimeField(null=True, blank=True)
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        constraints = [
            models.CheckConstraint(
                condition=Q(status__in=NotificationStatus.values), name="alert_notification_status_valid"
            ),
            models.CheckConstraint(
                condition=Q(channel__in=NotificationChannel.values), name="alert_notification_channel"
            ),
            models.UniqueConstraint(
                fields=["alert", "recipient", "channel", "round"], name="alert_notification_once_per_round"
            ),
        ]
        indexes = [
            models.Index(fields=["next_attempt_at"], condition=Q(status="scheduled"), name="alert_notification_due"),
        ]
