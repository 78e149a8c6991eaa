"""Delivery of prompts, in process (SPEC §7): each prompt sent once and never lost.

FCM and SMTP are real loopback servers speaking the real protocols; the sweeper's publish is
replaced by a list, and the test plays the worker by delivering what the sweep handed over.
The same promises against a real Celery worker and Redis: test_delivery_integration.py.
"""

import itertools
import logging
import threading
import time
import uuid
from datetime import date, timedelta
from datetime import time as wall_time

import pytest
import redis
from django.db import connection
from django.utils import timezone

from accounts.models import PatientStatus
from reminders import tasks
from reminders.models import WEEKDAYS, Device, Prompt, PromptStatus, Schedule
from reminders.services import delivery
from tests.conftest import client_for
from tests.support import fcm_server
from tests.support.celery_worker import celery_app_broker
from tests.support.fcm_server import Reply
from tests.support.redis_server import spare_port

pytestmark = pytest.mark.django_db

# Words that would tell whoever sees a lock screen or a shared inbox what the reminder is about.
HEALTH_WORDS = (
    "alcohol",
    "cocaine",
    "opioid",
    "drug",
    "drink",
    "substance",
    "addiction",
    "craving",
    "relapse",
    "ketamine",
    "therapy",
    "phq",
    "gad",
    "depress",
    "anxiety",
    "mood",
    "clinic",
    "treatment",
    "recovery",
    "sober",
)

_slots = itertools.count()


@pytest.fixture
def patient(cast):
    return cast.patient


@pytest.fixture
def schedule(patient):
    return Schedule.objects.create(patient=patient, kind="check_in", days=list(WEEKDAYS), time=wall_time(9, 0))


@pytest.fixture
def device(patient):
    return Device.objects.create(user=patient.user, platform="android", token="token-pat-phone")


def make_prompt(
    schedule, *, now, kind="check_in", due_ago=timedelta(minutes=1), expires_in=timedelta(hours=2), **extra
):
    due = now - due_ago
    fields = {
        "patient": schedule.patient,
        "schedule": schedule,
        "kind": kind,
        "local_date": due.date(),
        "slot": next(_slots),
        "scheduled_for": due,
        "next_attempt_at": due,
        "expires_at": now + expires_in,
    }
    fields.update(extra)
    return Prompt.objects.create(**fields)


def sweep(now, **kwargs) -> list[str]:
    published: list[str] = []
    delivery.prompts_sweep(now=now, publish=lambda ids: published.extend(ids) or True, **kwargs)
    return published


def beat(now) -> list[str]:
    """One minute of production: the sweep, then a worker delivering each published id."""
    return [
        delivery.prompt_deliver(prompt_id=prompt_id, owner=f"test:{uuid.uuid4().hex[:12]}", now=now)
        for prompt_id in sweep(now)
    ]


def refreshed(prompt) -> Prompt:
    prompt.refresh_from_db()
    return prompt


def assert_neutral(text: str) -> None:
    lowered = text.lower()
    assert not [word for word in HEALTH_WORDS if word in lowered], text


# --- Sent once, with its id as collapse key -----------------------------------------------------


def test_a_due_prompt_is_pushed_once_with_its_id_as_collapse_key(fcm, schedule, device):
    now = timezone.now()
    prompt = make_prompt(schedule, now=now)

    assert beat(now) == ["sent"]
    assert beat(now + timedelta(minutes=1)) == []

    [sent] = fcm.received
    message = sent.message
    pid = str(prompt.pk)
    assert message["token"] == "token-pat-phone"
    assert message["notification"] == {"title": "Interlude", "body": "Time for your check-in"}
    assert message["data"] == {"prompt_id": pid, "kind": "check_in"}
    assert message["android"] == {"collapse_key": pid, "notification": {"tag": pid}}
    assert message["apns"] == {"headers": {"apns-collapse-id": pid}}
    assert sent.headers["Authorization"] == "Bearer loopback-access-1"
    # google-auth signed in as the service account, at the overridden token endpoint.
    [grant] = fcm.grants
    assert grant.claims["iss"] == f"push@{fcm_server.PROJECT_ID}.iam.gserviceaccount.com"
    assert grant.claims["scope"] == "https://www.googleapis.com/auth/firebase.messaging"

    prompt = refreshed(prompt)
    assert (prompt.status, prompt.channel, prompt.attempts, prompt.last_error) == ("sent", "push", 1, "")
    assert prompt.sent_at is not None
    assert (prompt.lease_owner, prompt.lease_until) == ("", None)


