"""TOTP for the two-factor tests (API sign-in, dashboard sign-in, lockout bursts, the browser): an
authenticator app's device row and the code it would show now."""

from datetime import UTC, datetime

from django_otp.oath import totp
from django_otp.plugins.otp_totp.models import TOTPDevice

# A frozen clock 5 s into a 30-second time step: a code made now is still valid when the server checks it.
NOW = datetime(2026, 6, 15, 16, 0, 5, tzinfo=UTC)


def totp_device(user, confirmed: bool = True) -> TOTPDevice:
    return TOTPDevice.objects.create(user=user, name="phone", confirmed=confirmed)


def totp_code(device: TOTPDevice) -> str:
    """The device's current code, made with its own step, origin and digits."""
    return f"{totp(device.bin_key, step=device.step, t0=device.t0, digits=device.digits):0{device.digits}d}"


def key_code(key: bytes) -> str:
    """The current code for a bare key (as read from a set-up QR code), with the app defaults."""
    return f"{totp(key):06d}"
