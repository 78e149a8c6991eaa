"""Sending prompts: each one once, and never lost (SPEC §7).

The prompt row is the only record of a pending send; Celery only makes it happen sooner.

- The sweeper (beat, every minute) expires prompts that were never sent in time, then claims due
  ones in batches with a short *publish lease* (`lease_until`, no owner) and publishes their ids.
  If the broker is down it releases the lease and stops; the next sweep claims them again.
- A delivery claims one prompt with a conditional UPDATE that names a unique *owner* and counts
  the attempt. Only the caller whose UPDATE changed one row sends, so a duplicated message, a
  second beat or a retried task finds nothing to do. Every outcome is written with
  `… WHERE lease_owner = <owner>`: a delivery that lost its lease (it stalled past it and another
  took over) changes nothing.
- A worker that dies mid-send leaves its lease behind; once it passes, the sweeper claims the
  prompt again. If it died after FCM accepted the message, the resend carries the same collapse key
  and replaces the first notification on the phone.
- A retry is a new `next_attempt_at` on the row (exponential backoff with jitter, FCM's
  Retry-After honoured), found by the next sweep: never a long Celery countdown.

Alert notifications (services/alert_notifications.py) are sent the same way: the leasing helpers
here take the model, since both rows carry the same bookkeeping columns (status, next_attempt_at,
lease_owner, lease_until, attempts).
"""

import logging
import random
import time
import uuid
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta

from django.conf import settings
from django.db import connection, models, transaction
from django.db.models import F, Q, QuerySet
from django.utils import timezone

from accounts.models import PatientStatus, User
from journal.models import Entry, EntryKind
from reminders import planning
from reminders.models import Device, Prompt, PromptKind, PromptStatus
from reminders.services.devices import device_deactivate
from reminders.transports import email as email_transport
from reminders.transports import fcm

logger = logging.getLogger(__name__)

PUBLISH_CHUNK = 100  # ids per delivery task
SWEEP_TIME_BUDGET_SECONDS = 45.0  # well inside beat's minute, so sweeps rarely overlap
RETRY_BASE_SECONDS = 30.0
RETRY_CAP_SECONDS = 15 * 60.0


# --- Leases, for any row that is sent like a prompt ----------------------------------------------------

SCHEDULED = "scheduled"  # the one status a sweeper claims, on prompts and alert notifications alike


def send_lease() -> timedelta:
    return timedelta(seconds=settings.PROMPT_SEND_LEASE_SECONDS)


# The share of its send lease a delivery may spend talking to Google (see send_deadline).
SEND_LEASE_USABLE = 0.8


def send_deadline(claimed: float) -> float:
    """The monotonic instant after which a delivery that took its `now` (so its lease) at
    `claimed` sends nothing more: no push starts, and requests to Google are cut short there.

    Once the lease has passed, the next sweep hands the row to another sender, which pushes it
    again; a slow FCM (FCM_TIMEOUT_SECONDS per device) or a hanging token endpoint could keep one
    delivery that long. What the deadline stops waits for a retry. The unused last fifth covers
    what it cannot stop: FCM finishing a request we gave up on, and the sweeper's wall clock
    running ahead of ours. A share rather than seconds, so a lease shorter than one FCM timeout
    (3 s in the worker tests) still leaves time to send."""
    return claimed + settings.PROMPT_SEND_LEASE_SECONDS * SEND_LEASE_USABLE


def prompt_publish_lease() -> timedelta:
    """How long a published prompt waits for a worker before the sweeper publishes it again.

    Longer than the send lease: under a backlog (100,000 prompts due in one minute take minutes to
    drain), a 60 s lease had every sweep re-publish the whole queue, three times the work for
    nothing. Only a message the broker lost after accepting it waits this long."""
    return timedelta(seconds=settings.PROMPT_PUBLISH_LEASE_SECONDS)


def not_held(now: datetime) -> Q:
    """No delivery holds the row: no owner (at most the sweeper's publish lease) or a lapsed lease."""
    return Q(lease_owner="") | Q(lease_until__isnull=True) | Q(lease_until__lt=now)


def not_leased(now: datetime) -> Q:
    """Neither a delivery nor a sweep holds the row (a fresh publish lease keeps a second beat off it)."""
    return Q(lease_until__isnull=True) | Q(lease_until__lt=now)


def skip_locked(due: QuerySet) -> QuerySet:
    """Row-locks the claimable rows without waiting, so a second beat's sweep takes the next rows
    instead of waiting for, then re-claiming, the first one's. Only the claimed table's rows: a
    joined row (an alert) must stay free for the clinician acknowledging it."""
    if connection.features.has_select_for_update_skip_locked:
        return due.select_for_update(skip_locked=True, of=("self",))
    return due