def test_the_access_token_is_fetched_once_per_process_and_reused(fcm, schedule, device):
    now = timezone.now()
    for _ in range(3):
        make_prompt(schedule, now=now)
    assert beat(now) == ["sent"] * 3
    assert len(fcm.grants) == 1
    assert {r.headers["Authorization"] for r in fcm.received} == {"Bearer loopback-access-1"}


def test_every_active_device_of_the_patient_gets_the_push(fcm, schedule, device, patient):
    Device.objects.create(user=patient.user, platform="ios", token="token-pat-tablet")
    Device.objects.create(user=patient.user, platform="ios", token="token-old", active=False)
    now = timezone.now()
    make_prompt(schedule, now=now)
    assert beat(now) == ["sent"]
    assert sorted(r.token for r in fcm.accepted) == ["token-pat-phone", "token-pat-tablet"]


def test_no_push_or_email_text_holds_health_information(fcm, smtp, schedule, device, cast):
    other = cast.other_patient  # no device: reminded by email
    other_schedule = Schedule.objects.create(patient=other, kind="check_in", days=list(WEEKDAYS), time=wall_time(9, 0))
    now = timezone.now()
    secret = "Your alcohol craving diary, from the ketamine clinic"
    for kind, extra in [
        ("check_in", {}),
        ("assessment", {"instrument": "phq9"}),
        ("craving_check", {}),
        ("custom", {"message": secret}),
    ]:
        make_prompt(schedule, now=now, kind=kind, **extra)
        make_prompt(other_schedule, now=now, kind=kind, **extra)

    assert beat(now) == ["sent"] * 8

    assert len(fcm.accepted) == 4
    for received in fcm.accepted:
        assert_neutral(received.message["notification"]["title"])
        assert_neutral(received.message["notification"]["body"])
    assert len(smtp.messages) == 4
    for mail in smtp.messages:
        assert_neutral(mail.subject)
        assert_neutral(mail.text)
        assert cast.patient.clinic.name.lower() not in mail.text.lower()


# --- Invalid tokens ---------------------------------------------------------------------------------


def test_an_unregistered_token_is_deactivated_and_email_takes_over(fcm, smtp, schedule, device, patient):
    fcm.reply_for(device.token, Reply.unregistered())
    now = timezone.now()
    prompt = make_prompt(schedule, now=now)

    assert beat(now) == ["sent"]

    device.refresh_from_db()
    assert (device.active, device.deactivated_reason) == (False, "unregistered")
    assert (refreshed(prompt).status, prompt.channel) == ("sent", "email")
    [mail] = smtp.messages
    assert mail.rcpt_tos == [patient.user.email]


def test_an_invalid_token_is_deactivated_and_without_email_the_prompt_fails(fcm, schedule, device, patient):
    patient.clinic.email_reminders_allowed = False
    patient.clinic.save()
    fcm.reply_for(device.token, Reply.invalid_argument())
    now = timezone.now()
    prompt = make_prompt(schedule, now=now)

    assert beat(now) == ["failed"]

    device.refresh_from_db()
    assert (device.active, device.deactivated_reason) == (False, "invalid_argument")
    assert (refreshed(prompt).status, prompt.last_error) == ("failed", "no_channel")


