"""Telling the care team about an alert (SPEC §9): written with the alert, sent like a prompt.

- When journal opens a new alert it calls the `alert_opened` hook; the handler
  (alert_notifications_hooks) writes one AlertNotification row per recipient, channel and round in
  that same transaction, so the rows exist even when Redis is down, then kicks round 0 after commit.
- Recipients: the patient's care team (active clinicians), by email and, when they have an active
  phone, by push. An urgent alert has rounds at 0, 15, 30 and 45 minutes; the clinic's admins get
  the rounds from 15 minutes on. When the care team is empty the admins get every round, whatever
  the severity: an alert must reach someone.
- Sending follows prompts' delivery (services/delivery.py, whose leasing helpers this shares): the
  sweeper claims due rows by `next_attempt_at` over the partial index and publishes them, urgent
  ones on their own queue; a send re-claims its row with a lease and writes the outcome only while
  it still holds it, so none is sent twice and none is lost when a message is.
- A round is sent only while the alert is open: acknowledging or resolving it cancels what is left
  (renewals, below, go out while it is acknowledged too).
- An urgent trigger that adds evidence to an unresolved alert whose rounds are over (it was
  acknowledged, or its 45 minutes have passed) gets one more round, due at once: a renewal,
  numbered after the opening's rounds, to the care team (and the admins while nobody has
  acknowledged it), sent while the alert is unresolved. Resolving cancels it.
- Due rounds that a sweep finds behind a later due round of the same recipient and channel (an
  outage, a lost kick) are superseded, not sent: one message per recipient and channel, the latest.
- The text says nothing about the patient or the alert (no name, rule or severity): a subject line
  and a lock screen are read by others. It only says that someone needs attention, and links to the
  dashboard's alert inbox — or, for a clinic admin, who reads no journal (SPEC §1), to the
  patient's care team in the admin, where they can act.
"""

import logging
import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime, timedelta
from functools import partial

from django.conf import settings
from django.db.models import Exists, Max, OuterRef, Q, QuerySet, Subquery
from django.utils import timezone

from accounts.models import CareTeamMembership, Patient, Role, User
from journal.models import Alert, AlertSeverity, AlertStatus
from reminders.models import AlertNotification, Device, NotificationChannel, NotificationStatus
from reminders.services.delivery import (
    SWEEP_TIME_BUDGET_SECONDS,
    SweepResult,
    claimed_publish,
    not_held,
    not_leased,
    outcome_record,
    publish_lease_release,
    publish_lease_take,
    push_to_devices,
    retry_delay_seconds,
    send_claim,
    send_deadline,
    send_lease,
    skip_locked,
)
from reminders.transports import email as email_transport
from reminders.transports import fcm

logger = logging.getLogger(__name__)

URGENT_ROUNDS = 4  # at 0, 15, 30 and 45 minutes
ROUND_INTERVAL = timedelta(minutes=15)
ESCALATION_FROM_ROUND = 1  # clinic admins hear of an urgent alert still open after 15 minutes
# Rounds from here on are renewals: written when an urgent trigger adds evidence to an acknowledged
# alert, and sent until it is resolved (an opening's rounds stop at the acknowledgement).
FIRST_RENEWAL_ROUND = URGENT_ROUNDS
MAX_ATTEMPTS = 6  # with the shared backoff, up to about a quarter of an hour of retrying
SWEEP_BATCH = 500

EMAIL_SUBJECT = "Interlude: a patient needs your attention"
PUSH_TITLE = "Interlude"
PUSH_BODY = "A patient needs your attention"


# --- Writing the rows, in the transaction that opens the alert -----------------------------------


@dataclass(frozen=True)
class Recipient:
    user_id: uuid.UUID
    email: str
    on_care_team: bool  # otherwise a clinic admin
    has_device: bool

    @property
    def channels(self) -> list[str]:
        channels = [NotificationChannel.EMAIL] if self.email else []
        if self.has_device and fcm.push_enabled():
            channels.append(NotificationChannel.PUSH)
        return channels


