"""What reaches stdout holds no exception text, no query string and no gunicorn access line: an
email address, a token, an enrollment code or a note must never reach a log (SPEC §13)."""

import io
import json
import logging
import signal
import sys

import pytest
from celery import shared_task
from django.core.management import CommandError, call_command
from django.test import Client

from backend.jsonlog import JsonFormatter

SECRET = "pat.someone@example.org wrote: relapsed on friday"


@shared_task
def _fails_quoting_its_input():
    raise ValueError(f"could not handle {SECRET!r}")


def test_an_exception_text_a_library_put_into_the_message_is_replaced_by_its_type(log_lines):
    # Celery's tracer logs "Task …[id] raised unexpected: <repr of the exception>", with the exception.
    _fails_quoting_its_input.apply()
    lines = log_lines()
    assert "pat.someone" not in json.dumps(lines) and "relapsed" not in json.dumps(lines)
    failure = next(line for line in lines if line["logger"] == "celery.app.trace")
    assert failure["message"].endswith("raised unexpected: ValueError")
    assert failure["exc_type"] == "builtins.ValueError"


def test_a_message_without_an_exception_is_left_alone(log_lines):
    logging.getLogger("interlude.test").warning("sweep took %s s", 3)
    try:
        raise KeyError
    except KeyError:
        logging.getLogger("interlude.test").exception("lookup failed")  # an empty exception text
    assert [line["message"] for line in log_lines()] == ["sweep took 3 s", "lookup failed"]


@pytest.mark.django_db
def test_the_request_line_logs_the_path_without_the_query_string(log_lines):
    Client().get("/api/v1/consent/", {"code": "QWER-TYUP-ASDF"})
    request_line = next(line for line in log_lines() if line["logger"] == "interlude.request")
    assert request_line["path"] == "/api/v1/consent/"
    assert "QWER-TYUP-ASDF" not in json.dumps(log_lines())


def test_make_run_starts_gunicorn_without_an_access_log(settings, monkeypatch):
    settings.EMBEDDED = True
    started = {}

    class Exited:
        returncode = 0

        def __init__(self, argv, **kwargs):
            started[argv[2]] = argv

        def poll(self):
            return 0  # exits at once: run_embedded stops and reports it

        def wait(self, timeout=None):
            return 0

    commands = "backend.management.commands.run_embedded"
    monkeypatch.setattr(f"{commands}.subprocess.Popen", Exited)
    monkeypatch.setattr(f"{commands}.call_command", lambda *args, **kwargs: None)
    monkeypatch.setattr(f"{commands}.demo_logins", list)
    handlers = {sig: signal.getsignal(sig) for sig in (signal.SIGINT, signal.SIGTERM)}
    try:
        with pytest.raises(CommandError):
            call_command("run_embedded", stdout=io.StringIO(), stderr=io.StringIO())
    finally:
        for sig, handler in handlers.items():
            signal.signal(sig, handler)
    web = started["gunicorn"]
    assert "backend.wsgi" in web
    assert not any(arg.startswith("--access-log") for arg in web)


def test_a_short_exception_text_leaves_the_rest_of_the_line_alone():
    try:
        raise KeyError(0)
    except KeyError:
        exc_info = sys.exc_info()
    record = logging.getLogger("t").makeRecord(
        "t", logging.ERROR, __file__, 1, "task 10 failed: %r", (KeyError(0),), exc_info
    )
    assert json.loads(JsonFormatter().format(record))["message"] == "task 10 failed: KeyError"  # not "task 1KeyError"
