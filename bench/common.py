"""What every part of `make bench` shares: paths, the production-shaped environment, running
Django in a subprocess, gunicorn, CPU and memory readings from /proc, and latency summaries."""

from __future__ import annotations

import contextlib
import json
import math
import os
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
OUT = ROOT / "var" / "bench"

# The settings variables this run sets or must not inherit from the caller's shell.
_SETTINGS_VARS = (
    "EMBEDDED", "DEBUG", "VAR_DIR", "SECRET_KEY", "DATABASE_URL", "REDIS_URL", "FIELD_ENCRYPTION_KEYS",
    "ALLOWED_HOSTS", "PUBLIC_BASE_URL", "CSRF_TRUSTED_ORIGINS", "EMAIL_URL", "DEFAULT_FROM_EMAIL",
    "JWT_SIGNING_KEY", "MIN_APP_VERSION", "TRUSTED_PROXY_COUNT", "SECURE_SSL_REDIRECT", "SECURE_HSTS_SECONDS",
    "LOGIN_MAX_FAILURES", "LOGIN_LOCKOUT_SECONDS", "THROTTLE_USER_WRITE", "THROTTLE_ENROLLMENT",
    "THROTTLE_PASSWORD_RESET", "REDIS_SOCKET_TIMEOUT", "LOG_LEVEL", "DB_CONN_MAX_AGE", "DB_CONNECT_TIMEOUT",
    "PASSWORD_HASHERS", "DJANGO_SETTINGS_MODULE", "WEB_CONCURRENCY", "GUNICORN_CMD_ARGS", "DASHBOARD_REQUIRE_2FA",
)  # fmt: skip


def percentile(values: list[float], q: float) -> float | None:
    """Linear interpolation between closest ranks (q in 0..1)."""
    if not values:
        return None
    ordered = sorted(values)
    k = (len(ordered) - 1) * q
    low = math.floor(k)
    high = min(low + 1, len(ordered) - 1)
    return ordered[low] + (ordered[high] - ordered[low]) * (k - low)


def summary_ms(seconds: list[float]) -> dict:
    ms = [s * 1000 for s in seconds]
    return {
        "count": len(ms),
        "p50_ms": percentile(ms, 0.50),
        "p95_ms": percentile(ms, 0.95),
        "p99_ms": percentile(ms, 0.99),
        "max_ms": max(ms) if ms else None,
    }


def spare_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def say(message: str) -> None:
    print(f"bench: {message}", file=sys.stderr, flush=True)


def bench_env(
    port: int, field_key: str, database: str = "interlude_bench", redis_url: str = "redis://127.0.0.1:6379/6"
) -> dict[str, str]:
    env = {key: value for key, value in os.environ.items() if key not in _SETTINGS_VARS}
    env.update(
        DATABASE_URL=f"postgres://postgres@127.0.0.1:5432/{database}",
        REDIS_URL=redis_url,
        SECRET_KEY="bench-only-secret-key-" + "b3nch" * 8,  # 62 characters, never used outside this run
        FIELD_ENCRYPTION_KEYS=field_key,
        SECURE_SSL_REDIRECT="false",
        ALLOWED_HOSTS="127.0.0.1,localhost",
        PUBLIC_BASE_URL=f"http://127.0.0.1:{port}",
        THROTTLE_USER_WRITE="1000000/min",  # the per-user write limit would otherwise cap the load
        DASHBOARD_REQUIRE_2FA="false",  # the load's clinicians sign in to the API with a password alone
        EMAIL_URL="console://",
        VAR_DIR=str(OUT / "var"),
        DJANGO_SETTINGS_MODULE="backend.settings",
    )
    return env


def run_django(env: dict, args: list[str], stdin: str | None = None) -> str:
    done = subprocess.run(
        [sys.executable, *args], cwd=ROOT, env=env, input=stdin, capture_output=True, text=True, check=False
    )
    if done.returncode != 0:
        sys.stderr.write(done.stdout[-4000:] + done.stderr[-4000:])
        raise SystemExit(f"bench: `{' '.join(args[:3])}` failed (exit {done.returncode})")
    return done.stdout