def test_an_invalid_argument_about_our_message_keeps_the_device_and_retries(fcm, schedule, device):
    fcm.queue(Reply.invalid_argument(field="message.android.ttl"))
    now = timezone.now()
    prompt = make_prompt(schedule, now=now)

    assert beat(now) == ["retry"]

    device.refresh_from_db()
    assert device.active
    assert (refreshed(prompt).status, prompt.last_error) == ("scheduled", "fcm_bad_message")


def test_one_invalid_token_among_several_only_drops_that_device(fcm, schedule, device, patient):
    tablet = Device.objects.create(user=patient.user, platform="ios", token="token-pat-tablet")
    fcm.reply_for(tablet.token, Reply.unregistered())
    now = timezone.now()
    prompt = make_prompt(schedule, now=now)

    assert beat(now) == ["sent"]
    assert Device.objects.get(pk=device.pk).active
    assert not Device.objects.get(pk=tablet.pk).active
    assert refreshed(prompt).channel == "push"


# --- Retries ------------------------------------------------------------------------------------------


def test_a_429_waits_for_retry_after_then_goes_out_on_a_later_sweep(fcm, schedule, device):
    fcm.queue(Reply.quota(retry_after=300))
    now = timezone.now()
    prompt = make_prompt(schedule, now=now)

    assert beat(now) == ["retry"]
    prompt = refreshed(prompt)
    assert prompt.status == "scheduled"
    assert prompt.attempts == 1
    assert prompt.last_error == "fcm_429"
    assert prompt.next_attempt_at >= now + timedelta(seconds=300)
    assert (prompt.lease_owner, prompt.lease_until) == ("", None)

    assert beat(now + timedelta(minutes=2)) == []  # still backing off
    assert beat(prompt.next_attempt_at + timedelta(seconds=1)) == ["sent"]
    prompt = refreshed(prompt)
    assert (prompt.status, prompt.attempts) == ("sent", 2)
    assert len(fcm.received) == 2
    assert len(fcm.accepted) == 1


def test_5xx_answers_back_off_exponentially_with_jitter(fcm, schedule, device):
    fcm.queue(Reply.unavailable(500), Reply.unavailable(503))
    now = timezone.now()
    prompt = make_prompt(schedule, now=now)

    assert beat(now) == ["retry"]
    first = refreshed(prompt).next_attempt_at
    assert timedelta(seconds=15) <= first - now <= timedelta(seconds=31)
    assert prompt.last_error == "fcm_500"

    assert beat(first) == ["retry"]
    second = refreshed(prompt).next_attempt_at
    assert timedelta(seconds=30) <= second - first <= timedelta(seconds=61)
    assert prompt.last_error == "fcm_503"

    assert beat(second) == ["sent"]
    assert refreshed(prompt).attempts == 3


def test_an_unreachable_or_silent_fcm_is_retried(fcm, schedule, device, settings):
    now = timezone.now()
    prompt = make_prompt(schedule, now=now)
    settings.FCM_TIMEOUT_SECONDS = 0.3
    fcm.queue(Reply(hang=True))
    assert beat(now) == ["retry"]
    assert refreshed(prompt).last_error == "fcm_timeout"
    fcm.release_hangs()

    settings.FCM_ENDPOINT = f"http://127.0.0.1:{spare_port()}"  # nothing listens there
    assert beat(prompt.next_attempt_at) == ["retry"]
    assert refreshed(prompt).last_error == "fcm_unreachable"
    assert refreshed(prompt).status == "scheduled"


def test_fcm_refusing_our_credentials_is_retried_loudly_with_a_fresh_token(fcm, schedule, device, caplog):
    fcm.queue(Reply(401, "UNAUTHENTICATED"))
    now = timezone.now()
    prompt = make_prompt(schedule, now=now)

    with caplog.at_level(logging.ERROR, logger="reminders.transports.fcm"):
        assert beat(now) == ["retry"]
    assert any("credentials" in record.getMessage() for record in caplog.records)
    assert beat(refreshed(prompt).next_attempt_at) == ["sent"]
    assert len(fcm.grants) == 2  # the refused access token was dropped