def publish_lease_take(model: type[models.Model], claimable: QuerySet, *, until: datetime) -> list:
    """Claims the ids `claimable` yields (a row-locking query) with a publish lease, no owner.
    The owner is cleared too: a dead worker's lapsed lease must not block the next claim."""
    with transaction.atomic():
        ids = list(claimable)
        if ids:
            model.objects.filter(pk__in=ids).update(lease_owner="", lease_until=until)
    return ids


def publish_lease_release(model: type[models.Model], ids: Sequence, *, lease_until: datetime) -> None:
    """The broker refused the ids: make them claimable at the very next sweep, not a lease later.
    Only rows still under this sweep's own publish lease; one a delivery took meanwhile stays."""
    model.objects.filter(pk__in=ids, lease_owner="", lease_until=lease_until).update(lease_until=None)


@dataclass
class SweepResult:
    expired: int = 0
    claimed: int = 0
    published: int = 0
    publish_failed: bool = False


def claimed_publish(
    *,
    claim: Callable[[int], list],
    publish: Callable[[list[str]], bool],
    release: Callable[[list], None],
    batch: int,
    deadline: float,
    result: SweepResult,
) -> bool:
    """Claims batches and publishes them in chunks until nothing is due or `deadline` (monotonic)
    passes. False when the broker refused: the unpublished rest is released for the next sweep.
    Memory stays flat: one batch of ids at a time, never every due row at once."""
    while time.monotonic() < deadline:
        ids = claim(batch)
        result.claimed += len(ids)
        for start in range(0, len(ids), PUBLISH_CHUNK):
            chunk = ids[start : start + PUBLISH_CHUNK]
            if not publish([str(pk) for pk in chunk]):
                # The broker is down: publishing the rest would fail alike. The rows are the
                # record; they go out from the first sweep after the broker is back.
                release(ids[start:])
                result.publish_failed = True
                return False
            result.published += len(chunk)
        if len(ids) < batch:
            break
    return True


def send_claim(due: QuerySet, *, owner: str, now: datetime) -> bool:
    """Takes the one row `due` names (already filtered to scheduled and due) for one send attempt,
    counting it; True only for the one caller whose UPDATE changed the row."""
    changed = due.filter(not_held(now)).update(
        lease_owner=owner, lease_until=now + send_lease(), attempts=F("attempts") + 1
    )
    return changed == 1


def outcome_record(model: type[models.Model], pk, *, owner: str, **fields) -> bool:
    """Writes an outcome only if this delivery still holds the row."""
    changed = model.objects.filter(pk=pk, lease_owner=owner, status=SCHEDULED).update(
        lease_owner="", lease_until=None, **fields
    )
    if changed != 1:
        # Stalled past the lease and another delivery took over (or the row changed under us);
        # whatever it sent carried the row's collapse key.
        logger.warning(
            "%s %s: lease lost before its outcome was recorded",
            model._meta.model_name,
            pk,
            extra={"event": "lease_lost"},
        )
    return changed == 1


@dataclass
class PushRound:
    pushed: bool = False  # at least one device took it
    retry: fcm.PushResult | None = None  # the transient failure to wait out (longest Retry-After)


def push_to_devices(*, user: User, send: Callable[[str], fcm.PushResult], deadline: float | None = None) -> PushRound:
    """Pushes to every active device of `user`; tokens FCM calls invalid are deactivated.

    Devices not reached by `deadline` (see send_deadline) wait for a retry, unless another
    device took the message: then it counts as sent, as when the others fail for now."""
    outcome = PushRound()
    for device in Device.objects.filter(user=user, active=True).order_by("created_at"):
        if deadline is not None and time.monotonic() >= deadline:
            if outcome.retry is None:
                outcome.retry = fcm.PushResult(fcm.PushOutcome.RETRY, error="send_deadline")
            break
        result = send(device.token)
        if result.outcome == fcm.PushOutcome.OK:
            outcome.pushed = True
        elif result.outcome == fcm.PushOutcome.INVALID_TOKEN:
            device_deactivate(device_id=device.pk, token=device.token, reason=result.error)
        elif outcome.retry is None or (result.retry_after or 0) > (outcome.retry.retry_after or 0):
            outcome.retry = result
    return outcome


# --- The sweeper ------------------------------------------------------------------------------------


