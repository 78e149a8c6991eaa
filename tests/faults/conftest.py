"""The app under fault: gunicorn in a subprocess, as in production, against servers the test owns
(a private PostgreSQL cluster, a private redis-server) so it can stop them without touching the
machine's own. A phone client posts entries and keeps what the server told it."""

import json
import os
import subprocess
import sys
import threading
import time
import urllib.error
import urllib.request
import uuid
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from bench.common import Gunicorn
from tests.support.redis_server import spare_port

ROOT = Path(__file__).resolve().parents[2]


def app_env(*, database_url: str, redis_url: str) -> dict[str, str]:
    env = os.environ.copy()  # pytest-env's SECRET_KEY, FIELD_ENCRYPTION_KEYS, EMBEDDED=false, …
    env.update(
        DATABASE_URL=database_url,
        REDIS_URL=redis_url,
        ALLOWED_HOSTS="127.0.0.1",
        PUBLIC_BASE_URL="http://127.0.0.1",
        DB_CONN_MAX_AGE="60",  # production's: a restart must be survived by connections kept open
        THROTTLE_USER_WRITE="100000/min",
        DJANGO_SETTINGS_MODULE="backend.settings",
        PYTHONUNBUFFERED="1",
    )
    return env


def run_manage(env: dict, *args: str, code: str | None = None) -> str:
    command = [sys.executable, "-c", code, *args] if code else [sys.executable, "manage.py", *args]
    done = subprocess.run(command, cwd=ROOT, env=env, capture_output=True, text=True, timeout=300, check=False)
    assert done.returncode == 0, done.stdout[-3000:] + done.stderr[-3000:]
    return done.stdout


SEED = """
import django, sys; django.setup()
from tests.factories import ClinicFactory, enrolled_patient
clinic = ClinicFactory()
for n in range(int(sys.argv[1])):
    print(enrolled_patient(clinic, display_name=f"Fault {n}").user.email)
"""


def seed_patients(env: dict, count: int = 1) -> list[str]:
    """Enrolled patients in the app's database (which may be the test's private one); their emails."""
    return run_manage(env, str(count), code=SEED).strip().splitlines()[-count:]


@pytest.fixture
def gunicorn_for(tmp_path):
    started: list[Gunicorn] = []

    def start(env: dict) -> str:
        port = spare_port()
        server = Gunicorn(env, port, 2, 4, "gthread", tmp_path / f"gunicorn-{port}.log")
        started.append(server)
        server.start()
        server.wait_ready()
        return f"http://127.0.0.1:{port}"

    yield start
    for server in started:
        server.stop()


def request(base: str, method: str, path: str, body: dict | None = None, token: str = "") -> tuple[int, dict]:
    data = json.dumps(body).encode() if body is not None else None
    req = urllib.request.Request(base + path, data=data, method=method)  # noqa: S310 - loopback
    req.add_header("Content-Type", "application/json")
    if token:
        req.add_header("Authorization", f"Bearer {token}")
    try:
        with urllib.request.urlopen(req, timeout=30) as response:  # noqa: S310 - loopback
            return response.status, json.loads(response.read() or b"{}") | {"_headers": dict(response.headers)}
    except urllib.error.HTTPError as error:
        payload = error.read()
        try:
            parsed = json.loads(payload)
        except ValueError:
            parsed = {"_raw": payload[:300].decode(errors="replace")}
        return error.code, parsed | {"_headers": dict(error.headers)}


def sign_in(base: str, email: str) -> str:
    from tests.factories import PASSWORD

    status, body = request(base, "POST", "/api/v1/auth/token/", {"email": email, "password": PASSWORD})
    assert status == 200, body
    return body["access"]


def entry(kind: str = "craving") -> dict:
    occurred = (datetime.now(UTC) - timedelta(minutes=5)).isoformat()
    if kind == "use":
        return {"id": str(uuid.uuid4()), "kind": "use", "substance": "alcohol", "occurred_at": occurred}
    return {"id": str(uuid.uuid4()), "kind": "craving", "craving": 3, "occurred_at": occurred}


@dataclass
class Phone:
    """Posts entries one after another and remembers each answer: (entry id, status, seconds, body,
    sent, answered), the last two on the monotonic clock."""

    base: str
    token: str
    answers: list[tuple[str, int, float, dict, float, float]] = field(default_factory=list)
    _stop: threading.Event = field(default_factory=threading.Event)
    _thread: threading.Thread | None = None

    def post(self, kind: str = "craving") -> tuple[int, dict]:
        item = entry(kind)
        sent = time.monotonic()
        status, body = request(self.base, "POST", "/api/v1/entries/", item, self.token)
        answered = time.monotonic()
        self.answers.append((item["id"], status, answered - sent, body, sent, answered))
        return status, body

    def start(self, pause: float = 0.02) -> None:
        def loop():
            n = 0
            while not self._stop.is_set():
                self.post("use" if n % 10 == 9 else "craving")
                n += 1
                time.sleep(pause)

        self._thread = threading.Thread(target=loop, daemon=True)
        self._thread.start()

    def stop(self) -> None:
        self._stop.set()
        if self._thread:
            self._thread.join(timeout=60)

    def accepted(self) -> list[str]:
        return [answer[0] for answer in self.answers if answer[1] in (200, 201)]