def test_retries_stop_at_expiry_and_the_prompt_fails(fcm, schedule, device):
    fcm.reply_for(device.token, Reply.unavailable(503))
    now = timezone.now()
    prompt = make_prompt(schedule, now=now, expires_in=timedelta(minutes=6))

    at, outcomes = now, []
    while refreshed(prompt).status == "scheduled":
        assert len(outcomes) < 20
        outcomes += beat(at)
        assert refreshed(prompt).next_attempt_at < prompt.expires_at
        at = prompt.next_attempt_at

    assert outcomes[-1] == "failed" and set(outcomes[:-1]) == {"retry"}
    assert (prompt.status, prompt.last_error) == ("failed", "expired_retrying")
    assert prompt.attempts == len(fcm.received) >= 3
    assert fcm.accepted == []


def test_a_stale_message_for_a_prompt_waiting_out_its_backoff_sends_nothing(fcm, schedule, device):
    fcm.queue(Reply.unavailable(503))
    now = timezone.now()
    prompt = make_prompt(schedule, now=now)
    assert beat(now) == ["retry"]

    # The same delivery message, redelivered by the broker: too early, the claim refuses it.
    assert delivery.prompt_deliver(prompt_id=prompt.pk, owner="redelivered", now=now) == "not_claimed"
    assert len(fcm.received) == 1


# --- Email ---------------------------------------------------------------------------------------------


def test_without_a_device_the_reminder_goes_by_email(fcm, smtp, schedule, patient, settings):
    now = timezone.now()
    prompt = make_prompt(schedule, now=now)

    assert beat(now) == ["sent"]

    [mail] = smtp.messages
    assert mail.rcpt_tos == [patient.user.email]
    assert mail.subject == "A reminder from Interlude"
    assert settings.PUBLIC_BASE_URL in mail.text
    assert mail.message["From"] == settings.DEFAULT_FROM_EMAIL
    assert patient.clinic.name not in mail.text
    prompt = refreshed(prompt)
    assert (prompt.status, prompt.channel) == ("sent", "email")
    assert fcm.received == []


def test_with_push_not_configured_a_patient_with_a_phone_gets_email(smtp, schedule, device, settings):
    settings.FCM_PROJECT_ID = ""
    now = timezone.now()
    prompt = make_prompt(schedule, now=now)
    assert beat(now) == ["sent"]
    assert refreshed(prompt).channel == "email"
    assert len(smtp.messages) == 1


def test_a_clinic_that_forbids_email_and_no_device_fails_the_prompt(fcm, smtp, schedule, patient):
    patient.clinic.email_reminders_allowed = False
    patient.clinic.save()
    now = timezone.now()
    prompt = make_prompt(schedule, now=now)

    assert beat(now) == ["failed"]
    assert (refreshed(prompt).status, prompt.last_error) == ("failed", "no_channel")
    assert smtp.messages == []
    assert fcm.received == []


def test_a_mail_server_that_is_down_is_retried(schedule, settings):
    settings.EMAIL_BACKEND = "django.core.mail.backends.smtp.EmailBackend"
    settings.EMAIL_HOST, settings.EMAIL_PORT, settings.EMAIL_TIMEOUT = "127.0.0.1", spare_port(), 2
    now = timezone.now()
    prompt = make_prompt(schedule, now=now)
    assert beat(now) == ["retry"]
    prompt = refreshed(prompt)
    assert prompt.status == "scheduled"
    assert prompt.last_error.startswith("email_")
    assert prompt.next_attempt_at > now


# --- Once: duplicates, two claims, dead workers ---------------------------------------------------------


