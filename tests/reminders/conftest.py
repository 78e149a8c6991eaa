"""Loopback servers speaking the real protocols, with Django pointed at them for one test."""

import pytest

from reminders.transports import fcm as fcm_transport
from tests.support.fcm_server import FcmLoopback
from tests.support.smtp_server import SmtpLoopback


@pytest.fixture
def fcm(tmp_path, settings):
    server = FcmLoopback(tmp_path).start()
    for name, value in server.settings().items():
        setattr(settings, name, float(value) if name == "FCM_TIMEOUT_SECONDS" else value)
    fcm_transport.credentials_forget()
    yield server
    server.stop()
    fcm_transport.credentials_forget()


@pytest.fixture
def smtp(settings):
    server = SmtpLoopback().start()
    for name, value in server.django_settings().items():
        setattr(settings, name, value)
    yield server
    server.stop()
