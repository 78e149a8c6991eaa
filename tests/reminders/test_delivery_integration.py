"""Once and never lost, against a real Celery worker on a private redis-server (SPEC §7).

The worker is `celery -A backend worker` in a subprocess on the pytest test database; FCM is the
loopback server. Tests kill the worker with SIGKILL mid-send and stop Redis, the two ways
production loses work. The worker's send lease is 3 s (PROMPT_SEND_LEASE_SECONDS), so a dead
worker's prompt comes back within seconds, not a minute.
"""

import itertools
import time
from datetime import time as wall_time
from datetime import timedelta

import pytest
import redis
from django.utils import timezone

from reminders import tasks
from reminders.models import WEEKDAYS, Device, Prompt, Schedule
from reminders.transports import fcm as fcm_transport
from tests.support.celery_worker import CeleryWorker, celery_app_broker
from tests.support.fcm_server import FcmLoopback, Reply

pytestmark = [pytest.mark.integration, pytest.mark.django_db(transaction=True)]

LEASE_SECONDS = 3
_slots = itertools.count()


@pytest.fixture
def fcm(tmp_path):
    server = FcmLoopback(tmp_path).start()
    yield server
    server.stop()


@pytest.fixture
def broker(private_redis, settings):
    settings.PROMPT_SEND_LEASE_SECONDS = LEASE_SECONDS  # the sweeps this process runs lease alike
    settings.PROMPT_PUBLISH_LEASE_SECONDS = LEASE_SECONDS
    with celery_app_broker(private_redis.url):
        yield private_redis


@pytest.fixture
def workers(fcm, broker, tmp_path):
    env = {**fcm.settings(), "PROMPT_SEND_LEASE_SECONDS": str(LEASE_SECONDS),
           "PROMPT_PUBLISH_LEASE_SECONDS": str(LEASE_SECONDS), "EMAIL_URL": "memory://"}  # fmt: skip
    started: list[CeleryWorker] = []

    def start(count: int = 1) -> list[CeleryWorker]:
        batch = [CeleryWorker(broker_url=broker.url, env=env, log_dir=tmp_path).launch() for _ in range(count)]
        started.extend(batch)
        return [worker.wait_ready() for worker in batch]

    yield start
    for worker in started:  # the test is over: no need to wait for a warm shutdown
        worker.kill()
    fcm_transport.credentials_forget()


@pytest.fixture
def schedule(cast):
    return Schedule.objects.create(patient=cast.patient, kind="check_in", days=list(WEEKDAYS), time=wall_time(9, 0))


@pytest.fixture
def device(cast):
    return Device.objects.create(user=cast.patient.user, platform="android", token="token-pat-phone")


def make_prompt(schedule, *, expires_in=timedelta(hours=2)) -> Prompt:
    now = timezone.now()
    due = now - timedelta(minutes=1)
    return Prompt.objects.create(
        patient=schedule.patient,
        schedule=schedule,
        kind="check_in",
        local_date=due.date(),
        slot=next(_slots),
        scheduled_for=due,
        next_attempt_at=due,
        expires_at=now + expires_in,
    )


def beat() -> None:
    """What beat does every minute: publish the sweep for a worker to run."""
    tasks.sweep_due_prompts.apply_async(retry=False)


def statuses(prompts) -> set[str]:
    return set(Prompt.objects.filter(pk__in=[p.pk for p in prompts]).values_list("status", flat=True))


def wait_until(predicate, *, timeout: float, interval: float = 0.1, every=None) -> None:
    """Polls `predicate`; calls `every` (a beat) between polls, at most once a second."""
    deadline = time.monotonic() + timeout
    last_every = 0.0
    while time.monotonic() < deadline:
        if predicate():
            return
        if every is not None and time.monotonic() - last_every >= 1.0:
            every()
            last_every = time.monotonic()
        time.sleep(interval)
    assert predicate(), "timed out"


def broker_idle(url: str) -> bool:
    """Nothing queued and nothing handed to a worker but not yet acknowledged."""
    client = redis.Redis.from_url(url)
    try:
        return client.llen("prompts") == 0 and client.llen("default") == 0 and client.hlen("unacked") == 0
    finally:
        client.close()