def test_the_same_prompt_delivered_twice_is_pushed_once(fcm, schedule, device):
    now = timezone.now()
    prompt = make_prompt(schedule, now=now)
    first = delivery.prompt_deliver(prompt_id=prompt.pk, owner="task-1:a", now=now)
    second = delivery.prompt_deliver(prompt_id=prompt.pk, owner="task-2:b", now=now)
    assert (first, second) == ("sent", "not_claimed")

    # The task itself, handed the id twice in one message (a re-published chunk).
    tasks.deliver_prompts([str(prompt.pk), str(prompt.pk)])
    assert len(fcm.received) == 1
    assert refreshed(prompt).attempts == 1


def test_a_prompt_held_by_another_delivery_is_not_sent_again(fcm, schedule, device):
    now = timezone.now()
    prompt = make_prompt(schedule, now=now)
    assert delivery.prompt_claim(prompt_id=prompt.pk, owner="worker-a", now=now)

    assert delivery.prompt_deliver(prompt_id=prompt.pk, owner="worker-b", now=now) == "not_claimed"
    assert beat(now + timedelta(seconds=10)) == []  # the sweep leaves a live lease alone too
    assert fcm.received == []


def test_a_dead_workers_lapsed_lease_is_reclaimed_by_the_sweep_and_sent_once(fcm, schedule, device, settings):
    now = timezone.now()
    prompt = make_prompt(schedule, now=now)
    # A worker claimed it, then died before sending: its lease stays on the row.
    assert delivery.prompt_claim(prompt_id=prompt.pk, owner="dead-worker", now=now)
    later = now + timedelta(seconds=settings.PROMPT_SEND_LEASE_SECONDS + 1)

    assert beat(later) == ["sent"]
    assert beat(later + timedelta(minutes=1)) == []
    assert len(fcm.received) == 1
    prompt = refreshed(prompt)
    assert (prompt.status, prompt.attempts) == ("sent", 2)
    # The dead worker's late outcome, had it woken up, would change nothing.
    assert not delivery._record(prompt.pk, owner="dead-worker", status=PromptStatus.FAILED)
    assert refreshed(prompt).status == "sent"


# --- Expiry and the rules at send time -------------------------------------------------------------------


def test_prompts_never_sent_before_their_expiry_become_expired(fcm, schedule, device, settings):
    now = timezone.now()
    too_late = make_prompt(schedule, now=now, due_ago=timedelta(hours=3), expires_in=-timedelta(hours=1))
    dead_worker = make_prompt(schedule, now=now, due_ago=timedelta(hours=3), expires_in=-timedelta(minutes=1))
    Prompt.objects.filter(pk=dead_worker.pk).update(lease_owner="dead", lease_until=now - timedelta(minutes=30))
    in_flight = make_prompt(schedule, now=now, due_ago=timedelta(hours=3), expires_in=-timedelta(seconds=1))
    Prompt.objects.filter(pk=in_flight.pk).update(lease_owner="alive", lease_until=now + timedelta(seconds=30))
    due = make_prompt(schedule, now=now)

    assert beat(now) == ["sent"]

    assert refreshed(too_late).status == "expired" and too_late.sent_at is None
    assert refreshed(dead_worker).status == "expired"
    assert refreshed(in_flight).status == "scheduled"  # its sender records the outcome itself
    assert refreshed(due).status == "sent"
    assert [r.prompt_id for r in fcm.received] == [str(due.pk)]


def test_paused_discharged_and_deactivated_patients_are_skipped(fcm, schedule, device, patient, cast):
    now = timezone.now()
    prompt = make_prompt(schedule, now=now)
    for status in (PatientStatus.PAUSED, PatientStatus.DISCHARGED):
        patient.status = status
        patient.save()
        Prompt.objects.filter(pk=prompt.pk).update(status="scheduled", skip_reason="")
        assert beat(now) == ["skipped"]
        assert (refreshed(prompt).status, prompt.skip_reason) == ("skipped", "patient_inactive")

    patient.status = PatientStatus.ACTIVE
    patient.save()
    patient.user.is_active = False
    patient.user.save()
    Prompt.objects.filter(pk=prompt.pk).update(status="scheduled", skip_reason="")
    assert beat(now) == ["skipped"]
    assert fcm.received == []