def prompts_claimable(*, now: datetime, limit: int, broker_backlog: bool = False) -> QuerySet:
    """The ids of due prompts no one holds, oldest due first, row-locked without waiting.

    `status = 'scheduled' AND next_attempt_at <= now` is exactly the partial index `prompt_due`
    (next_attempt_at WHERE status = 'scheduled'), read in order, so PostgreSQL stops after `limit`
    rows however many prompts history holds. SKIP LOCKED lets a second beat's sweep take the next
    rows instead of waiting for, then re-claiming, the first one's.

    `broker_backlog`: the prompts queue still holds messages, so a prompt published earlier whose
    publish lease lapsed (no worker ever took it: no owner) is most likely still waiting in that
    queue, not lost. It is left out while the queue drains, for at most one more lease; publishing
    it again would only lengthen the backlog (a 100,000-prompt drain longer than the lease
    re-published 40,000). A queue that never empties cannot hold a lost message back for longer.
    A prompt a worker took and then died on (an owner, a lapsed lease) is claimed as ever.
    """
    due = (
        Prompt.objects.filter(status=PromptStatus.SCHEDULED, next_attempt_at__lte=now, expires_at__gt=now)
        .filter(not_leased(now))
        .order_by("next_attempt_at")
    )
    if broker_backlog:
        due = due.exclude(lease_owner="", lease_until__gt=now - prompt_publish_lease())
    return skip_locked(due).values_list("pk", flat=True)[:limit]


def _claim_batch(*, now: datetime, limit: int, until: datetime, broker_backlog: bool) -> list[uuid.UUID]:
    claimable = prompts_claimable(now=now, limit=limit, broker_backlog=broker_backlog)
    return publish_lease_take(Prompt, claimable, until=until)


def prompts_unsent_expire(*, now: datetime, batch: int) -> int:
    """Prompts still waiting to be sent when they expire become `expired` (never sent, too late).

    A prompt a delivery holds is left alone: that delivery may be talking to FCM right now and
    records the outcome itself; if it died, its lease lapses and the next sweep expires it.
    Batched, so a long outage's backlog is expired in short transactions.
    """
    total = 0
    while True:
        # Every scheduled prompt has next_attempt_at < expires_at (a retry that would land after
        # the expiry fails the prompt instead), so the extra bound is free and lets the query use
        # the prompt_due index.
        stale = Prompt.objects.filter(
            not_held(now), status=PromptStatus.SCHEDULED, next_attempt_at__lte=now, expires_at__lte=now
        )
        changed = (
            Prompt.objects.filter(pk__in=stale.values("pk")[:batch])
            .filter(not_held(now), status=PromptStatus.SCHEDULED, expires_at__lte=now)
            .update(status=PromptStatus.EXPIRED, lease_owner="", lease_until=None)
        )
        total += changed
        if changed < batch:
            return total


def prompts_sweep(
    *,
    now: datetime,
    publish: Callable[[list[str]], bool],
    batch: int | None = None,
    time_budget_seconds: float = SWEEP_TIME_BUDGET_SECONDS,
    broker_backlog: bool = False,
) -> SweepResult:
    """One beat's sweep: expire what is too late, claim and publish what is due.

    `publish` hands a chunk of prompt ids to the delivery queue and says whether the broker took
    it. Memory stays flat: one batch of ids at a time, never every due prompt at once.
    `broker_backlog`: the delivery queue is not empty (see prompts_claimable).
    """
    batch = batch or settings.PROMPT_SWEEP_BATCH
    result = SweepResult(expired=prompts_unsent_expire(now=now, batch=batch))
    lease_until = now + prompt_publish_lease()
    claimed_publish(
        claim=lambda limit: _claim_batch(now=now, limit=limit, until=lease_until, broker_backlog=broker_backlog),
        publish=publish,
        release=lambda ids: publish_lease_release(Prompt, ids, lease_until=lease_until),
        batch=batch,
        deadline=time.monotonic() + time_budget_seconds,
        result=result,
    )
    return result


# --- One delivery ----------------------------------------------------------------------------------


def prompt_claim(*, prompt_id, owner: str, now: datetime) -> bool:
    """Takes the prompt for one send attempt; True only for the one caller whose UPDATE changed
    the row. A sent, skipped or expired prompt, one not due yet (a stale message about a prompt
    that is now waiting out a backoff), and one another delivery holds are all refused."""
    due = Prompt.objects.filter(
        pk=prompt_id, status=PromptStatus.SCHEDULED, next_attempt_at__lte=now, expires_at__gt=now
    )
    return send_claim(due, owner=owner, now=now)


def _record(prompt_id, *, owner: str, **fields) -> bool:
    return outcome_record(Prompt, prompt_id, owner=owner, **fields)


def retry_delay_seconds(*, attempts: int, retry_after: float | None) -> float:
    """Exponential backoff with jitter (so a burst of 503s does not come back as one burst), capped;
    never sooner than the server's Retry-After."""
    backoff = min(RETRY_CAP_SECONDS, RETRY_BASE_SECONDS * 2 ** max(attempts - 1, 0))
    delay = random.uniform(backoff / 2, backoff)
    if retry_after is not None:
        delay = max(delay, retry_after)
    return delay