def test_the_same_delivery_enqueued_twice_pushes_once(workers, broker, fcm, schedule, device):
    workers()
    prompt = make_prompt(schedule)

    for _ in range(2):
        tasks.deliver_prompts.apply_async(args=[[str(prompt.pk)]])

    wait_until(lambda: statuses([prompt]) == {"sent"}, timeout=15)
    wait_until(lambda: broker_idle(broker.url), timeout=10)
    assert len(fcm.accepted_for(prompt.pk)) == 1
    assert len(fcm.received) == 1
    prompt.refresh_from_db()
    assert (prompt.attempts, prompt.channel) == (1, "push")


def test_a_worker_killed_before_the_send_leaves_the_prompt_to_the_next_sweep(workers, fcm, schedule, device):
    fcm.queue(Reply(hang=True))  # the first push never gets through
    [worker] = workers()
    prompt = make_prompt(schedule)

    beat()
    assert fcm.wait_for(lambda server: len(server.received) == 1, timeout=15)
    worker.kill()
    fcm.release_hangs()
    prompt.refresh_from_db()
    assert (prompt.status, prompt.attempts) == ("scheduled", 1)
    assert prompt.lease_owner  # the dead worker's lease, lapsing LEASE_SECONDS after its claim

    workers()  # the replacement
    wait_until(lambda: statuses([prompt]) == {"sent"}, timeout=20, every=beat)

    assert len(fcm.accepted_for(prompt.pk)) == 1
    prompt.refresh_from_db()
    assert prompt.attempts == 2


def test_a_worker_killed_after_fcm_accepted_resends_at_most_once_with_the_same_collapse_key(
    workers, fcm, schedule, device
):
    fcm.queue(Reply(hang_after_accept=True))  # FCM takes the message, the answer never arrives
    [worker] = workers()
    prompt = make_prompt(schedule)

    beat()
    assert fcm.wait_for(lambda server: len(server.accepted) == 1, timeout=15)
    worker.kill()  # after FCM accepted, before the send was recorded: the window no server closes
    fcm.release_hangs()
    assert Prompt.objects.get(pk=prompt.pk).status == "scheduled"

    workers()
    wait_until(lambda: statuses([prompt]) == {"sent"}, timeout=20, every=beat)

    pushes = fcm.accepted_for(prompt.pk)
    assert len(pushes) == 2  # the one resend ...
    pid = str(prompt.pk)
    for push in pushes:  # ... replaces the first notification on the phone instead of adding one
        assert push.message["android"]["notification"]["tag"] == pid
        assert push.message["android"]["collapse_key"] == pid
        assert push.message["apns"]["headers"]["apns-collapse-id"] == pid


def test_prompts_due_while_redis_is_down_go_out_when_it_returns(workers, broker, fcm, schedule, device):
    workers()
    broker.stop()
    lasting = [make_prompt(schedule) for _ in range(5)]
    short = make_prompt(schedule, expires_in=timedelta(seconds=2))

    started = time.monotonic()
    result = tasks.sweep_due_prompts()  # a sweep during the outage: publishes nothing, raises nothing
    assert time.monotonic() - started < 5
    assert (result["claimed"], result["published"]) == (6, 0)
    assert statuses([*lasting, short]) == {"scheduled"}
    assert not Prompt.objects.filter(lease_until__isnull=False).exists()  # free for the next sweep

    time.sleep(max(0.0, 2.5 - (time.monotonic() - started)))  # the short one expires meanwhile
    broker.start()
    wait_until(lambda: statuses(lasting) == {"sent"}, timeout=40, every=beat)
    wait_until(lambda: broker_idle(broker.url), timeout=10, every=None)

    assert statuses([short]) == {"expired"}
    for prompt in lasting:
        assert len(fcm.accepted_for(prompt.pk)) == 1
    assert fcm.accepted_for(short.pk) == []


def test_two_beats_and_two_workers_send_each_prompt_once(workers, broker, fcm, schedule, device):
    workers(2)
    prompts = [make_prompt(schedule) for _ in range(40)]

    beat()
    beat()  # a second beat, running at the same moment on the other worker
    # and every delivery message duplicated, as a broker redelivering after a lost ack would
    for start in range(0, len(prompts), 10):
        tasks.deliver_prompts.apply_async(args=[[str(p.pk) for p in prompts[start : start + 10]]])

    wait_until(lambda: statuses(prompts) == {"sent"}, timeout=30)
    wait_until(lambda: broker_idle(broker.url), timeout=15)
    for prompt in prompts:
        assert len(fcm.accepted_for(prompt.pk)) == 1
    assert len(fcm.received) == len(prompts)