def alert_recipients(alert: Alert) -> list[Recipient]:
    """The patient's care team and the clinic's admins, active clinicians only, in one query."""
    on_team = CareTeamMembership.objects.filter(patient_id=alert.patient_id, clinician_id=OuterRef("pk"))
    clinic_id = Subquery(Patient.objects.filter(pk=alert.patient_id).values("clinic_id")[:1])
    rows = (
        User.objects.filter(is_active=True, role=Role.CLINICIAN)
        .filter(Q(Exists(on_team)) | Q(clinic_id=clinic_id, is_clinic_admin=True))
        .annotate(
            on_care_team=Exists(on_team),
            has_device=Exists(Device.objects.filter(user_id=OuterRef("pk"), active=True)),
        )
        .order_by("pk")
        .values_list("pk", "email", "on_care_team", "has_device")
    )
    return [Recipient(*row) for row in rows]


def _rounds(severity: str) -> range:
    return range(URGENT_ROUNDS) if severity == AlertSeverity.URGENT else range(1)


def alert_notifications_create(*, alert: Alert, now: datetime | None = None) -> list[AlertNotification]:
    """Writes every notification the alert will need, each due at its round's time. Idempotent:
    a second call for the same alert adds nothing (the rows are unique per recipient, channel and
    round). Returns the rows it meant to write."""
    now = now or timezone.now()
    recipients = alert_recipients(alert)
    team = [r for r in recipients if r.on_care_team]
    admins = [r for r in recipients if not r.on_care_team]  # an admin on the care team is there already
    rounds = _rounds(alert.severity)
    plan = [(recipient, n, False) for recipient in team for n in rounds]
    if not team:
        plan += [(admin, n, True) for admin in admins for n in rounds]
    elif alert.severity == AlertSeverity.URGENT:
        plan += [(admin, n, True) for admin in admins for n in rounds if n >= ESCALATION_FROM_ROUND]
    return _rows_write(alert, plan, due_at=lambda n: now + n * ROUND_INTERVAL)


def alert_notifications_renew(*, alert: Alert, now: datetime | None = None) -> list[AlertNotification]:
    """One more round about an unresolved urgent alert that an urgent trigger added evidence to,
    due now, unless a round of it is still to go out (its first rounds are running, or a renewal
    waits): that one carries the news. To the care team; to the admins too while nobody has
    acknowledged it (SPEC §9), or when the team is empty. Numbered after the alert's last round, so
    each renewal is a new message, on a phone too. Returns the rows it meant to write."""
    now = now or timezone.now()
    if AlertNotification.objects.filter(alert=alert, status=NotificationStatus.SCHEDULED).exclude(MOOT).exists():
        return []
    last = AlertNotification.objects.filter(alert=alert).aggregate(last=Max("round"))["last"]
    n = max(FIRST_RENEWAL_ROUND, -1 if last is None else last + 1)
    recipients = alert_recipients(alert)
    team = [r for r in recipients if r.on_care_team]
    plan = [(recipient, n, False) for recipient in team]
    if not team or alert.status == AlertStatus.OPEN:
        plan += [(admin, n, True) for admin in recipients if not admin.on_care_team]
    return _rows_write(alert, plan, due_at=lambda _n: now)


def _rows_write(
    alert: Alert, plan: list[tuple[Recipient, int, bool]], *, due_at: Callable[[int], datetime]
) -> list[AlertNotification]:
    rows = [
        AlertNotification(
            alert=alert,
            recipient_id=recipient.user_id,
            channel=channel,
            round=n,
            escalation=escalation,
            due_at=due_at(n),
            next_attempt_at=due_at(n),
        )
        for recipient, n, escalation in plan
        for channel in recipient.channels
    ]
    if not rows:
        # No active care-team clinician or admin with an address: only the dashboard shows it.
        logger.error("alert %s: nobody to notify", alert.pk, extra={"event": "alert_unnotifiable"})
        return []
    AlertNotification.objects.bulk_create(rows, ignore_conflicts=True)
    return rows


