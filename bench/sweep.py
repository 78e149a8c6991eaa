"""The reminders sweep budget (SPEC §7, issue 4): 100,000 prompts due in one minute are claimed and
enqueued within 60 s by the one sweeper, and a real Celery worker drains them to FCM.

One run, start to finish (the quick run uses 2,000 prompts, due a minute ago):

1. drops and recreates the `interlude_bench_sweep` database (no other database is touched),
   migrates it and loads `manage.py generate_load --patients 1000 --days 2 --prompts-due N` with
   the due minute starting 30 s ahead, in subprocesses with the caller's production-shaped
   environment; Redis database 7 only, flushed first;
2. waits until the whole minute has passed, then runs the real sweep in its own process
   (`python -m bench.sweep _sweep`): `prompts_sweep` with `reminders.tasks._publish_deliveries`, so
   every chunk goes to the Redis broker exactly as beat's `sweep_due_prompts` sends it, called again
   until nothing is left to claim (each call is what one beat tick does; a call stops after
   SWEEP_TIME_BUDGET_SECONDS). That process times every claim batch and every publish, samples its
   own RSS, and takes `EXPLAIN (ANALYZE, BUFFERS)` of the claim query built by the service's own
   queryset (`prompts_claimable`) before the sweep (the first batch) and after it (a batch that
   has to step over every already-claimed row);
3. starts the loopback FCM server (tests/support/fcm_server.py) in this process and a real
   `celery -A backend worker` (the production queues, prefork, concurrency 2) in its own session,
   and polls the database until no prompt is left `scheduled`; counts the messages FCM received
   per prompt id (a prompt received twice is a duplicate: must be 0); stops the worker (SIGTERM,
   SIGKILL to its process group after 30 s) and the server, also on an exception or Ctrl-C.

`run()` returns every figure as a dict; `python -m bench.sweep [--quick]` prints it as JSON.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import re
import resource
import shutil
import signal
import subprocess
import sys
import tempfile
import threading
import time
from collections import Counter
from datetime import UTC, datetime, timedelta
from pathlib import Path

from bench.common import (
    OUT,
    ROOT,
    _machine_cpu,
    _process_cpu,
    bench_env,
    run_django,
    say,
    spare_port,
    wait_for_quiet,
)

SWEEP_DB = "interlude_bench_sweep"
SWEEP_REDIS_URL = "redis://127.0.0.1:6379/7"
BUDGET_SECONDS = 60.0
PATIENTS = 1000
LEAD_SECONDS = 30  # the due minute starts this far ahead of the load (which takes ~3-10 s)
WORKER_CONCURRENCY = 2
WORKER_QUEUES = "alerts_urgent,prompts,default"  # as docker-compose's worker
RSS_SAMPLE_SECONDS = 0.1
RSS_MILESTONE = 10_000  # RSS recorded every this many prompts published


# --- The sweeping process (python -m bench.sweep _sweep) ------------------------------------------


def _rss_mb() -> float:
    with open("/proc/self/statm") as handle:
        return int(handle.read().split()[1]) * os.sysconf("SC_PAGE_SIZE") / 2**20


def _sweeper_main() -> None:
    """Runs in its own process with the bench environment: the real sweep, instrumented."""
    import django

    django.setup()
    from django.conf import settings
    from django.db import connection, transaction
    from django.test.utils import CaptureQueriesContext
    from django.utils import timezone

    from reminders import tasks
    from reminders.models import Prompt, PromptStatus
    from reminders.services import delivery
    from reminders.services.prompts import prompts_expire

    batch = settings.PROMPT_SWEEP_BATCH

    def explain(now: datetime) -> dict:
        """EXPLAIN (ANALYZE, BUFFERS) of one claim batch's SELECT, from the service's queryset, in a
        transaction rolled back afterwards (FOR UPDATE really locks while it runs)."""
        with transaction.atomic(), CaptureQueriesContext(connection) as captured:
            plan = delivery.prompts_claimable(now=now, limit=batch).explain(analyze=True, buffers=True)
            transaction.set_rollback(True)
        sql = captured.captured_queries[-1]["sql"] if captured.captured_queries else ""
        return {"plan": plan, "sql": sql}

    samples: list[tuple[float, float]] = []
    stop = threading.Event()
    t0 = time.perf_counter()

    def sample() -> None:
        while not stop.wait(RSS_SAMPLE_SECONDS):
            samples.append((time.perf_counter() - t0, _rss_mb()))

    rss_after_setup = _rss_mb()
    explain_first = explain(timezone.now())

    batches: list[dict] = []
    publishes: list[float] = []
    milestones: list[dict] = []
    published = 0
    claim_batch = delivery._claim_batch

    def timed_claim_batch(*, now: datetime, limit: int, **lease) -> list:
        started = time.perf_counter()
        ids = claim_batch(now=now, limit=limit, **lease)
        batches.append({"seconds": time.perf_counter() - started, "claimed": len(ids), "rss_mb": _rss_mb()})
        return ids

    def timed_publish(chunk: list[str]) -> bool:
        nonlocal published
        started = time.perf_counter()
        ok = tasks._publish_deliveries(chunk)  # what sweep_due_prompts hands prompts_sweep
        publishes.append(time.perf_counter() - started)
        if ok:
            before, published = published, published + len(chunk)
            if published // RSS_MILESTONE > before // RSS_MILESTONE:
                milestones.append({"published": published, "rss_mb": _rss_mb(), "t_s": time.perf_counter() - t0})
        return ok

    delivery._claim_batch = timed_claim_batch
    sampler = threading.Thread(target=sample, daemon=True)
    sweeps: list[dict] = []
    cpu_before = resource.getrusage(resource.RUSAGE_SELF)
    rss_before = _rss_mb()
    t0 = time.perf_counter()
    sampler.start()
    try:
        while True:
            started = time.perf_counter()
            now = timezone.now()
            # sweep_due_prompts, step by step: the sweep, then the expiry of sent prompts.
            result = delivery.prompts_sweep(now=now, publish=timed_publish)
            prompts_expire(now=now)
            sweeps.append(
                {"seconds": time.perf_counter() - started, "claimed": result.claimed, "published": result.published,
                 "expired": result.expired, "publish_failed": result.publish_failed}
            )  # fmt: skip
            if result.publish_failed or result.claimed == 0:
                break
            if sweeps[-1]["seconds"] < delivery.SWEEP_TIME_BUDGET_SECONDS:
                break  # it ended on a short batch: nothing left to claim
    finally:
        stop.set()
        sampler.join()
        delivery._claim_batch = claim_batch
    total = time.perf_counter() - t0
    cpu_after = resource.getrusage(resource.RUSAGE_SELF)
    rss_end = _rss_mb()
    left = Prompt.objects.filter(status=PromptStatus.SCHEDULED, lease_until__isnull=True).count()
    explain_after = explain(timezone.now())
    claim_seconds = sum(b["seconds"] for b in batches)
    print(
        json.dumps(
            {
                "sweep_seconds": total,
                "sweeps": sweeps,
                "claimed": sum(s["claimed"] for s in sweeps),
                "published": published,
                "left_unclaimed": left,
                "batch_size": batch,
                "batches": len(batches),
                "batch_seconds": [round(b["seconds"], 4) for b in batches],
                "batch_claimed": [b["claimed"] for b in batches],
                "claim_seconds_total": claim_seconds,
                "publish_seconds_total": sum(publishes),
                "publishes": len(publishes),
                "cpu_user_s": cpu_after.ru_utime - cpu_before.ru_utime,
                "cpu_system_s": cpu_after.ru_stime - cpu_before.ru_stime,
                "maxrss_mb": cpu_after.ru_maxrss / 1024,  # kilobytes on Linux
                "rss_after_setup_mb": rss_after_setup,
                "rss_before_sweep_mb": rss_before,
                "rss_end_mb": rss_end,
                "rss_first_batch_mb": batches[0]["rss_mb"] if batches else None,
                "rss_last_batch_mb": batches[-1]["rss_mb"] if batches else None,
                "rss_samples_max_mb": max((rss for _, rss in samples), default=rss_end),
                "rss_milestones": milestones,
                "explain_first": explain_first,
                "explain_after": explain_after,
            }
        )
    )


def _beat_tick_main() -> None:
    """One beat tick during the drain: exactly the task beat runs, called in-process."""
    import django

    django.setup()
    from reminders.tasks import sweep_due_prompts

    started = time.perf_counter()
    outcome = sweep_due_prompts()
    print(json.dumps({**outcome, "seconds": round(time.perf_counter() - started, 2)}))


# --- The driver --------------------------------------------------------------------------------


def _recreate_database() -> None:
    import psycopg

    with psycopg.connect("postgresql://postgres@127.0.0.1:5432/postgres", autocommit=True) as conn:
        conn.execute(f"DROP DATABASE IF EXISTS {SWEEP_DB} WITH (FORCE)")
        conn.execute(f"CREATE DATABASE {SWEEP_DB}")


def _flush_redis() -> None:
    import redis

    client = redis.Redis.from_url(SWEEP_REDIS_URL)
    try:
        client.flushdb()
    finally:
        client.close()


def _queue_lengths() -> dict[str, int]:
    import redis

    client = redis.Redis.from_url(SWEEP_REDIS_URL)
    try:
        return {name: client.llen(name) for name in WORKER_QUEUES.split(",")}
    finally:
        client.close()


def _status_counts(conn) -> dict[str, int]:
    rows = conn.execute("SELECT status, count(*) FROM reminders_prompt GROUP BY status").fetchall()
    return dict(rows)


def _group_pids(leader: int) -> list[int]:
    """The worker's process group: the main process and its prefork children."""
    pids = []
    for entry in os.scandir("/proc"):
        if entry.name.isdigit():
            with contextlib.suppress(OSError, IndexError, ValueError):
                fields = Path(f"/proc/{entry.name}/stat").read_text().rsplit(")", 1)[1].split()
                if int(fields[2]) == leader:  # pgrp
                    pids.append(int(entry.name))
    return pids


