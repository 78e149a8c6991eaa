"""A delivery sends nothing once its send lease may have passed to another sender (SPEC §7: "not
twice when beat or a task runs twice").

The lease (PROMPT_SEND_LEASE_SECONDS) is shortened to 1.5 s, so the delivery's deadline, four
fifths of it, comes 1.2 s after its claim. FCM and its token endpoint are real loopback servers
made slow on their side, so the client sees genuinely late answers.
"""

import collections
import socket
import threading
import time
from datetime import time as wall_time

import pytest
from django.utils import timezone

from reminders.models import WEEKDAYS, Device, Schedule
from reminders.services import delivery
from reminders.transports import fcm as fcm_transport
from tests.reminders.test_delivery import beat, make_prompt, refreshed
from tests.support import fcm_server
from tests.support.fcm_server import Reply

pytestmark = pytest.mark.django_db

LEASE_SECONDS = 1.5


@pytest.fixture
def lease(settings):
    settings.PROMPT_SEND_LEASE_SECONDS = LEASE_SECONDS
    settings.FCM_TIMEOUT_SECONDS = 1.0
    return LEASE_SECONDS


@pytest.fixture
def schedule(cast):
    return Schedule.objects.create(patient=cast.patient, kind="check_in", days=list(WEEKDAYS), time=wall_time(9, 0))


def phones(patient, count: int) -> list[str]:
    tokens = [f"token-phone-{n}" for n in range(count)]
    for token in tokens:
        Device.objects.create(user=patient.user, platform="android", token=token)
    return tokens


def slow_fcm(monkeypatch, seconds: float) -> None:
    """FCM takes `seconds` before it handles each message (and then accepts it as usual)."""
    handle = fcm_server._Handler._send

    def slowly(handler, raw):
        time.sleep(seconds)
        handle(handler, raw)

    monkeypatch.setattr(fcm_server._Handler, "_send", slowly)


def test_a_delivery_slower_than_its_lease_stops_before_another_sender_takes_over(
    fcm, lease, schedule, cast, monkeypatch
):
    """The audit's reproducer, in real time: FCM answers each push after 0.55 s and the patient has
    four phones, so pushing to all of them outlives the 1.5 s lease. Any push the first delivery
    would start after its lease is preceded by the next beat (a sweep, and a second worker
    delivering what it publishes)."""
    tokens = phones(cast.patient, 4)
    slow_fcm(monkeypatch, 0.55)
    now = timezone.now()
    prompt = make_prompt(schedule, now=now)
    started = time.monotonic()
    push = fcm_transport.push_send
    overtaken = threading.Event()

    def push_or_be_overtaken(**kwargs):
        if not overtaken.is_set() and time.monotonic() - started > lease + 0.05:
            overtaken.set()  # once: the second worker's own pushes come through here too
            beat(timezone.now())
        return push(**kwargs)

    monkeypatch.setattr(fcm_transport, "push_send", push_or_be_overtaken)

    assert beat(now) == ["sent"]

    per_phone = collections.Counter(push.token for push in fcm.accepted_for(prompt.pk))
    assert max(per_phone.values()) == 1, per_phone
    assert set(per_phone) < set(tokens)  # the phones it ran out of time for are spared, not pushed twice
    assert not overtaken.is_set()  # no push was left to start once the lease could pass
    assert time.monotonic() - started < lease
    prompt = refreshed(prompt)
    assert (prompt.status, prompt.attempts, prompt.lease_owner) == ("sent", 1, "")


def test_the_phones_a_delivery_ran_out_of_time_for_get_the_prompt_on_its_retry(fcm, lease, schedule, cast, settings):
    """FCM stalls: the first two pushes time out (after 0.7 s, then after what is left of the
    1.2 s) and the third is never started. The prompt waits for a retry like any transient
    failure, then reaches every phone once: not lost, and not counted as sent twice."""
    settings.FCM_TIMEOUT_SECONDS = 0.7
    tokens = phones(cast.patient, 3)
    fcm.queue(Reply(hang=True), Reply(hang=True))
    now = timezone.now()
    prompt = make_prompt(schedule, now=now)
    started = time.monotonic()

    assert beat(now) == ["retry"]

    assert time.monotonic() - started < lease
    assert [received.token for received in fcm.received] == tokens[:2]
    prompt = refreshed(prompt)
    assert (prompt.status, prompt.attempts, prompt.last_error) == ("scheduled", 1, "fcm_timeout")
    assert (prompt.lease_owner, prompt.lease_until) == ("", None)
    assert prompt.next_attempt_at > now
    fcm.release_hangs()

    assert beat(prompt.next_attempt_at) == ["sent"]
    assert beat(prompt.next_attempt_at + delivery.send_lease() * 2) == []
    assert sorted(push.token for push in fcm.accepted_for(prompt.pk)) == tokens
    prompt = refreshed(prompt)
    assert (prompt.status, prompt.attempts) == ("sent", 2)


@pytest.fixture
def silent_token_endpoint():
    """A token endpoint that takes the connection and never answers; closed after 3 s, so a send
    that waits on google-auth's own 120 s timeout fails this test instead of hanging it."""
    listener = socket.create_server(("127.0.0.1", 0))
    closer = threading.Timer(3.0, listener.close)
    closer.start()
    host, port = listener.getsockname()[:2]
    yield f"http://{host}:{port}/token"
    closer.cancel()
    listener.close()


def test_a_hanging_token_endpoint_is_given_up_on_before_the_lease_ends(
    fcm, lease, schedule, cast, settings, silent_token_endpoint
):
    tokens = phones(cast.patient, 2)
    settings.FCM_TOKEN_URI = silent_token_endpoint
    now = timezone.now()
    prompt = make_prompt(schedule, now=now)
    started = time.monotonic()

    assert beat(now) == ["retry"]

    assert time.monotonic() - started < lease
    assert fcm.received == []
    prompt = refreshed(prompt)
    assert (prompt.status, prompt.last_error, prompt.lease_owner) == ("scheduled", "fcm_auth", "")

    settings.FCM_TOKEN_URI = f"{fcm.url}/token"  # the endpoint is back
    assert beat(prompt.next_attempt_at) == ["sent"]
    assert sorted(push.token for push in fcm.accepted_for(prompt.pk)) == tokens