# --- The sweeper ---------------------------------------------------------------------------------


@dataclass
class AlertSweepResult(SweepResult):
    cancelled: int = 0
    superseded: int = 0


# The rounds that must no longer go out (in SQL and for a loaded row): every round of a resolved
# alert, and an acknowledged alert's but for renewals. One rule for the sweeper and the send alike.
MOOT = Q(alert__status=AlertStatus.RESOLVED) | Q(alert__status=AlertStatus.ACKNOWLEDGED, round__lt=FIRST_RENEWAL_ROUND)


def _moot(notification: AlertNotification) -> bool:
    status = notification.alert.status
    return status == AlertStatus.RESOLVED or (
        status == AlertStatus.ACKNOWLEDGED and notification.round < FIRST_RENEWAL_ROUND
    )


def alert_notifications_cancel(*, now: datetime) -> int:
    """What is still to send about an alert someone acknowledged (but for renewals) or resolved is
    cancelled, due or not. The scheduled rows are few (the partial index holds only them). A row a
    send holds is left to that send, which cancels it itself when it sees the alert."""
    return (
        AlertNotification.objects.filter(not_held(now), status=NotificationStatus.SCHEDULED)
        .filter(MOOT)
        .update(status=NotificationStatus.CANCELLED, lease_owner="", lease_until=None)
    )


def alert_notifications_supersede(*, now: datetime) -> int:
    """A due round with a later round of the same recipient and channel also due is cancelled
    (`superseded`): after an outage or a lost kick the sweep would otherwise send rounds 0–3 at
    once, four identical messages. Only the latest goes out; it says the alert is still waiting.
    A row a send holds is left to it."""
    later_due = AlertNotification.objects.filter(
        alert_id=OuterRef("alert_id"),
        recipient_id=OuterRef("recipient_id"),
        channel=OuterRef("channel"),
        round__gt=OuterRef("round"),
        due_at__lte=now,
    )
    return (
        AlertNotification.objects.filter(not_held(now), status=NotificationStatus.SCHEDULED, next_attempt_at__lte=now)
        .filter(Exists(later_due))
        .update(status=NotificationStatus.CANCELLED, last_error="superseded", lease_owner="", lease_until=None)
    )


def alert_notifications_claimable(*, now: datetime, limit: int, urgent: bool) -> QuerySet:
    """The ids of due notifications that no one holds, of open alerts (or renewals of acknowledged
    ones), oldest due first, row-locked without waiting (this table's rows only: the alert stays
    free to be acknowledged). Read over the partial index `alert_notification_due`
    (next_attempt_at WHERE status = 'scheduled')."""
    due = AlertNotification.objects.filter(
        not_leased(now), status=NotificationStatus.SCHEDULED, next_attempt_at__lte=now
    ).exclude(MOOT)
    due = (
        due.filter(alert__severity=AlertSeverity.URGENT)
        if urgent
        else due.exclude(alert__severity=AlertSeverity.URGENT)
    )
    return skip_locked(due.order_by("next_attempt_at")).values_list("pk", flat=True)[:limit]


def _claim_batch(limit: int, *, now: datetime, urgent: bool, until: datetime) -> list:
    # The send lease, not the prompts' longer publish lease: alert notifications are few, and a lost
    # message must not hold back an urgent one for long.
    return publish_lease_take(
        AlertNotification, alert_notifications_claimable(now=now, limit=limit, urgent=urgent), until=until
    )


def alert_notifications_sweep(
    *,
    now: datetime,
    publish: Callable[..., bool],
    batch: int = SWEEP_BATCH,
    time_budget_seconds: float = SWEEP_TIME_BUDGET_SECONDS,
) -> AlertSweepResult:
    """One beat's sweep: cancel what an acknowledgement made moot and what a later due round
    supersedes, then claim and publish what is due, urgent alerts' notifications first.
    `publish(ids, urgent=…)` says whether the broker took them."""
    result = AlertSweepResult(
        cancelled=alert_notifications_cancel(now=now), superseded=alert_notifications_supersede(now=now)
    )
    lease_until = now + send_lease()
    deadline = time.monotonic() + time_budget_seconds
    for urgent in (True, False):
        published = claimed_publish(
            claim=partial(_claim_batch, now=now, urgent=urgent, until=lease_until),
            publish=partial(publish, urgent=urgent),
            release=partial(publish_lease_release, AlertNotification, lease_until=lease_until),
            batch=batch,
            deadline=deadline,
            result=result,
        )
        if not published:
            break
    return result