def _postgres_pids() -> list[int]:
    pids = []
    for entry in os.scandir("/proc"):
        if entry.name.isdigit():
            with contextlib.suppress(OSError):
                if f" {SWEEP_DB} " in Path(f"/proc/{entry.name}/cmdline").read_text():
                    pids.append(int(entry.name))
    return pids


class _Cpu:
    """CPU seconds by group over a span, sampled (processes come and go: prefork children, backends)."""

    def __init__(self, groups):
        self.groups = groups  # name -> callable returning pids
        self.first: dict = {}
        self.last: dict = {}
        self._stop = threading.Event()

    def _sample(self, initial=False):
        for name, pids in self.groups.items():
            for pid in pids():
                cpu = _process_cpu(pid)
                if cpu is not None:
                    self.first.setdefault((name, pid), cpu if initial else 0.0)
                    self.last[(name, pid)] = cpu

    def __enter__(self):
        self.busy0, self.wall0 = _machine_cpu()[0], time.monotonic()
        self._sample(initial=True)
        self._thread = threading.Thread(target=self._loop, daemon=True)
        self._thread.start()
        return self

    def _loop(self):
        while not self._stop.wait(0.5):
            self._sample()

    def __exit__(self, *exc):
        self._stop.set()
        self._thread.join()
        self._sample()
        self.wall = time.monotonic() - self.wall0
        busy = _machine_cpu()[0] - self.busy0
        self.seconds = dict.fromkeys(self.groups, 0.0)
        for (name, pid), last in self.last.items():
            self.seconds[name] += last - self.first[(name, pid)]
        self.seconds["other processes"] = max(0.0, busy - sum(self.seconds.values()))

    def cores(self) -> dict[str, float]:
        return {name: round(seconds / self.wall, 2) for name, seconds in self.seconds.items()}