def _retry_or_fail(prompt: Prompt, *, owner: str, at: datetime, error: str, retry_after: float | None) -> str:
    next_attempt_at = at + timedelta(seconds=retry_delay_seconds(attempts=prompt.attempts, retry_after=retry_after))
    if next_attempt_at >= prompt.expires_at:
        _record(prompt.pk, owner=owner, status=PromptStatus.FAILED, last_error="expired_retrying")
        return "failed"
    _record(prompt.pk, owner=owner, next_attempt_at=next_attempt_at, last_error=error[:200])
    return "retry"


def _quiet_hours_wait(prompt: Prompt, *, owner: str, until: datetime) -> str:
    """SPEC §7: nothing reaches the patient inside quiet hours, however late a prompt comes (beat or
    Redis down, FCM's backoff): planning skipped the prompts that fall inside, and this catches
    the ones that drift in. The prompt waits for the end of quiet hours, or, when it would be too
    late by then, is skipped with the reason planning gives (SPEC §7: `skipped`, `quiet_hours`;
    the compliance funnel counts it there)."""
    if until >= prompt.expires_at:
        _record(prompt.pk, owner=owner, status=PromptStatus.SKIPPED, skip_reason="quiet_hours")
        return "skipped"
    _record(prompt.pk, owner=owner, next_attempt_at=until)
    return "quiet_hours"


def _already_checked_in(prompt: Prompt) -> bool:
    return Entry.objects.filter(
        patient_id=prompt.patient_id, kind=EntryKind.CHECK_IN, local_date=prompt.local_date, deleted_at__isnull=True
    ).exists()


def prompt_deliver(*, prompt_id, owner: str, now: datetime | None = None) -> str:
    """Claims, checks the rules that hold at send time, sends, records; returns the outcome
    ("not_claimed", "skipped", "quiet_hours" (waits for their end), "sent", "retry" or "failed").

    `owner` must be unique per attempt (a task id plus a random part): it is what makes the
    outcome UPDATEs refuse a delivery that no longer holds the prompt.
    """
    now = now or timezone.now()
    started = time.monotonic()  # the lease runs from `now`, so the deadline runs from here
    if not prompt_claim(prompt_id=prompt_id, owner=owner, now=now):
        return "not_claimed"
    deadline = send_deadline(started)

    def clock() -> datetime:  # `now` moved on by the time spent sending
        return now + timedelta(seconds=time.monotonic() - started)

    prompt = Prompt.objects.select_related("patient__clinic", "patient__user").get(pk=prompt_id)
    patient = prompt.patient
    user = patient.user
    if patient.status != PatientStatus.ACTIVE or user is None or not user.is_active:
        _record(prompt.pk, owner=owner, status=PromptStatus.SKIPPED, skip_reason="patient_inactive")
        return "skipped"
    if prompt.kind == PromptKind.CHECK_IN and _already_checked_in(prompt):
        _record(prompt.pk, owner=owner, status=PromptStatus.SKIPPED, skip_reason="already_done")
        return "skipped"
    quiet_until = planning.quiet_hours_end(patient.zone, now, patient.quiet_hours_start, patient.quiet_hours_end)
    if quiet_until is not None:
        return _quiet_hours_wait(prompt, owner=owner, until=quiet_until)

    pushes = PushRound()
    if fcm.push_enabled():
        pushes = push_to_devices(
            user=user,
            send=lambda token: fcm.push_send(
                token=token, prompt_id=str(prompt.pk), kind=prompt.kind, deadline=deadline
            ),
            deadline=deadline,
        )
    if pushes.pushed:
        _record(prompt.pk, owner=owner, status=PromptStatus.SENT, sent_at=clock(), channel="push", last_error="")
        return "sent"
    if pushes.retry is not None:
        retry = pushes.retry
        return _retry_or_fail(prompt, owner=owner, at=clock(), error=retry.error, retry_after=retry.retry_after)

    # No phone left to push to (none registered, push not configured, or every token invalid).
    if not (patient.clinic.email_reminders_allowed and user.email):
        _record(prompt.pk, owner=owner, status=PromptStatus.FAILED, last_error="no_channel")
        return "failed"
    try:
        email_transport.email_send(to=user.email)
    except email_transport.EmailRefused as exc:
        _record(prompt.pk, owner=owner, status=PromptStatus.FAILED, last_error=f"email_{exc}"[:200])
        return "failed"
    except email_transport.EmailUnavailable as exc:
        return _retry_or_fail(prompt, owner=owner, at=clock(), error=f"email_{exc}", retry_after=None)
    _record(prompt.pk, owner=owner, status=PromptStatus.SENT, sent_at=clock(), channel="email", last_error="")
    return "sent"
