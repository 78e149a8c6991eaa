"""A private PostgreSQL cluster on a spare port, for tests that stop or restart the database.
Never the machine's shared server: initdb in a temporary directory, started and stopped with pg_ctl
as the `postgres` system user (PostgreSQL refuses to run as root)."""

import contextlib
import glob
import os
import shutil
import subprocess
import tempfile
import time

from tests.support.redis_server import spare_port


def _bin(name: str) -> str:
    found = shutil.which(name) or next(iter(sorted(glob.glob(f"/usr/lib/postgresql/*/bin/{name}"), reverse=True)), None)
    if not found:
        raise RuntimeError(f"{name} is not installed; .ci/run installs postgresql")
    return found


class PrivatePostgres:
    def __init__(self):
        self.port = spare_port()
        self.dir = tempfile.mkdtemp(prefix="private-pg-")
        self.data = os.path.join(self.dir, "data")
        self._as_postgres = ["runuser", "-u", "postgres", "--"] if os.geteuid() == 0 else []
        if self._as_postgres:
            shutil.chown(self.dir, "postgres", "postgres")
        self._run(_bin("initdb"), "-D", self.data, "-U", "postgres", "--auth=trust", "-E", "UTF8", "--no-sync")

    def _run(self, *args: str) -> None:
        subprocess.run([*self._as_postgres, *args], check=True, capture_output=True, timeout=120)

    def url(self, database: str = "postgres") -> str:
        return f"postgres://postgres@127.0.0.1:{self.port}/{database}"

    def start(self) -> None:
        options = f"-p {self.port} -k {self.dir} -c listen_addresses=127.0.0.1 -c max_connections=60"
        self._run(_bin("pg_ctl"), "-D", self.data, "-o", options, "-l", os.path.join(self.dir, "log"), "-w", "start")

    def stop(self, mode: str = "fast") -> None:
        """fast: what a restart or failover does (open connections are cut); immediate: a crash."""
        self._run(_bin("pg_ctl"), "-D", self.data, "-m", mode, "-w", "stop")

    def createdb(self, name: str) -> None:
        self._run(_bin("createdb"), "-h", "127.0.0.1", "-p", str(self.port), "-U", "postgres", name)

    def destroy(self) -> None:
        with contextlib.suppress(subprocess.CalledProcessError):  # already stopped
            self.stop("immediate")
        shutil.rmtree(self.dir, ignore_errors=True)


def wait_until(check, timeout: float = 30.0, interval: float = 0.1):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = check()
        if value:
            return value
        time.sleep(interval)
    raise AssertionError(f"not true within {timeout} s")