# --- One send ------------------------------------------------------------------------------------


def dashboard_link(alert_id) -> str:
    base = settings.PUBLIC_BASE_URL.rstrip("/")
    return f"{base}/dashboard/alerts/?alert={alert_id}" if base else "the alert inbox of the Interlude dashboard"


def care_team_link(patient_id) -> str:
    """Where a clinic admin manages the patient's care team (the Django admin's patient page)."""
    base = settings.PUBLIC_BASE_URL.rstrip("/")
    return f"{base}/admin/accounts/patient/{patient_id}/change/" if base else "the patient's page in Interlude's admin"


def email_body(notification: AlertNotification) -> str:
    if notification.escalation:
        # A clinic admin reads no journal (SPEC §1), so the alert inbox would show them nothing:
        # what they can do is reach the care team, or give the patient one.
        news = (
            "There is something new since it was acknowledged."
            if notification.round >= FIRST_RENEWAL_ROUND and notification.alert.status == AlertStatus.ACKNOWLEDGED
            else "Nobody on the patient's care team has acknowledged it yet, or the care team is empty."
        )
        return (
            f"Hello,\n\nA patient needs attention in Interlude. {news} As an administrator you cannot open"
            " it yourself: please reach the patient's care team, or add someone to it here:\n\n"
            f"{care_team_link(notification.alert.patient_id)}\n"
        )
    why = "You get this because you are on the patient's care team.\n"
    if notification.round >= FIRST_RENEWAL_ROUND and notification.alert.status == AlertStatus.ACKNOWLEDGED:
        why = f"There is something new since it was acknowledged. {why}"
    elif notification.round >= FIRST_RENEWAL_ROUND:
        why = f"It has not been acknowledged yet, and there is something new. {why}"
    elif notification.round > 0:
        why = f"It has not been acknowledged yet. {why}"
    return (
        "Hello,\n\n"
        "A patient needs your attention in Interlude. Sign in to see it in the alert inbox:\n\n"
        f"{dashboard_link(notification.alert_id)}\n\n"
        f"{why}"
    )


def collapse_key(notification: AlertNotification) -> str:
    """Per alert and round: a resend of one round replaces it on the phone, the next round does not."""
    return f"alert-{notification.alert_id}-{notification.round}"


def push_message(notification: AlertNotification, *, token: str) -> dict:
    return fcm.notification_message(
        token=token,
        title=PUSH_TITLE,
        body=PUSH_BODY,
        data={"kind": "alert", "alert_id": str(notification.alert_id), "round": str(notification.round)},
        collapse_key=collapse_key(notification),
    )


def _record(notification_id, *, owner: str, **fields) -> bool:
    return outcome_record(AlertNotification, notification_id, owner=owner, **fields)


def _still_a_recipient(notification: AlertNotification) -> bool:
    """Deactivated, or since taken off the care team (or the admins): the link would show them nothing."""
    recipient, patient = notification.recipient, notification.alert.patient
    if not recipient.is_active:
        return False
    if notification.escalation:
        return recipient.is_clinic_admin and recipient.clinic_id == patient.clinic_id
    return CareTeamMembership.objects.filter(patient=patient, clinician=recipient).exists()