class Gunicorn:
    def __init__(self, env: dict, port: int, workers: int, threads: int, worker_class: str, log_path: Path):
        self.env, self.port, self.log_path = env, port, log_path
        self.args = [
            sys.executable, "-m", "gunicorn", "backend.wsgi", "--bind", f"127.0.0.1:{port}",
            "--workers", str(workers), "--threads", str(threads), "--worker-class", worker_class,
            "--timeout", "30", "--graceful-timeout", "25",
        ]  # fmt: skip
        self.proc: subprocess.Popen | None = None

    def start(self) -> None:
        self._log = self.log_path.open("w")
        # Its own session: a Ctrl-C in the terminal reaches this driver, which then stops gunicorn
        # in order instead of both dying at once.
        self.proc = subprocess.Popen(self.args, cwd=ROOT, env=self.env, stdout=self._log, stderr=subprocess.STDOUT,
                                     start_new_session=True)  # fmt: skip

    def wait_ready(self, timeout: float = 60.0) -> None:
        import urllib.request

        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise SystemExit(f"bench: gunicorn exited with {self.proc.returncode}; see {self.log_path}")
            try:
                with urllib.request.urlopen(f"http://127.0.0.1:{self.port}/readyz", timeout=2) as response:
                    if response.status == 200:
                        return
            except OSError:
                pass
            time.sleep(0.3)
        raise SystemExit(f"bench: gunicorn did not become ready in {timeout:.0f} s; see {self.log_path}")

    def pids(self) -> list[int]:
        if self.proc is None:
            return []
        found = subprocess.run(["pgrep", "-P", str(self.proc.pid)], capture_output=True, text=True, check=False)
        return [self.proc.pid, *(int(pid) for pid in found.stdout.split())]

    def stop(self) -> None:
        if self.proc is None:
            return
        if self.proc.poll() is None:
            # A second Ctrl-C must not cut this short and leave gunicorn running.
            signal.signal(signal.SIGINT, signal.SIG_IGN)
            signal.signal(signal.SIGTERM, signal.SIG_IGN)
            self.proc.send_signal(signal.SIGTERM)  # graceful: workers finish what they hold, then exit
            try:
                self.proc.wait(timeout=30)
            except subprocess.TimeoutExpired:
                with contextlib.suppress(ProcessLookupError):
                    os.killpg(self.proc.pid, signal.SIGKILL)  # the group this driver started, and only it
                self.proc.wait(timeout=5)
        self._log.close()


_TICKS = os.sysconf("SC_CLK_TCK")


def _process_cpu(pid: int) -> float | None:
    try:
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    except (OSError, IndexError):
        return None
    return (int(fields[11]) + int(fields[12])) / _TICKS  # utime + stime


def _machine_cpu() -> tuple[float, float]:
    """(busy, total) CPU seconds of the whole machine since boot."""
    values = [int(v) for v in Path("/proc/stat").read_text().splitlines()[0].split()[1:]]
    total = sum(values[:8])  # user nice system idle iowait irq softirq steal
    return (total - values[3] - values[4]) / _TICKS, total / _TICKS


def machine_busy_cores(seconds: float = 1.0) -> float:
    busy_before, _ = _machine_cpu()
    time.sleep(seconds)
    busy_after, _ = _machine_cpu()
    return (busy_after - busy_before) / seconds


def wait_for_quiet(limit_s: float = 90.0) -> float:
    """Waits (up to limit_s) for other work on the machine to stop; returns the last busy figure."""
    deadline = time.monotonic() + limit_s
    busy = machine_busy_cores()
    if busy > 0.3:
        say(f"the machine is busy ({busy:.1f} cores in use by other processes); waiting up to {limit_s:.0f} s")
    while busy > 0.3 and time.monotonic() < deadline:
        busy = machine_busy_cores(2.0)
    return busy


def server_durations(log_path: Path) -> dict[str, float]:
    """request id → duration_ms from the app's JSON request log (RequestIdMiddleware, the outermost
    middleware: routing, auth, throttle, view, serializer, rendering; not gunicorn's socket I/O)."""
    durations = {}
    for line in log_path.read_text(errors="replace").splitlines():
        if '"request_id": "bench-' not in line:
            continue
        with contextlib.suppress(ValueError):
            record = json.loads(line)
            if record.get("message") == "request" and "duration_ms" in record:
                durations[record["request_id"]] = record["duration_ms"]
    return durations
