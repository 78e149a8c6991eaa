"""Redis stopped while phones write (issue 7): cache, throttles and the Celery broker all live in
Redis, and none of them may cost a write. Entry writes keep answering 201 and their p99 stays
within 2× of what it was before; the alerts those writes fire are stored in the same transaction
(their notifications go out when Redis returns: tests/reminders/test_alert_notifications_integration.py,
and due prompts likewise: tests/reminders/test_delivery_integration.py)."""

import pytest

from journal.models import Alert, Entry
from tests.factories import ClinicFactory, enrolled_patient
from tests.faults.conftest import Phone, app_env, sign_in
from tests.support.celery_worker import database_url_for_subprocess

pytestmark = [pytest.mark.faults, pytest.mark.django_db(transaction=True)]

WARM_UP, MEASURED = 40, 300


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