def _retry_or_fail(
    notification: AlertNotification, *, owner: str, at: datetime, error: str, retry_after: float | None
) -> str:
    """Backs off like a prompt; gives up after MAX_ATTEMPTS, or when the retry would land once the
    next round of the same message is due (that round carries it)."""
    delay = retry_delay_seconds(attempts=notification.attempts, retry_after=retry_after)
    next_attempt_at = at + timedelta(seconds=delay)
    next_round_at = None
    if notification.alert.severity == AlertSeverity.URGENT and notification.round < URGENT_ROUNDS - 1:
        next_round_at = notification.due_at + ROUND_INTERVAL
    if notification.attempts >= MAX_ATTEMPTS or (next_round_at is not None and next_attempt_at >= next_round_at):
        _record(notification.pk, owner=owner, status=NotificationStatus.FAILED, last_error=error[:200])
        logger.warning(
            "alert notification %s: gave up (%s)", notification.pk, error, extra={"event": "alert_notification_failed"}
        )
        return "failed"
    _record(notification.pk, owner=owner, next_attempt_at=next_attempt_at, last_error=error[:200])
    return "retry"


def alert_notification_deliver(*, notification_id, owner: str, now: datetime | None = None) -> str:
    """Claims, checks the round is still to go out (not `MOOT`), sends, records; returns the outcome
    ("not_claimed", "cancelled", "sent", "retry" or "failed"). `owner` must be unique per attempt."""
    now = now or timezone.now()
    started = time.monotonic()  # the lease runs from `now`, so the deadline runs from here
    due = AlertNotification.objects.filter(
        pk=notification_id, status=NotificationStatus.SCHEDULED, next_attempt_at__lte=now
    )
    if not send_claim(due, owner=owner, now=now):
        return "not_claimed"

    def clock() -> datetime:  # `now` moved on by the time spent sending
        return now + timedelta(seconds=time.monotonic() - started)

    notification = AlertNotification.objects.select_related("alert__patient", "recipient").get(pk=notification_id)
    if _moot(notification):
        _record(notification.pk, owner=owner, status=NotificationStatus.CANCELLED)
        return "cancelled"
    if not _still_a_recipient(notification):
        _record(notification.pk, owner=owner, status=NotificationStatus.CANCELLED, last_error="recipient_gone")
        return "cancelled"

    if notification.channel == NotificationChannel.EMAIL:
        return _send_email(notification, owner=owner, clock=clock)
    return _send_push(notification, owner=owner, clock=clock, deadline=send_deadline(started))


def _send_email(notification: AlertNotification, *, owner: str, clock: Callable[[], datetime]) -> str:
    to = notification.recipient.email
    if not to:
        _record(notification.pk, owner=owner, status=NotificationStatus.FAILED, last_error="no_email")
        return "failed"
    try:
        email_transport.message_send(to=to, subject=EMAIL_SUBJECT, body=email_body(notification))
    except email_transport.EmailRefused as exc:
        _record(notification.pk, owner=owner, status=NotificationStatus.FAILED, last_error=f"email_{exc}"[:200])
        return "failed"
    except email_transport.EmailUnavailable as exc:
        return _retry_or_fail(notification, owner=owner, at=clock(), error=f"email_{exc}", retry_after=None)
    _record(notification.pk, owner=owner, status=NotificationStatus.SENT, sent_at=clock(), last_error="")
    return "sent"


def _send_push(notification: AlertNotification, *, owner: str, clock: Callable[[], datetime], deadline: float) -> str:
    if not fcm.push_enabled():
        _record(notification.pk, owner=owner, status=NotificationStatus.FAILED, last_error="push_disabled")
        return "failed"
    pushes = push_to_devices(
        user=notification.recipient,
        send=lambda token: fcm.message_send(push_message(notification, token=token), deadline=deadline),
        deadline=deadline,
    )
    if pushes.pushed:
        _record(notification.pk, owner=owner, status=NotificationStatus.SENT, sent_at=clock(), last_error="")
        return "sent"
    if pushes.retry is not None:
        retry = pushes.retry
        return _retry_or_fail(notification, owner=owner, at=clock(), error=retry.error, retry_after=retry.retry_after)
    # Every device was dropped (tokens FCM no longer knows) since the row was written.
    _record(notification.pk, owner=owner, status=NotificationStatus.FAILED, last_error="no_device")
    return "failed"