class _Worker:
    def __init__(self, env: dict, log_path: Path):
        self.env, self.log_path = env, log_path
        self.proc: subprocess.Popen | None = None

    def start(self) -> None:
        self._log = self.log_path.open("w")
        args = [
            sys.executable, "-m", "celery", "-A", "backend", "worker", "-Q", WORKER_QUEUES,
            "--concurrency", str(WORKER_CONCURRENCY), "-n", f"bench-sweep-{os.getpid()}@%h",
            "--without-gossip", "--without-mingle", "--loglevel", "WARNING",
        ]  # fmt: skip
        # Its own session: a Ctrl-C reaches only this driver, which then stops the worker in order.
        self.proc = subprocess.Popen(args, cwd=ROOT, env=self.env, stdout=self._log, stderr=subprocess.STDOUT,
                                     start_new_session=True)  # fmt: skip

    def running(self) -> bool:
        return self.proc is not None and self.proc.poll() is None

    def stop(self) -> None:
        if self.proc is None:
            return
        # A second Ctrl-C must not cut this short and leave the worker running.
        main_thread = threading.current_thread() is threading.main_thread()
        previous = signal.signal(signal.SIGINT, signal.SIG_IGN) if main_thread else None
        try:
            if self.proc.poll() is None:
                self.proc.send_signal(signal.SIGTERM)  # warm shutdown: finishes the chunk it holds
                try:
                    self.proc.wait(timeout=30)
                except subprocess.TimeoutExpired:
                    with contextlib.suppress(ProcessLookupError):
                        os.killpg(self.proc.pid, signal.SIGKILL)  # the group this driver started, and only it
                    self.proc.wait(timeout=10)
            # Prefork children that outlived a killed parent: same process group, this driver's own.
            with contextlib.suppress(ProcessLookupError, PermissionError):
                os.killpg(self.proc.pid, signal.SIGKILL)
        finally:
            if previous is not None:
                signal.signal(signal.SIGINT, previous)
            self._log.close()


