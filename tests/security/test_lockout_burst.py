"""Login lockout under real parallel bursts (SPEC §3, §4). tests/accounts/test_lockout.py holds a
burst of wrong passwords to exactly the limit and keeps a colleague at the same address signing
in; these are the other angles: a burst that mixes the right password with wrong ones, and a
burst against the two-factor step, whose wrong codes use up the same allowance."""

from concurrent.futures import ThreadPoolExecutor
from datetime import timedelta

import pytest
import time_machine
from django.conf import settings
from django.db import connection
from django.test import Client
from django_otp.plugins.otp_totp.models import TOTPDevice

from tests.factories import PASSWORD, ClinicianFactory
from tests.totp import totp_code

ADDRESS = "203.0.113.9"  # the whole clinic behind one NAT


def _attempt(email: str, password: str, otp: str | None = None) -> int:
    body = {"email": email, "password": password, **({"otp": otp} if otp is not None else {})}
    try:
        response = Client(REMOTE_ADDR=ADDRESS).post("/api/v1/auth/token/", body, content_type="application/json")
        return response.status_code
    finally:
        connection.close()  # each thread has its own connection; give it back


def _burst(attempts: list[tuple]) -> list[int]:
    with ThreadPoolExecutor(max_workers=20) as pool:
        return list(pool.map(lambda args: _attempt(*args), attempts))


def _wrong_code(device: TOTPDevice) -> str:
    return f"{(int(totp_code(device)) + 500_000) % 1_000_000:06d}"


@pytest.mark.django_db(transaction=True)
def test_a_burst_mixing_right_and_wrong_passwords_never_lets_more_guesses_through_than_allowed():
    user = ClinicianFactory(email="mixed@example.org")
    attempts = [(user.email, PASSWORD if i % 5 == 0 else f"guess-{i}") for i in range(40)]
    codes = _burst(attempts)

    assert set(codes) <= {200, 401, 429}, codes
    right = [code for (_, password), code in zip(attempts, codes, strict=True) if password == PASSWORD]
    wrong = [code for (_, password), code in zip(attempts, codes, strict=True) if password != PASSWORD]
    assert 401 not in right and 200 not in wrong
    # Only a success resets the count: between two successes at most the limit of guesses is checked.
    assert wrong.count(401) <= settings.LOGIN_MAX_FAILURES * (1 + right.count(200)), codes
    assert codes.count(429) > 0, codes


@pytest.mark.django_db(transaction=True)
def test_a_burst_of_wrong_two_factor_codes_locks_the_account_like_wrong_passwords(settings):
    settings.DASHBOARD_REQUIRE_2FA = True
    victim = ClinicianFactory(email="totp-victim@example.org")
    colleague = ClinicianFactory(email="totp-colleague@example.org", clinic=victim.clinic)
    device = TOTPDevice.objects.create(user=victim, name="phone", confirmed=True)
    colleague_device = TOTPDevice.objects.create(user=colleague, name="phone", confirmed=True)

    # The right password with wrong codes, and wrong passwords, in one burst against one account.
    attempts = [(victim.email, PASSWORD, _wrong_code(device)) for _ in range(30)]
    attempts += [(victim.email, f"guess-{i}", "000000") for i in range(10)]
    codes = _burst(attempts)

    assert set(codes) <= {401, 429}, codes
    assert codes.count(401) <= settings.LOGIN_MAX_FAILURES, codes

    # Past django-otp's own back-off for the device (seconds), inside the account's lockout
    # (minutes): the right password with the right code still waits; the answer says how long.
    with time_machine.travel(timedelta(seconds=120)):
        locked = Client(REMOTE_ADDR=ADDRESS).post(
            "/api/v1/auth/token/",
            {"email": victim.email, "password": PASSWORD, "otp": totp_code(device)},
            content_type="application/json",
        )
        assert locked.status_code == 429, locked.content
        assert locked.json()["error"]["code"] == "throttled"
        assert int(locked["Retry-After"]) > 120

        # Same address, another account: not locked out.
        assert _attempt(colleague.email, PASSWORD, totp_code(colleague_device)) == 200

    with time_machine.travel(timedelta(seconds=settings.LOGIN_LOCKOUT_SECONDS + 60)):
        device.refresh_from_db()
        assert _attempt(victim.email, PASSWORD, totp_code(device)) == 200
