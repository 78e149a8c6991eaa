"""`make run`: the whole system on one machine with nothing to install but Python.

Migrates the SQLite database, seeds the demo clinic on first start, then runs the web server,
one Celery worker and one beat side by side on kombu's filesystem broker. Ctrl-C (or SIGTERM)
stops all three; if one of them dies, the others are stopped too rather than limping on.
"""

import os
import signal
import subprocess
import sys
import time

from django.conf import settings
from django.core.management import call_command
from django.core.management.base import BaseCommand, CommandError

from backend.management.commands.seed_demo import demo_logins


class Command(BaseCommand):
    help = "Run web + worker + beat on the embedded default (SQLite, filesystem broker)."

    def add_arguments(self, parser):
        parser.add_argument("--host", default=os.environ.get("HOST", "127.0.0.1"))
        parser.add_argument("--port", type=int, default=int(os.environ.get("PORT", "8000")))

    def handle(self, *args, host: str, port: int, **options):
        if not settings.EMBEDDED:
            raise CommandError("run_embedded is the embedded demo; set EMBEDDED=true (make run does).")
        call_command("migrate", interactive=False, verbosity=0)
        call_command("seed_demo")
        python = sys.executable
        commands = {
            # No gunicorn access log: its lines are not JSON and carry query strings, an enrollment
            # code in /api/v1/consent/?code= among them. The app logs every request, path only.
            "web": [
                python,
                "-m",
                "gunicorn",
                "backend.wsgi",
                "--bind",
                f"{host}:{port}",
                "--workers",
                "2",
                "--threads",
                "4",
                "--graceful-timeout",
                "5",
            ],
            "worker": [
                python,
                "-m",
                "celery",
                "-A",
                "backend",
                "worker",
                "--loglevel",
                "INFO",
                "--queues",
                "alerts_urgent,prompts,default",
                "--concurrency",
                "2",
                "--without-gossip",
                "--without-mingle",
            ],
            "beat": [
                python,
                "-m",
                "celery",
                "-A",
                "backend",
                "beat",
                "--loglevel",
                "INFO",
                "--schedule",
                str(settings.VAR_DIR / "celerybeat-schedule"),
            ],
        }
        processes = {name: subprocess.Popen(argv, env=os.environ.copy()) for name, argv in commands.items()}
        stopping = False

        def stop(*_):
            nonlocal stopping
            stopping = True

        signal.signal(signal.SIGINT, stop)
        signal.signal(signal.SIGTERM, stop)

        base = f"http://{host}:{port}"
        lines = [
            "",
            f"Interlude is running at {base}/  (dashboard {base}/dashboard/, API docs {base}/api/docs/)",
            "Demo logins:",
            *[f"  {role:<13} {email}  /  {password}" for role, email, password in demo_logins()],
            "Press Ctrl-C to stop web, worker and beat.",
            "",
        ]
        self.stdout.write("\n".join(lines))
        self.stdout.flush()

        exit_code = 0
        while not stopping:
            for name, process in processes.items():
                if process.poll() is not None:
                    self.stderr.write(f"{name} exited with {process.returncode}; stopping the others.")
                    exit_code, stopping = 1, True
                    break
            time.sleep(0.5)
        self._stop_all(processes)
        if exit_code:
            raise CommandError("a process died", returncode=exit_code)
        self.stdout.write("Stopped.")

    @staticmethod
    def _stop_all(processes: dict[str, subprocess.Popen]) -> None:
        for process in processes.values():
            if process.poll() is None:
                process.send_signal(signal.SIGTERM)
        deadline = time.monotonic() + 15
        for process in processes.values():
            try:
                process.wait(timeout=max(0.1, deadline - time.monotonic()))
            except subprocess.TimeoutExpired:
                process.kill()
                process.wait()