def _load(env: dict, prompts: int, log, lead_seconds: float = LEAD_SECONDS) -> tuple[datetime, dict]:
    log(f"sweep: recreating database {SWEEP_DB}, migrating it")
    _recreate_database()
    _flush_redis()
    run_django(env, ["manage.py", "migrate", "--noinput"])
    due_at = (datetime.now(UTC) + timedelta(seconds=lead_seconds)).replace(microsecond=0)
    log(f"sweep: loading {PATIENTS} patients and {prompts:,} prompts due from {due_at:%H:%M:%S}Z (generate_load)")
    started = time.monotonic()
    out = run_django(env, ["manage.py", "generate_load", "--patients", str(PATIENTS), "--days", "2",
                           "--prompts-due", str(prompts), "--prompts-due-at", due_at.isoformat()])  # fmt: skip
    loaded = re.search(r"([\d,]+) due prompts in", out)
    return due_at, {
        "load_seconds": round(time.monotonic() - started, 1),
        "loaded_prompts": int(loaded.group(1).replace(",", "")) if loaded else None,
    }


def _sweep(env: dict, log) -> dict:
    proc = subprocess.Popen([sys.executable, "-m", "bench.sweep", "_sweep"], cwd=ROOT, env=env,
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)  # fmt: skip
    try:
        with _Cpu({"sweeper": lambda: [proc.pid], "postgres": _postgres_pids}) as cpu:
            out, err = proc.communicate()
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
    if proc.returncode != 0:
        sys.stderr.write(out[-4000:] + err[-4000:])
        raise RuntimeError(f"the sweeping process failed (exit {proc.returncode})")
    figures = json.loads(out.strip().splitlines()[-1])
    figures["cpu_seconds"] = {name: round(seconds, 2) for name, seconds in cpu.seconds.items()}
    figures["cores"] = cpu.cores()
    return figures


