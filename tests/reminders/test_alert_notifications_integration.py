"""Alert notifications against a real Celery worker on a private redis-server (SPEC §9).

The worker is `celery -A backend worker` in a subprocess on the pytest test database; FCM and SMTP
are loopback servers in this process. The worker listens only where the compose file's urgent
worker does when it matters (alerts_urgent), so a test also proves urgent notifications never need
the prompts' or the default queue.
"""

import time
from datetime import timedelta

import pytest
import redis
from django.db import transaction
from django.utils import timezone

from backend import hooks, queueing
from journal.models import SEVERITY_OF_RULE, Alert, AlertRule
from reminders import tasks
from reminders.models import AlertNotification, Device
from reminders.transports import fcm as fcm_transport
from tests.support.celery_worker import CeleryWorker, celery_app_broker
from tests.support.fcm_server import FcmLoopback
from tests.support.smtp_server import SmtpLoopback

pytestmark = [pytest.mark.integration, pytest.mark.django_db(transaction=True)]

LEASE_SECONDS = 3


@pytest.fixture
def fcm(tmp_path, settings):
    server = FcmLoopback(tmp_path).start()
    # This process writes the rows (push ones only where push is configured); the worker sends.
    for name, value in server.settings().items():
        setattr(settings, name, float(value) if name == "FCM_TIMEOUT_SECONDS" else value)
    yield server
    server.stop()


@pytest.fixture
def smtp():
    server = SmtpLoopback().start()
    yield server
    server.stop()


@pytest.fixture
def broker(private_redis, settings, monkeypatch):
    settings.PROMPT_SEND_LEASE_SECONDS = LEASE_SECONDS
    # A broker outage an earlier test staged must not leave this process skipping publishes.
    monkeypatch.setattr(queueing, "_broker_down_until", 0.0)
    with celery_app_broker(private_redis.url):
        yield private_redis


@pytest.fixture
def worker(fcm, smtp, broker, tmp_path):
    env = {
        **fcm.settings(),
        "PROMPT_SEND_LEASE_SECONDS": str(LEASE_SECONDS),
        "EMAIL_URL": f"smtp://{smtp.host}:{smtp.port}",
    }
    started: list[CeleryWorker] = []

    def start(queues: str) -> CeleryWorker:
        started.append(CeleryWorker(broker_url=broker.url, env=env, queues=queues, log_dir=tmp_path).start())
        return started[-1]

    yield start
    for process in started:
        process.kill()
    fcm_transport.credentials_forget()


@pytest.fixture
def phones(cast):
    Device.objects.create(user=cast.clinician, platform="ios", token="token-carer-phone")
    Device.objects.create(user=cast.admin, platform="android", token="token-admin-phone")


def open_alert(patient, rule) -> Alert:
    with transaction.atomic():
        now = timezone.now()
        alert = Alert.objects.create(
            patient=patient, rule=rule, severity=SEVERITY_OF_RULE[rule], opened_at=now, last_fired_at=now, evidence=[]
        )
        hooks.alert_opened.call(alert=alert)
    return alert


def beat() -> None:
    tasks.sweep_due_alert_notifications.apply_async(retry=False)


def round_zero_statuses(alert) -> set[str]:
    return set(AlertNotification.objects.filter(alert=alert, round=0).values_list("status", flat=True))


def wait_until(predicate, *, timeout: float, every=None) -> None:
    deadline = time.monotonic() + timeout
    last_every = 0.0
    while time.monotonic() < deadline:
        if predicate():
            return
        if every is not None and time.monotonic() - last_every >= 1.0:
            every()
            last_every = time.monotonic()
        time.sleep(0.05)
    assert predicate(), "timed out"


def broker_idle(url: str) -> bool:
    client = redis.Redis.from_url(url)
    try:
        return all(client.llen(queue) == 0 for queue in ("alerts_urgent", "default", "prompts")) and not client.hlen(
            "unacked"
        )
    finally:
        client.close()


def test_round_zero_goes_out_within_seconds_of_commit_without_a_sweep_and_a_duplicate_sends_nothing(
    worker, broker, fcm, smtp, cast, phones
):
    worker("alerts_urgent,default")

    started = time.monotonic()
    urgent = open_alert(cast.patient, AlertRule.PHQ9_SELF_HARM)  # kicked on alerts_urgent
    low = open_alert(cast.patient, AlertRule.MOOD_LOW)  # kicked on default
    wait_until(lambda: round_zero_statuses(urgent) == round_zero_statuses(low) == {"sent"}, timeout=15)
    elapsed = time.monotonic() - started
    assert elapsed < 10, elapsed  # no beat ran: the kick alone

    # The same kick again, and a sweep: the rows refuse a second send.
    ids = [str(pk) for pk in AlertNotification.objects.filter(round=0).values_list("pk", flat=True)]
    tasks.send_alert_notifications.apply_async(args=[ids], queue="alerts_urgent")
    tasks.send_alert_notifications.apply_async(args=[ids])
    beat()
    wait_until(lambda: broker_idle(broker.url), timeout=15)

    assert sorted(m.rcpt_tos[0] for m in smtp.messages) == [cast.clinician.email] * 2
    assert sorted(p.message["android"]["collapse_key"] for p in fcm.accepted) == sorted(
        [f"alert-{urgent.pk}-0", f"alert-{low.pk}-0"]
    )
    assert len(fcm.received) == 2
    later = AlertNotification.objects.filter(alert=urgent, round__gt=0)
    assert set(later.values_list("status", "attempts")) == {("scheduled", 0)}  # their time has not come


def test_an_urgent_alert_opened_while_redis_is_down_is_notified_once_when_it_returns(
    worker, broker, fcm, smtp, cast, phones
):
    worker("alerts_urgent")  # the compose file's urgent worker: nothing else
    broker.stop()

    started = time.monotonic()
    alert = open_alert(cast.patient, AlertRule.PHQ9_SELF_HARM)  # the kick after commit fails, quietly
    assert time.monotonic() - started < 5

    assert Alert.objects.filter(pk=alert.pk, status="open").exists()
    notifications = AlertNotification.objects.filter(alert=alert)
    assert notifications.count() == 2 * 4 + 2 * 3  # the carer's 4 rounds and the admin's 3, email and push
    assert set(notifications.values_list("status", flat=True)) == {"scheduled"}

    broker.start()
    wait_until(lambda: round_zero_statuses(alert) == {"sent"}, timeout=40, every=beat)
    wait_until(lambda: broker_idle(broker.url), timeout=15)

    [mail] = smtp.messages
    assert mail.rcpt_tos == [cast.clinician.email]
    [push] = fcm.received
    assert push.accepted and push.message["android"]["collapse_key"] == f"alert-{alert.pk}-0"
    assert set(notifications.filter(round=0).values_list("attempts", flat=True)) == {1}
    # The later rounds wait for their time (15 minutes on), untouched by the outage.
    first_due = notifications.get(round=0, channel="email").due_at
    for later in notifications.filter(round__gt=0):
        assert (later.status, later.due_at - first_due) == ("scheduled", later.round * timedelta(minutes=15))
