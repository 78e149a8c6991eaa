"""Redis stopped while phones write (issue 7): cache, throttles and the Celery broker all live in
Redis, and none of them may cost a write. Entry writes keep answering 201 and their p99 stays
within 2× of what it was before; the alerts those writes fire are stored in the same transaction
(their notifications go out when Redis returns: tests/reminders/test_alert_notifications_integration.py,
and due prompts likewise: tests/reminders/test_delivery_integration.py)."""

import time

import pytest

from journal.models import Alert, Entry
from tests.factories import ClinicFactory, enrolled_patient
from tests.faults.conftest import Phone, app_env, sign_in
from tests.support.celery_worker import database_url_for_subprocess

pytestmark = [pytest.mark.faults, pytest.mark.django_db(transaction=True)]

WARM_UP, MEASURED = 40, 300
CROWD, WINDOW_S = 12, 8.0  # phones writing at once; seconds before, during and after the outage


def _p99(seconds: list[float]) -> float:
    ordered = sorted(seconds)
    return ordered[int(len(ordered) * 0.99) - 1]


def _burst(phone: Phone, count: int) -> list[tuple[int, float]]:
    results = []
    for n in range(count):
        status, _ = phone.post("use" if n % 10 == 9 else "craving")  # a use fires an alert: a publish
        results.append((status, phone.answers[-1][2]))
    return results


def test_entry_writes_keep_answering_at_the_same_speed_with_redis_stopped(private_redis, gunicorn_for):
    patient = enrolled_patient(ClinicFactory(), display_name="Under load")
    env = app_env(database_url=database_url_for_subprocess(), redis_url=private_redis.url)
    base = gunicorn_for(env)
    phone = Phone(base, sign_in(base, patient.user.email))
    _burst(phone, WARM_UP)
    before = _burst(phone, MEASURED)
    private_redis.stop()
    during = _burst(phone, MEASURED)

    assert {status for status, _ in before + during} == {201}
    p99_before, p99_during = _p99([s for _, s in before]), _p99([s for _, s in during])
    report = f"p99 {p99_during * 1000:.1f} ms with Redis stopped, {p99_before * 1000:.1f} ms before"
    assert p99_during <= 2 * p99_before, report
    stored = Entry.objects.filter(patient=patient)
    assert stored.filter(pk__in=phone.accepted()).count() == len(phone.accepted()) == WARM_UP + 2 * MEASURED
    assert Alert.objects.filter(patient=patient, rule="use_reported").exists()


def test_a_crowd_of_phones_writes_through_redis_stopping_and_coming_back(private_redis, gunicorn_for):
    """The same promise with twelve phones writing at once (every request queues behind others in
    gunicorn's 8 threads, as under real load): every write a 201, through the outage and after."""
    clinic = ClinicFactory()
    patients = [enrolled_patient(clinic, display_name=f"Crowd {n}") for n in range(CROWD)]
    env = app_env(database_url=database_url_for_subprocess(), redis_url=private_redis.url)
    base = gunicorn_for(env)
    phones = [Phone(base, sign_in(base, patient.user.email)) for patient in patients]
    for phone in phones:
        phone.start(pause=0.05)
    time.sleep(WINDOW_S / 2)  # warm-up: connections, caches
    measuring = time.monotonic()
    time.sleep(WINDOW_S)
    private_redis.stop()
    stopped = time.monotonic()
    time.sleep(WINDOW_S)
    private_redis.start()
    returned = time.monotonic()
    time.sleep(WINDOW_S / 2)
    for phone in phones:
        phone.stop()

    answers = [answer for phone in phones for answer in phone.answers]
    assert {answer[1] for answer in answers} == {201}, sorted({answer[1] for answer in answers})
    # By when each write was sent: before the outage, during it, after Redis came back.
    before = [answer[2] for answer in answers if measuring <= answer[4] < stopped]
    during = [answer[2] for answer in answers if stopped <= answer[4] < returned]
    after = [answer for answer in answers if answer[4] >= returned]
    assert len(before) >= 100 and len(during) >= 100 and after, (len(before), len(during), len(after))
    p99_before, p99_during = _p99(before), _p99(during)
    report = f"p99 {p99_during * 1000:.1f} ms with Redis stopped, {p99_before * 1000:.1f} ms before"
    assert p99_during <= 2 * p99_before, report
    accepted = [entry_id for phone in phones for entry_id in phone.accepted()]
    assert Entry.objects.filter(pk__in=accepted).count() == len(accepted) == len(answers)
    # Every phone's uses fired their alert in the write's own transaction, Redis or not.
    assert Alert.objects.filter(patient__in=patients, rule="use_reported").count() == CROWD