def _drain(env: dict, prompts: int, log, timeout: float, beat_from: float | None) -> dict:
    """Worker + loopback FCM until no prompt is left scheduled. With `beat_from` (the monotonic time
    the measured sweep started), a beat tick (`sweep_due_prompts`, in its own process) runs every
    60 s from it, as production's beat keeps doing while the worker drains the backlog."""
    import psycopg

    from tests.support.fcm_server import FcmLoopback, _Handler

    class NoDelayHandler(_Handler):
        # http.server writes the headers and the body of an answer in two send() calls; with Nagle
        # on, the body waits for the client's delayed ACK of the headers (40 ms on Linux), which
        # caps every worker process at ~20 sends a second. FCM itself does not answer that way.
        disable_nagle_algorithm = True

    workdir = Path(tempfile.mkdtemp(prefix="sweep-fcm-", dir=OUT))
    fcm = FcmLoopback(workdir)
    fcm._server.RequestHandlerClass = NoDelayHandler
    fcm.start()
    worker = _Worker({**env, **fcm.settings()}, OUT / "sweep-worker.log")
    received: Counter = Counter()
    messages = 0

    def collect() -> None:
        nonlocal messages
        state = fcm.state
        with state.lock:  # take what arrived and keep only the prompt ids: 100k bodies are ~300 MB
            got, state.received = state.received, []
        for item in got:
            messages += 1
            if item.accepted:
                received[item.prompt_id] += 1

    timeline: list[tuple[float, int]] = []
    ticks: list[dict] = []
    tick: subprocess.Popen | None = None
    next_tick = None if beat_from is None else beat_from + 60.0
    tick_started = 0.0

    def tick_collect(wait: bool) -> None:
        nonlocal tick
        if tick is None or (tick.poll() is None and not wait):
            return
        out, _ = tick.communicate(timeout=120)
        with contextlib.suppress(ValueError, IndexError):
            ticks.append({"at_s": round(tick_started - started, 1), **json.loads(out.strip().splitlines()[-1])})
        tick = None

    try:
        with psycopg.connect(f"postgresql://postgres@127.0.0.1:5432/{SWEEP_DB}", autocommit=True) as conn:
            counts_before = _status_counts(conn)
            queued = _queue_lengths()
            log(f"sweep: starting the Celery worker (concurrency {WORKER_CONCURRENCY}) and the loopback FCM server")
            groups = {
                "worker": lambda: _group_pids(worker.proc.pid) if worker.proc else [],
                "postgres": _postgres_pids,
                "driver + FCM server": lambda: [os.getpid()],
            }
            with _Cpu(groups) as cpu:
                started = time.monotonic()
                worker.start()
                first_send = None
                while True:
                    time.sleep(1.0)
                    collect()
                    counts = _status_counts(conn)
                    elapsed = time.monotonic() - started
                    sent = counts.get("sent", 0)
                    timeline.append((round(elapsed, 1), sent))
                    if first_send is None and sent:
                        first_send = elapsed
                    tick_collect(wait=False)
                    if next_tick is not None and time.monotonic() >= next_tick:
                        next_tick += 60.0
                        if tick is None:  # (a tick still running is not doubled)
                            tick_started = time.monotonic()
                            tick = _beat_tick(env)
                    if counts.get("scheduled", 0) == 0:
                        break
                    if not worker.running():
                        raise RuntimeError(f"the Celery worker exited early; see {worker.log_path}")
                    if elapsed > timeout:
                        log(f"sweep: drain timed out after {timeout:.0f} s with {counts}")
                        break
                drain_seconds = time.monotonic() - started
            tick_collect(wait=True)
            worker.stop()
            time.sleep(0.2)
            collect()
            counts = _status_counts(conn)
    finally:
        if tick is not None and tick.poll() is None:
            tick.kill()
            tick.wait()
        worker.stop()
        fcm.stop()
        shutil.rmtree(workdir, ignore_errors=True)  # the throwaway service-account key
    sent = counts.get("sent", 0)
    duplicated = {pid: n for pid, n in received.items() if n > 1}
    steady = _steady_rate(timeline)
    return {
        "queued_messages_at_start": queued,
        "status_before": counts_before,
        "drain_seconds": round(drain_seconds, 1),
        "first_send_after_s": None if first_send is None else round(first_send, 1),
        "sent": sent,
        "status_after": counts,
        "sends_per_s": round(sent / drain_seconds, 1) if drain_seconds else None,
        "sends_per_s_steady": steady,
        "fcm_requests": messages,
        "fcm_accepted_prompt_ids": len(received),
        "duplicates": len(duplicated),
        "duplicate_messages": sum(n - 1 for n in duplicated.values()),
        "drain_cpu_seconds": {name: round(seconds, 1) for name, seconds in cpu.seconds.items()},
        "drain_cores": cpu.cores(),
        "drain_cpu_ms_per_send": {name: round(1000 * s / sent, 2) for name, s in cpu.seconds.items()} if sent else {},
        "worker": f"celery prefork, concurrency {WORKER_CONCURRENCY}, -Q {WORKER_QUEUES}",
        "beat_ticks_during_drain": ticks,
        "republished_during_drain": sum(t.get("published", 0) for t in ticks),
        "timeline_sent": timeline[:: max(1, len(timeline) // 30)],
        "complete": counts.get("scheduled", 0) == 0 and sent == prompts,
    }


def _beat_tick(env: dict) -> subprocess.Popen:
    args = [sys.executable, "-m", "bench.sweep", "_beat"]
    return subprocess.Popen(args, cwd=ROOT, env=env, stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True)


def _steady_rate(timeline: list[tuple[float, int]]) -> float | None:
    """Sends a second between 10 % and 90 % of the prompts sent (no start-up, no tail)."""
    if not timeline or timeline[-1][1] == 0:
        return None
    final = timeline[-1][1]
    low = next((p for p in timeline if p[1] >= 0.1 * final), None)
    high = next((p for p in timeline if p[1] >= 0.9 * final), None)
    if low is None or high is None or high[0] <= low[0]:
        return None
    return round((high[1] - low[1]) / (high[0] - low[0]), 1)


def run(*, env: dict, quick: bool, log, beat: bool = True) -> dict:
    """The whole sweep benchmark; returns its figures. `env` is the caller's production-shaped
    environment (bench.run.bench_env); DATABASE_URL and REDIS_URL are replaced by this module's own.
    `beat`: keep sweeping once a minute during the drain, as beat does in production."""
    prompts = 2_000 if quick else 100_000
    OUT.mkdir(parents=True, exist_ok=True)
    env = {**env, "DATABASE_URL": f"postgres://postgres@127.0.0.1:5432/{SWEEP_DB}", "REDIS_URL": SWEEP_REDIS_URL,
           "PYTHONUNBUFFERED": "1"}  # fmt: skip
    # The quick run loads a minute that has already passed: no wait, the same sweep and drain.
    due_at, load = _load(env, prompts, log, lead_seconds=-75 if quick else LEAD_SECONDS)
    ready_at = due_at + timedelta(seconds=61)  # the whole minute is due
    wait = (ready_at - datetime.now(UTC)).total_seconds()
    if wait > 0:
        log(f"sweep: waiting {wait:.0f} s for the due minute to pass")
        time.sleep(wait)
    busy = wait_for_quiet(10.0 if quick else 60.0)  # other work on the 2 cores skews every figure
    log(f"sweep: sweeping {prompts:,} due prompts")
    sweep_started = time.monotonic()
    sweep = _sweep(env, log)
    sweeps_needed = len([s for s in sweep["sweeps"] if s["claimed"]])
    claim_seconds = sum(s["seconds"] for s in sweep["sweeps"])
    # Beat calls the sweeper once a minute: a backlog left by one call waits for the next tick.
    beat_seconds = 60.0 * (len(sweep["sweeps"]) - 1) + sweep["sweeps"][-1]["seconds"]
    log(f"sweep: {sweep['claimed']:,} claimed and published in {claim_seconds:.1f} s ({sweeps_needed} sweep calls)")
    drain = _drain(env, prompts, log, timeout=max(300.0, prompts / 100), beat_from=sweep_started if beat else None)
    first_plan = sweep["explain_first"]["plan"]
    figures = {
        "prompts": prompts,
        "loaded_prompts": load["loaded_prompts"],
        "load_seconds": load["load_seconds"],
        "due_minute": due_at.isoformat(),
        "claim_enqueue_seconds": round(claim_seconds, 2),
        "claimed": sweep["claimed"],
        "published": sweep["published"],
        "left_unclaimed": sweep["left_unclaimed"],
        "claim_rate_per_s": round(sweep["claimed"] / claim_seconds, 1) if claim_seconds else None,
        "sweep_calls": len(sweep["sweeps"]),
        "sweep_calls_detail": sweep["sweeps"],
        "beat_equivalent_seconds": round(beat_seconds, 2),
        "batches": sweep["batches"],
        "batch_size": sweep["batch_size"],
        "batch_seconds_first": sweep["batch_seconds"][:3],
        "batch_seconds_last": sweep["batch_seconds"][-3:],
        "claim_sql_seconds": round(sweep["claim_seconds_total"], 2),
        "publish_seconds": round(sweep["publish_seconds_total"], 2),
        "publishes": sweep["publishes"],
        "sweeper_cpu_seconds": round(sweep["cpu_user_s"] + sweep["cpu_system_s"], 2),
        "sweep_cpu_seconds_by_process": sweep["cpu_seconds"],
        "sweep_cores": sweep["cores"],
        "sweeper_peak_rss_mb": round(sweep["maxrss_mb"], 1),
        "sweeper_rss_before_sweep_mb": round(sweep["rss_before_sweep_mb"], 1),
        "sweeper_rss_first_batch_mb": round(sweep["rss_first_batch_mb"], 1) if sweep["rss_first_batch_mb"] else None,
        "sweeper_rss_last_batch_mb": round(sweep["rss_last_batch_mb"], 1) if sweep["rss_last_batch_mb"] else None,
        "sweeper_rss_by_published": {m["published"]: round(m["rss_mb"], 1) for m in sweep["rss_milestones"]},
        "explain": "\n".join(first_plan.splitlines()[:30]),
        "explain_sql": sweep["explain_first"]["sql"],
        "explain_after_sweep": "\n".join(sweep["explain_after"]["plan"].splitlines()[:30]),
        "index_used": "prompt_due" in first_plan,
        **drain,
        "budget_seconds": BUDGET_SECONDS,
        "budget_met": beat_seconds <= BUDGET_SECONDS and sweep["left_unclaimed"] == 0,
        "machine_busy_cores_before_sweep": round(busy, 2),
        "database": SWEEP_DB,
        "redis": SWEEP_REDIS_URL,
    }
    return figures


def _rss_row(before_mb: float, by_published: dict) -> str:
    """The sweeper's RSS before and at its first and last marks; a sweep finished within one batch
    (--quick) leaves no marks, and says so."""
    marks = sorted(by_published, key=int)
    if not marks:
        return f"| sweeper RSS before the sweep | {before_mb:.0f} MB (one batch: no marks during it) | flat | |"
    first, last = marks[0], marks[-1]
    return (
        f"| sweeper RSS before / at {int(first):,} / at {int(last):,} claimed | "
        f"{before_mb:.0f} / {by_published[first]:.0f} / {by_published[last]:.0f} MB | flat | |"
    )


def report(r: dict) -> str:
    """The markdown section for var/bench/report.md."""
    rss = r["sweeper_rss_by_published"]
    lines = [
        "## Reminder sweep (issue 4)",
        "",
        f"{r['prompts']:,} prompts due in one minute (generate_load), swept by the real sweeper on "
        f"`{r['database']}`, drained by a real worker ({r['worker']}) into the loopback FCM server.",
        "",
        "| figure | value | budget | result |",
        "| --- | --- | --- | --- |",
        f"| claimed and enqueued | {r['claimed']:,} in {r['claim_enqueue_seconds']:.1f} s "
        f"({r['claim_rate_per_s']:,.0f}/s, {r['batches']} batches) | ≤ 60 s | "
        + ("pass" if r["budget_met"] else "**MISSED**")
        + " |",
        f"| of which claim SQL / publishing | {r['claim_sql_seconds']:.1f} s / {r['publish_seconds']:.1f} s | | |",
        _rss_row(r["sweeper_rss_before_sweep_mb"], rss),
        f"| claim query uses `prompt_due` | {'yes' if r['index_used'] else '**no**'} | index scan | |",
        f"| drain through the worker | {r['sent']:,} sent in {r['drain_seconds']:.0f} s "
        f"({r['sends_per_s']:.0f}/s) | reported | |",
        f"| prompts pushed more than once | {r['duplicates']} | 0 | "
        + ("pass" if r["duplicates"] == 0 else "**MISSED**")
        + " |",
        f"| re-published during the drain by later sweeps | {r.get('republished_during_drain', 0):,} | | |",
        "",
        "EXPLAIN (ANALYZE, BUFFERS) of the first claim batch:",
        "",
        "```",
        *r["explain"].splitlines()[:12],
        "```",
    ]
    return "\n".join(lines) + "\n"


def main(argv: list[str]) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench.sweep", description=__doc__.split("\n\n")[0])
    parser.add_argument("--quick", action="store_true", help="2,000 prompts instead of 100,000")
    parser.add_argument("--no-beat", action="store_true", help="no beat ticks (sweeps) during the drain")
    args = parser.parse_args(argv)
    from cryptography.fernet import Fernet

    env = bench_env(spare_port(), Fernet.generate_key().decode())

    def on_term(signum, frame):
        raise KeyboardInterrupt

    signal.signal(signal.SIGTERM, on_term)
    try:
        figures = run(env=env, quick=args.quick, log=say, beat=not args.no_beat)
    except KeyboardInterrupt:
        say("interrupted")
        return 130
    print(json.dumps(figures, indent=2, default=str))
    return 0


if __name__ == "__main__":
    if len(sys.argv) > 1 and sys.argv[1] == "_sweep":
        _sweeper_main()
    elif len(sys.argv) > 1 and sys.argv[1] == "_beat":
        _beat_tick_main()
    else:
        sys.exit(main(sys.argv[1:]))
