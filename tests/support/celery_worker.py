"""A real Celery worker in a subprocess, and the test process's Celery app pointed at the same broker.

The worker runs the project's own `celery -A backend worker` against the pytest test database and
a private redis-server, so a test can SIGKILL it mid-send and start another, like a crashed
container being replaced.
"""

import contextlib
import os
import signal
import subprocess
import sys
import tempfile
import time
import urllib.parse
import uuid
from pathlib import Path

import kombu.pools
from django.db import connection

BASE_DIR = Path(__file__).resolve().parents[2]
READY_TIMEOUT_SECONDS = 30.0


def database_url_for_subprocess() -> str:
    """A DATABASE_URL naming the database pytest-django created (test_…), for a subprocess."""
    db = connection.settings_dict
    user = urllib.parse.quote(db.get("USER") or "", safe="")
    password = urllib.parse.quote(db.get("PASSWORD") or "", safe="")
    auth = f"{user}:{password}@" if password else (f"{user}@" if user else "")
    host = db.get("HOST") or "127.0.0.1"
    port = f":{db['PORT']}" if db.get("PORT") else ""
    return f"postgres://{auth}{host}{port}/{db['NAME']}"


class CeleryWorker:
    def __init__(
        self,
        *,
        broker_url: str,
        env: dict[str, str] | None = None,
        queues: str = "prompts,default",
        log_dir: Path | None = None,
    ):
        self.broker_url = broker_url
        self.queues = queues
        self.extra_env = dict(env or {})
        self.process: subprocess.Popen | None = None
        self._ready_offset = 0
        self.log_path = Path(tempfile.mkstemp(prefix="celery-worker-", suffix=".log", dir=log_dir)[1])
        self._log = None

    def _env(self) -> dict[str, str]:
        env = os.environ.copy()  # pytest-env's SECRET_KEY, FIELD_ENCRYPTION_KEYS, EMBEDDED=false, …
        env.update(
            DATABASE_URL=database_url_for_subprocess(),
            REDIS_URL=self.broker_url,
            DB_CONN_MAX_AGE="0",  # no idle connection may outlive the worker and block the test db's drop
            PYTHONUNBUFFERED="1",
        )
        env.update(self.extra_env)
        return env

    def start(self) -> "CeleryWorker":
        return self.launch().wait_ready()

    def launch(self) -> "CeleryWorker":
        """Starts the process without waiting (start two, then wait for both)."""
        self._log = open(self.log_path, "a")  # noqa: SIM115 - closed in stop()/kill()
        self._ready_offset = self.log_path.stat().st_size
        self.process = subprocess.Popen(
            [
                sys.executable,
                "-m",
                "celery",
                "-A",
                "backend",
                "worker",
                "-Q",
                self.queues,
                "--pool",
                "solo",
                "--concurrency",
                "1",
                "-n",
                f"test-{uuid.uuid4().hex[:8]}@%h",
                "--without-gossip",
                "--without-mingle",
                "--without-heartbeat",
                "--loglevel",
                "INFO",
            ],
            cwd=BASE_DIR,
            env=self._env(),
            stdout=self._log,
            stderr=subprocess.STDOUT,
        )
        return self

    def wait_ready(self, timeout: float = READY_TIMEOUT_SECONDS) -> "CeleryWorker":
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                raise RuntimeError(f"celery worker exited early:\n{self.log()}")
            if " ready." in self.log()[self._ready_offset :]:
                return self
            time.sleep(0.05)
        self.kill()
        raise RuntimeError(f"celery worker not ready in {timeout}s:\n{self.log()}")

    def log(self) -> str:
        return self.log_path.read_text(errors="replace")

    def kill(self) -> None:
        """SIGKILL: no warm shutdown, no ack, no cleanup, like a container killed by the OOM killer."""
        if self.process is not None and self.process.poll() is None:
            self.process.send_signal(signal.SIGKILL)
            self.process.wait(timeout=10)
        self._close_log()

    def stop(self) -> None:
        if self.process is not None and self.process.poll() is None:
            self.process.send_signal(signal.SIGTERM)
            try:
                self.process.wait(timeout=10)
            except subprocess.TimeoutExpired:
                self.process.send_signal(signal.SIGKILL)
                self.process.wait(timeout=10)
        self._close_log()

    def _close_log(self) -> None:
        if self._log is not None:
            self._log.close()
            self._log = None


def _reset_producers(app) -> None:
    # Celery caches its connection and producer pools, and kombu keeps them in process-wide
    # registries keyed by broker URL: close and forget them all, so the next publish connects anew.
    kombu.pools.reset()
    app._pool = None
    app.amqp._producer_pool = None


@contextlib.contextmanager
def celery_app_broker(url: str):
    """Points the test process's Celery app (what `publish` uses) at `url`, and back afterwards."""
    from backend.celery import app

    previous = app.conf.broker_url
    app.conf.broker_url = url
    _reset_producers(app)
    try:
        yield app
    finally:
        _reset_producers(app)
        app.conf.broker_url = previous
