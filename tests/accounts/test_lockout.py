"""Login lockout per account (SPEC §3): holds under a burst of parallel attempts, and never locks
a whole clinic out because its staff share one address."""

from concurrent.futures import ThreadPoolExecutor
from datetime import timedelta

import pytest
import time_machine
from django.conf import settings
from django.db import connection
from django.test import Client

from tests.factories import PASSWORD, ClinicianFactory


def _attempt(email: str, password: str) -> int:
    response = Client(REMOTE_ADDR="203.0.113.7").post(
        "/api/v1/auth/token/", {"email": email, "password": password}, content_type="application/json"
    )
    return response.status_code


def _attempt_in_thread(email: str, password: str) -> int:
    try:
        return _attempt(email, password)
    finally:
        connection.close()  # each thread has its own connection; give it back


@pytest.mark.django_db(transaction=True)
def test_burst_of_fifty_parallel_wrong_passwords_lets_only_the_limit_through():
    victim = ClinicianFactory(email="victim@example.org")
    colleague = ClinicianFactory(email="colleague@example.org", clinic=victim.clinic)
    with ThreadPoolExecutor(max_workers=25) as pool:
        codes = list(pool.map(lambda _: _attempt_in_thread(victim.email, "wrong-guess"), range(50)))
    assert codes.count(401) == settings.LOGIN_MAX_FAILURES
    assert codes.count(429) == 50 - settings.LOGIN_MAX_FAILURES

    # Locked: even the right password waits, and the answer says how long.
    locked = Client().post(
        "/api/v1/auth/token/", {"email": victim.email, "password": PASSWORD}, content_type="application/json"
    )
    assert locked.status_code == 429
    assert 1 <= int(locked["Retry-After"]) <= settings.LOGIN_LOCKOUT_SECONDS
    assert locked.json()["error"]["code"] == "throttled"

    # Same address, other account: not locked out.
    assert _attempt(colleague.email, PASSWORD) == 200

    with time_machine.travel(timedelta(seconds=settings.LOGIN_LOCKOUT_SECONDS + 1)):
        assert _attempt(victim.email, PASSWORD) == 200


@pytest.mark.django_db
def test_success_resets_the_failure_count():
    user = ClinicianFactory(email="forgetful@example.org")
    for _ in range(settings.LOGIN_MAX_FAILURES - 1):
        assert _attempt(user.email, "nope") == 401
    assert _attempt(user.email, PASSWORD) == 200
    for _ in range(settings.LOGIN_MAX_FAILURES - 1):
        assert _attempt(user.email, "nope") == 401
    assert _attempt(user.email, PASSWORD) == 200


@pytest.mark.django_db
def test_unknown_addresses_lock_out_the_same_way():
    codes = [_attempt("nobody@example.org", "x") for _ in range(settings.LOGIN_MAX_FAILURES + 1)]
    assert codes == [401] * settings.LOGIN_MAX_FAILURES + [429]