def test_a_check_in_prompt_is_skipped_when_the_day_already_has_a_check_in(fcm, schedule, device, patient):
    client = client_for(patient.user)
    occurred = timezone.now() - timedelta(minutes=30)
    response = client.post(
        "/api/v1/entries/",
        {"kind": "check_in", "occurred_at": occurred.isoformat(), "craving": 2, "mood": 7},
        format="json",
    )
    assert response.status_code == 201, response.content
    day = response.json()["local_date"]
    now = timezone.now()
    check_in = make_prompt(schedule, now=now, local_date=day)
    craving_check = make_prompt(schedule, now=now, kind="craving_check", local_date=day)
    other_day = make_prompt(schedule, now=now, local_date=date.fromisoformat(day) - timedelta(days=1))

    assert sorted(beat(now)) == ["sent", "sent", "skipped"]
    assert (refreshed(check_in).status, check_in.skip_reason) == ("skipped", "already_done")
    assert refreshed(craving_check).status == "sent"
    assert refreshed(other_day).status == "sent"


# --- The sweeper ---------------------------------------------------------------------------------------


def test_the_sweep_publishes_due_prompts_in_chunks_and_leaves_the_rest(schedule):
    now = timezone.now()
    due = {str(make_prompt(schedule, now=now).pk) for _ in range(230)}
    make_prompt(schedule, now=now, due_ago=-timedelta(minutes=5))  # not due yet

    chunks: list[list[str]] = []
    result = delivery.prompts_sweep(now=now, publish=lambda ids: chunks.append(ids) or True, batch=120)

    assert (result.claimed, result.published) == (230, 230)
    assert max(len(chunk) for chunk in chunks) <= delivery.PUBLISH_CHUNK
    assert sorted(itertools.chain(*chunks)) == sorted(due)
    assert sweep(now) == []  # published ones hold their publish lease until a delivery takes them


def test_a_broker_that_refuses_leaves_the_prompts_to_the_next_sweep(schedule):
    now = timezone.now()
    ids = {str(make_prompt(schedule, now=now).pk) for _ in range(3)}

    result = delivery.prompts_sweep(now=now, publish=lambda ids: False)

    assert result.publish_failed and result.published == 0
    assert not Prompt.objects.filter(lease_until__isnull=False).exists()
    assert set(sweep(now + timedelta(minutes=1))) == ids


def test_while_the_queue_drains_a_lapsed_publish_lease_waits_one_more_lease_but_a_dead_worker_does_not(
    schedule, settings
):
    now = timezone.now()
    lease = timedelta(seconds=settings.PROMPT_PUBLISH_LEASE_SECONDS)
    new = make_prompt(schedule, now=now)  # never published
    published = make_prompt(schedule, now=now, due_ago=lease + timedelta(minutes=2))
    Prompt.objects.filter(pk=published.pk).update(lease_until=now - timedelta(seconds=30))  # lapsed
    long_lapsed = make_prompt(schedule, now=now, due_ago=3 * lease)
    Prompt.objects.filter(pk=long_lapsed.pk).update(lease_until=now - lease - timedelta(seconds=1))
    dead_worker = make_prompt(schedule, now=now)
    Prompt.objects.filter(pk=dead_worker.pk).update(lease_owner="dead", lease_until=now - timedelta(seconds=30))

    # The queue still holds messages: the lapsed publish lease's message is most likely among them.
    backlog = sweep(now, broker_backlog=True)
    assert sorted(backlog) == sorted(str(p.pk) for p in (new, long_lapsed, dead_worker))
    # Once the queue has drained, a lapsed lease means a lost message: published again.
    assert sweep(now, broker_backlog=False) == [str(published.pk)]


def test_the_sweep_task_holds_lapsed_publish_leases_back_while_the_prompts_queue_holds_messages(schedule, settings):
    now = timezone.now()
    prompt = make_prompt(schedule, now=now, due_ago=timedelta(minutes=15))
    Prompt.objects.filter(pk=prompt.pk).update(lease_until=now - timedelta(seconds=30))
    client = redis.Redis.from_url(settings.REDIS_URL)
    client.delete(tasks.PROMPTS_QUEUE)
    client.rpush(tasks.PROMPTS_QUEUE, b"a message still waiting for a worker")
    try:
        assert tasks.sweep_due_prompts()["claimed"] == 0
    finally:
        client.delete(tasks.PROMPTS_QUEUE)
    with celery_app_broker(f"redis://127.0.0.1:{spare_port()}/0"):  # the broker is down: publish fails
        assert tasks.sweep_due_prompts()["claimed"] == 1  # empty queue: the message was lost


def test_the_sweep_task_publishes_to_the_prompts_queue(schedule, monkeypatch):
    now = timezone.now()
    prompt = make_prompt(schedule, now=now)
    calls = []
    monkeypatch.setattr(tasks, "publish", lambda task, *args, queue=None: calls.append((task, args, queue)) or True)

    assert tasks.sweep_due_prompts()["published"] == 1
    assert calls == [(tasks.deliver_prompts, ([str(prompt.pk)],), "prompts")]


def test_the_sweep_task_with_the_broker_down_publishes_nothing_and_does_not_fail(schedule):
    now = timezone.now()
    prompt = make_prompt(schedule, now=now)
    with celery_app_broker(f"redis://127.0.0.1:{spare_port()}/0"):  # nothing listens there
        result = tasks.sweep_due_prompts()
    assert (result["claimed"], result["published"]) == (1, 0)
    prompt = refreshed(prompt)
    assert (prompt.status, prompt.lease_until) == ("scheduled", None)


@pytest.mark.skipif(connection.vendor != "postgresql", reason="EXPLAIN of PostgreSQL's planner")
def test_the_sweep_query_reads_the_prompt_due_partial_index(schedule):
    now = timezone.now()
    for _ in range(20):
        make_prompt(schedule, now=now)
    with connection.cursor() as cursor:
        # Tiny test tables make a sequential scan cheapest; forbid it to see whether the index
        # *can* serve the query (a predicate the partial index does not imply would still scan).
        cursor.execute("SET LOCAL enable_seqscan = off")
    plan = delivery.prompts_claimable(now=now, limit=100).explain()
    assert "prompt_due" in plan, plan
    assert "LockRows" in plan  # FOR UPDATE SKIP LOCKED


@pytest.mark.skipif(connection.vendor != "postgresql", reason="SKIP LOCKED is PostgreSQL's")
@pytest.mark.django_db(transaction=True)
def test_two_beats_sweeping_at_once_claim_each_prompt_once(schedule):
    from django.db import connections

    now = timezone.now()
    due = {str(make_prompt(schedule, now=now).pk) for _ in range(60)}
    start = threading.Barrier(2)
    published: list[list[str]] = [[], []]
    errors: list[BaseException] = []

    def one_beat(index: int) -> None:
        def publish(ids: list[str]) -> bool:
            published[index].extend(ids)
            time.sleep(0.01)  # a broker round trip, so the two sweeps interleave
            return True

        try:
            start.wait(timeout=10)
            delivery.prompts_sweep(now=now, publish=publish, batch=7)
        except BaseException as exc:  # surfaced below
            errors.append(exc)
        finally:
            connections.close_all()

    threads = [threading.Thread(target=one_beat, args=(index,)) for index in range(2)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=30)

    assert errors == []
    assert published[0] and published[1]  # both beats really swept
    assert not set(published[0]) & set(published[1])
    assert sorted(published[0] + published[1]) == sorted(due)
