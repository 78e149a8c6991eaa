"""`make bench`: the write budgets of SPEC §5, measured on PostgreSQL behind gunicorn.

One run, start to finish, on this machine:

1. drops and recreates the `interlude_bench` database (no other database is touched), migrates it
   and seeds a clinic with patients through `accounts.services`, in subprocesses that run with the
   same production-shaped environment as the server;
2. starts gunicorn on a spare loopback port and waits for /readyz;
3. measures, from one asyncio process (aiohttp, one keep-alive connection per simulated phone):
   - closed loop, N clients: GET /api/v1/me/ (the trivial authenticated endpoint), then
     POST /api/v1/entries/; throughput ratio and latencies;
   - open loop at a fixed rate: POST /api/v1/entries/ on a timetable that does not wait for
     answers, latency counted from the scheduled send time (no coordinated omission);
   - 500-entry syncs for distinct patients (client wall time, and server time from the app's own
     JSON request log line), each followed by the same rows inserted with one raw multi-row
     INSERT through psycopg into the same table;
4. writes var/bench/report.md and var/bench/report.json, prints the markdown, stops gunicorn.

A missed budget is reported as MISSED; the exit status stays 0 because this is a measurement.
What each figure means: bench/README.md.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import platform
import random
import signal
import statistics
import subprocess
import sys
import threading
import time
import uuid
from collections import Counter
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from zoneinfo import ZoneInfo

from bench import insight, sweep
from bench.common import (
    OUT,
    ROOT,
    Gunicorn,
    _machine_cpu,
    _process_cpu,
    bench_env,
    percentile,
    run_django,
    say,
    server_durations,
    spare_port,
    summary_ms,
    wait_for_quiet,
)

BENCH_DB = "interlude_bench"
REDIS_DB_URL = "redis://127.0.0.1:6379/6"
CLINICIAN_EMAIL = "clinician@bench.interlude.test"
CLINICIAN_PASSWORD = "amber-signal-meadow-5521"
PHONE_PASSWORD = "quiet-harbor-lantern-4417"
ZONES = ("America/New_York", "America/Chicago", "America/Los_Angeles", "Europe/London", "Australia/Sydney")
SUBSTANCES = ("alcohol", "cocaine", "opioids", "stimulants", "cannabis", "nicotine", "sedatives", "other")
TRIGGERS = ("stress", "conflict", "loneliness", "boredom", "celebration", "social_pressure", "cue_exposure",
            "negative_mood", "physical_pain", "fatigue", "hunger", "other")  # fmt: skip
COPING = ("reached_out", "exercise", "mindfulness", "distraction", "delay", "medication", "therapy_skill",
          "support_meeting", "other")  # fmt: skip

BUDGETS = {
    "post_vs_me_throughput_ratio": 0.50,  # POST entries req/s ÷ GET /me req/s, closed loop
    "open_loop_p95_ms": 50.0,  # POST entries at the fixed open-loop rate
    "sync_server_p95_ms": 500.0,  # a 500-entry sync, server time
    "sync_vs_raw_rows_ratio": 0.25,  # sync rows/s ÷ raw multi-row INSERT rows/s
}


# --- Small helpers ------------------------------------------------------------------------------


def rfc3339(moment: datetime) -> str:
    return moment.astimezone(UTC).isoformat().replace("+00:00", "Z")


# --- Entries: what a phone sends ----------------------------------------------------------------


def entry_content(rng: random.Random, occurred_at: datetime) -> dict:
    """One plausible entry of a random kind; about half carry a note of 40–400 characters."""
    kind = rng.choices(("check_in", "craving", "use"), weights=(6, 3, 1))[0]
    item: dict = {"id": str(uuid.uuid4()), "kind": kind, "occurred_at": rfc3339(occurred_at)}
    if kind == "check_in":
        item |= {"craving": rng.randint(0, 10), "mood": rng.randint(0, 10), "anxiety": rng.randint(0, 10),
                 "sleep_hours": rng.choice((5.5, 6.0, 6.75, 7.25, 8.0))}  # fmt: skip
    elif kind == "craving":
        item["craving"] = rng.randint(1, 10)
    else:
        item |= {"substance": rng.choice(SUBSTANCES), "amount": "a few", "craving": rng.randint(0, 10)}
    if kind != "use":
        item["triggers"] = rng.sample(TRIGGERS, rng.randint(0, 3))
        item["coping"] = rng.sample(COPING, rng.randint(0, 2))
    if rng.random() < 0.5:
        item["note"] = "".join(rng.choices("abcdefghijklmnopqrstuvwxyz     .,", k=rng.randint(40, 400)))
    return item


# --- Setup: database, seed, server ------------------------------------------------------------


def recreate_database() -> None:
    import psycopg

    with psycopg.connect("postgresql://postgres@127.0.0.1:5432/postgres", autocommit=True) as conn:
        conn.execute(f"DROP DATABASE IF EXISTS {BENCH_DB} WITH (FORCE)")
        conn.execute(f"CREATE DATABASE {BENCH_DB}")


@dataclass
class Phone:
    """One simulated phone: an enrolled patient signed in with its own tokens."""

    email: str
    patient_id: str
    zone: str
    access: str
    refresh: str
    issued: float = field(default_factory=time.monotonic)


def seed(env: dict, count: int) -> list[Phone]:
    """Creates the clinic and `count` patients, then enrolls them in two processes at once (each
    enrollment hashes a password with the default PBKDF2, about a second of CPU)."""
    created = json.loads(run_django(env, ["-m", "bench.run", "_create", str(count)]).strip().splitlines()[-1])
    halves = [created["patients"][0::2], created["patients"][1::2]]
    procs = [
        subprocess.Popen([sys.executable, "-m", "bench.run", "_enroll", created["consent_version"]], cwd=ROOT,
                         env=env, stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
        for _ in halves
    ]  # fmt: skip
    phones = []
    for proc, half in zip(procs, halves, strict=True):
        out, err = proc.communicate(json.dumps(half))
        if proc.returncode != 0:
            sys.stderr.write(err[-4000:])
            raise SystemExit("bench: enrolling the bench patients failed")
        phones += [Phone(**row) for row in json.loads(out.strip().splitlines()[-1])]
    phones.sort(key=lambda phone: phone.email)
    return phones


def _django_create(count: int) -> None:
    import django

    django.setup()
    from accounts.services import clinician_create, patient_create

    clinician = clinician_create(email=CLINICIAN_EMAIL, password=CLINICIAN_PASSWORD, clinic_name="Bench Clinic")
    patients = []
    for number in range(count):
        zone = ZONES[number % len(ZONES)]
        patient, code, _ = patient_create(
            clinician=clinician, display_name=f"Bench {number}", timezone_name=zone, substances=["alcohol"]
        )
        patients.append({"email": f"phone{number:03d}@bench.interlude.test", "code": code,
                         "patient_id": str(patient.pk), "zone": zone})  # fmt: skip
    print(json.dumps({"consent_version": clinician.clinic.current_consent().version, "patients": patients}))


class _Request:
    META = {"REMOTE_ADDR": "127.0.0.1", "HTTP_USER_AGENT": "bench"}


def _django_enroll(consent_version: str) -> None:
    import django

    django.setup()
    from accounts.services import patient_enroll

    phones = []
    for row in json.load(sys.stdin):
        _, pair = patient_enroll(code=row["code"], email=row["email"], password=PHONE_PASSWORD,
                                 consent_version=consent_version, request=_Request())  # fmt: skip
        phones.append({"email": row["email"], "patient_id": row["patient_id"], "zone": row["zone"],
                       "access": pair.access, "refresh": pair.refresh})  # fmt: skip
    print(json.dumps(phones))


# --- CPU accounting: where the machine's cores went during each phase --------------------------


def _bench_processes(gunicorn_pid: int | None) -> dict[str, list[int]]:
    """gunicorn's master and workers, and the PostgreSQL backends of the bench database (their
    process title names it), found by one pass over /proc."""
    groups: dict[str, list[int]] = {"gunicorn": [], "postgres": [], "load generator": [os.getpid()]}
    for entry in os.scandir("/proc"):
        if not entry.name.isdigit():
            continue
        pid = int(entry.name)
        try:
            stat = Path(f"/proc/{pid}/stat").read_text()
            if pid == gunicorn_pid or int(stat.rsplit(")", 1)[1].split()[1]) == gunicorn_pid:
                groups["gunicorn"].append(pid)
            elif "(postgres)" in stat and f" {BENCH_DB} " in Path(f"/proc/{pid}/cmdline").read_text():
                groups["postgres"].append(pid)
        except (OSError, IndexError, ValueError):
            continue
    return groups


class CpuMeter:
    """CPU seconds of gunicorn (master and workers), of the PostgreSQL backends serving the bench
    database, of this load generator, and of everything else on the machine, over one span.

    A thread samples every half second: Django closes a database connection after CONN_MAX_AGE,
    and the CPU of a backend that exits mid-span would otherwise be lost. Another test suite
    running on the same cores shows up as "other processes"."""

    INTERVAL = 0.5

    def __init__(self, server: Gunicorn):
        self.server = server
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None

    def _sample(self, *, initial: bool = False) -> None:
        for group, pids in _bench_processes(self.server.proc.pid if self.server.proc else None).items():
            for pid in pids:
                cpu = _process_cpu(pid)
                if cpu is None:
                    continue
                # A process first seen mid-span started during it: all its CPU belongs to the span.
                self._first.setdefault((group, pid), cpu if initial else 0.0)
                self._last[(group, pid)] = cpu

    def start(self) -> None:
        self._first: dict[tuple[str, int], float] = {}
        self._last: dict[tuple[str, int], float] = {}
        self._busy, _ = _machine_cpu()
        self._wall = time.monotonic()
        self._sample(initial=True)
        self._stop.clear()
        self._thread = threading.Thread(target=self._run, daemon=True)
        self._thread.start()

    def _run(self) -> None:
        while not self._stop.wait(self.INTERVAL):
            self._sample()

    def stop(self) -> dict:
        """The span's wall time, the machine's busy CPU seconds and each group's CPU seconds."""
        self._stop.set()
        self._thread.join()
        self._sample()
        used = {"gunicorn": 0.0, "postgres": 0.0, "load generator": 0.0}
        for (group, pid), last in self._last.items():
            used[group] += last - self._first[(group, pid)]
        return {"wall_s": time.monotonic() - self._wall, "busy_s": _machine_cpu()[0] - self._busy, "seconds": used}


def cpu_figures(spans: list[dict], requests: int) -> dict:
    """Adds up spans: the cores each group kept busy and its CPU milliseconds per request."""
    wall = sum(span["wall_s"] for span in spans)
    used = {group: sum(span["seconds"][group] for span in spans) for group in spans[0]["seconds"]}
    used["other processes"] = sum(max(0.0, span["busy_s"] - sum(span["seconds"].values())) for span in spans)
    return {
        "wall_s": wall,
        "cores": {group: seconds / wall for group, seconds in used.items()},
        "cpu_ms_per_request": {group: 1000 * seconds / requests for group, seconds in used.items()},
        "requests": requests,
    }


# --- Load ---------------------------------------------------------------------------------------


@dataclass
class Outcome:
    latencies: list[float] = field(default_factory=list)
    statuses: Counter = field(default_factory=Counter)
    request_ids: set = field(default_factory=set)
    completed: int = 0  # answered inside the measured window
    total: int = 0  # answered at all, warm-up included (what the CPU figures are divided by)


def auth(phone: Phone, request_id: str) -> dict:
    return {"Authorization": f"Bearer {phone.access}", "X-Request-ID": request_id, "Content-Type": "application/json"}


async def refresh_tokens(session, phones: list[Phone], *, force: bool = False) -> None:
    """Rotates every phone's tokens through the API, so each holds a fresh 15-minute access token."""

    async def one(phone: Phone) -> None:
        body = json.dumps({"refresh": phone.refresh}).encode()
        async with session.post("/api/v1/auth/token/refresh/", data=body,
                                headers={"Content-Type": "application/json"}) as response:  # fmt: skip
            if response.status != 200:
                raise SystemExit(f"bench: token refresh answered {response.status}: {await response.text()}")
            tokens = await response.json()
        phone.access, phone.refresh, phone.issued = tokens["access"], tokens["refresh"], time.monotonic()

    stale = [phone for phone in phones if force or time.monotonic() - phone.issued > 10 * 60]
    for start in range(0, len(stale), 16):
        await asyncio.gather(*(one(phone) for phone in stale[start : start + 16]))


class Requests:
    """Builds each phase's requests; every request carries an X-Request-ID naming its phase, so the
    app's request log gives the server-side duration of exactly these requests."""

    def __init__(self, seed_value: int):
        self.rng = random.Random(seed_value)
        self.counter = 0

    def request_id(self, phase: str) -> str:
        self.counter += 1
        return f"bench-{phase}-{self.counter:09d}"

    def me(self, phone: Phone) -> tuple[str, str, bytes | None, dict, int]:
        return "GET", "/api/v1/me/", None, auth(phone, self.request_id("me")), 200

    def post_entry(self, phone: Phone, phase: str) -> tuple[str, str, bytes | None, dict, int]:
        occurred = datetime.now(UTC) - timedelta(seconds=self.rng.uniform(5, 900))
        body = json.dumps(entry_content(self.rng, occurred)).encode()
        return "POST", "/api/v1/entries/", body, auth(phone, self.request_id(phase)), 201


async def send(session, method: str, path: str, body: bytes | None, headers: dict) -> int | str:
    try:
        async with session.request(method, path, data=body, headers=headers) as response:
            await response.read()
            return response.status
    except (TimeoutError, OSError) as exc:
        return type(exc).__name__
    except Exception as exc:  # aiohttp's own ClientError family, kept out of the import list
        return type(exc).__name__


async def closed_loop(session, phones: list[Phone], build, warmup: float, duration: float, outcome: Outcome) -> None:
    """Each phone sends its next request as soon as the previous answer arrives. Adds what was
    answered inside the measured window (after the warm-up) to `outcome`."""
    started = time.perf_counter()
    window_start, window_end = started + warmup, started + warmup + duration

    async def phone_loop(phone: Phone) -> None:
        while time.perf_counter() < window_end:
            method, path, body, headers, expected = build(phone)
            sent = time.perf_counter()
            status = await send(session, method, path, body, headers)
            finished = time.perf_counter()
            outcome.total += 1
            if window_start <= finished < window_end:
                outcome.completed += 1
                outcome.statuses[str(status)] += 1
                if status == expected:
                    outcome.latencies.append(finished - sent)
                    outcome.request_ids.add(headers["X-Request-ID"])

    await asyncio.gather(*(phone_loop(phone) for phone in phones))


def closed_summary(outcome: Outcome, clients: int, rounds: int, warmup: float, duration: float) -> dict:
    ok = len(outcome.latencies)
    return {
        "clients": clients,
        "rounds": rounds,
        "warmup_s_per_round": warmup,
        "duration_s": duration,
        "completed": outcome.completed,
        "requests_total": outcome.total,
        "ok": ok,
        "statuses": dict(outcome.statuses),
        "throughput_rps": ok / duration,
        "latency": summary_ms(outcome.latencies),
        "_request_ids": outcome.request_ids,
    }


async def open_loop(session, phones: list[Phone], requests: Requests, rate: float, warmup: float,
                    duration: float) -> dict:  # fmt: skip
    """Sends on a fixed timetable whatever the server does; latency counts from the scheduled send
    time, so a stall delays and counts every request that should have gone out meanwhile."""
    outcome = Outcome()
    warm_count, count = int(rate * warmup), int(rate * duration)
    start = time.perf_counter() + 0.05
    dispatch_lag: list[float] = []

    async def one(index: int, scheduled: float) -> None:
        phone = phones[index % len(phones)]
        method, path, body, headers, expected = requests.post_entry(phone, "open")
        status = await send(session, method, path, body, headers)
        outcome.total += 1
        if index >= warm_count:
            outcome.completed += 1
            outcome.statuses[str(status)] += 1
            if status == expected:
                outcome.latencies.append(time.perf_counter() - scheduled)
                outcome.request_ids.add(headers["X-Request-ID"])

    tasks = []
    for index in range(warm_count + count):
        scheduled = start + index / rate
        delay = scheduled - time.perf_counter()
        if delay > 0:
            await asyncio.sleep(delay)
        if index >= warm_count:
            dispatch_lag.append(time.perf_counter() - scheduled)
        tasks.append(asyncio.create_task(one(index, scheduled)))
    await asyncio.gather(*tasks)
    return {
        "rate_rps": rate,
        "warmup_s": warmup,
        "duration_s": duration,
        "connections": len(phones),
        "completed": outcome.completed,
        "requests_total": outcome.total,
        "ok": len(outcome.latencies),
        "statuses": dict(outcome.statuses),
        "latency": summary_ms(outcome.latencies),
        "dispatch_lag": summary_ms(dispatch_lag),
        "_request_ids": outcome.request_ids,
    }


# --- Sync and the raw INSERT baseline -----------------------------------------------------------

ENTRY_COLUMNS = (
    "id", "patient_id", "kind", "occurred_at", "local_date", "local_hour", "craving", "mood", "anxiety",
    "sleep_hours", "substance", "amount", "triggers", "coping", "note", "prompt_id", "received_at", "late",
    "version", "change_seq", "deleted_at", "created_at", "updated_at",
)  # fmt: skip


def sync_batch(rng: random.Random, size: int) -> list[dict]:
    """What a phone that was offline for ten days sends: entries spread over those days."""
    now = datetime.now(UTC)
    return [entry_content(rng, now - timedelta(seconds=rng.uniform(60, 10 * 86400))) for _ in range(size)]


def raw_rows(items: list[dict], patient_id: str, zone: str, first_seq: int, fernet) -> list[tuple]:
    """The rows the app would store for these items (fresh ids), note already a Fernet token."""
    from decimal import Decimal

    from psycopg.types.json import Jsonb

    now = datetime.now(UTC)
    rows = []
    for offset, item in enumerate(items):
        occurred = datetime.fromisoformat(item["occurred_at"].replace("Z", "+00:00"))
        local = occurred.astimezone(ZoneInfo(zone))
        note = item.get("note") or ""
        sleep = item.get("sleep_hours")
        rows.append((
            uuid.uuid4(), patient_id, item["kind"], occurred, local.date(), local.hour, item.get("craving"),
            item.get("mood"), item.get("anxiety"), Decimal(str(sleep)) if sleep is not None else None,
            item.get("substance"), item.get("amount") or "", Jsonb(item.get("triggers") or []),
            Jsonb(item.get("coping") or []), "fernet:" + fernet.encrypt(note.encode()).decode() if note else "",
            None, now, now - occurred > timedelta(hours=24), 1, first_seq + offset, None, now, now,
        ))  # fmt: skip
    return rows


def raw_insert(conn, rows: list[tuple]) -> float:
    """One multi-row INSERT … VALUES in its own transaction; returns seconds including COMMIT.
    Not a prepared statement (prepare=False), like every statement the app sends."""
    placeholders = "(" + ", ".join(["%s"] * len(ENTRY_COLUMNS)) + ")"
    sql = (f"INSERT INTO journal_entry ({', '.join(ENTRY_COLUMNS)}) VALUES "  # noqa: S608 - constants only
           + ", ".join([placeholders] * len(rows)))  # fmt: skip
    params = [value for row in rows for value in row]
    started = time.perf_counter()
    with conn.transaction(), conn.cursor() as cursor:
        cursor.execute(sql, params, prepare=False)
    return time.perf_counter() - started


async def sync_and_raw(session, meter: CpuMeter, sync_phones: list[Phone], raw_phone: Phone, runs: int, warm: int,
                       size: int, field_key: str) -> dict:  # fmt: skip
    import psycopg
    from cryptography.fernet import Fernet

    fernet = Fernet(field_key.encode())
    rng = random.Random(500)
    sync_wall, raw_wall, request_ids, problems, cpu_spans = [], [], [], Counter(), []
    next_seq = 1
    with psycopg.connect(f"postgresql://postgres@127.0.0.1:5432/{BENCH_DB}") as conn:
        for run in range(warm + runs):
            phone = sync_phones[run]
            await refresh_tokens(session, [phone])
            items = sync_batch(rng, size)
            body = json.dumps({"entries": items}).encode()
            request_id = f"bench-sync-{run:04d}-{uuid.uuid4().hex[:8]}"
            meter.start()
            started = time.perf_counter()
            async with session.post("/api/v1/entries/sync/", data=body, headers=auth(phone, request_id)) as resp:
                payload = await resp.read()
                status = resp.status
            wall = time.perf_counter() - started
            span = meter.stop()
            if run >= warm:
                cpu_spans.append(cpu_figures([span], 1))
            if status != 200:
                raise SystemExit(f"bench: sync answered {status}: {payload[:500]!r}")
            statuses = Counter(result["status"] for result in json.loads(payload)["results"])
            if statuses != Counter({"created": size}):
                problems.update(statuses)
            rows = raw_rows(items, raw_phone.patient_id, raw_phone.zone, next_seq, fernet)
            next_seq += size
            raw = raw_insert(conn, rows)
            if run >= warm:
                sync_wall.append(wall)
                raw_wall.append(raw)
                request_ids.append(request_id)
    return {
        "runs": runs,
        "warmup_runs": warm,
        "size": size,
        "body_bytes": len(body),
        "unexpected_statuses": dict(problems),
        "sync_wall": summary_ms(sync_wall),
        "raw_insert": summary_ms(raw_wall),
        "sync_rows_per_s": size / percentile(sync_wall, 0.5),
        "raw_rows_per_s": size / percentile(raw_wall, 0.5),
        "_request_ids": request_ids,
        "cpu": {
            "requests": runs,
            "cpu_ms_per_request": {
                name: statistics.median(span["cpu_ms_per_request"][name] for span in cpu_spans)
                for name in cpu_spans[0]["cpu_ms_per_request"]
            },
        },
    }


def attach_server_times(result: dict, durations: dict[str, float]) -> list[float]:
    found = [durations[rid] / 1000 for rid in result.pop("_request_ids") if rid in durations]
    result["server"] = summary_ms(found)
    return found


# --- Report -------------------------------------------------------------------------------------


def verdict(ok: bool) -> str:
    return "pass" if ok else "**MISSED**"


def ms(value: float | None) -> str:
    return "–" if value is None else f"{value:.1f} ms"


def row(*cells) -> str:
    return "| " + " | ".join(str(cell) for cell in cells) + " |"


# More CPU than this (in cores) used by processes that are not part of the benchmark taints a phase.
OTHER_LOAD_LIMIT = 0.15

PHASE_LABELS = {
    "closed_me": "GET /me, closed loop",
    "closed_post": "POST entries, closed loop",
    "open_post": "POST entries, open loop",
    "sync": "sync of 500 (per request)",
}


def judge(results: dict, key: str, value: float | None, ok: bool) -> bool:
    results["verdicts"][key] = {"value": value, "budget": BUDGETS[key], "pass": ok}
    return ok


def derived_figures(r: dict) -> list[str]:
    """What the CPU table implies, independent of how busy the machine was with other work."""
    me, post = r.get("closed_me"), r.get("closed_post")
    if not (me and post):
        return []
    cores = r["machine"]["cores"]

    def server_ms(result: dict) -> float:
        per = result["cpu"]["cpu_ms_per_request"]
        return per["gunicorn"] + per["postgres"]

    def all_ms(result: dict) -> float:
        return server_ms(result) + result["cpu"]["cpu_ms_per_request"]["load generator"]

    lines = [
        "",
        f"Derived from the CPU table: a POST costs {server_ms(post):.1f} ms of server and database CPU, "
        f"GET /me {server_ms(me):.1f} ms; their ratio, {server_ms(me) / server_ms(post):.2f}, is what the "
        "throughput ratio tends to when the cores are saturated, and it is much less sensitive to other load "
        "than the throughputs. "
        f"With the load generator's share, {cores} cores serve at most "
        f"{1000 * cores / all_ms(post):.0f} POSTs a second at this cost",
    ]
    if r.get("open_post"):
        rate = r["open_post"]["rate_rps"]
        lines[-1] += f"; the open loop offers {rate:.0f}, which would need {rate * all_ms(post) / 1000:.2f} cores."
    else:
        lines[-1] += "."
    return lines


def build_report(r: dict) -> tuple[str, list[str]]:
    me, post, opn, sync = r.get("closed_me"), r.get("closed_post"), r.get("open_post"), r.get("sync")
    missed: list[str] = []
    lines = [
        "# Interlude benchmark",
        "",
        f"{r['started_at']} · commit {r['commit']} · {r['machine']['cores']} cores · gunicorn "
        f"`{r['server']['config']}` · load generator: {r['load_generator']}",
        "",
        row("figure", "throughput", "median", "p95", "ratio", "budget", "result"),
        row(*["---"] * 7),
    ]
    if me and post:
        ratio = post["throughput_rps"] / me["throughput_rps"]
        ok = judge(r, "post_vs_me_throughput_ratio", ratio, ratio >= BUDGETS["post_vs_me_throughput_ratio"])
        missed += [] if ok else ["POST entries throughput vs GET /me"]
        for name, result in (("GET /api/v1/me/", me), ("POST /api/v1/entries/", post)):
            lines.append(
                row(
                    f"{name}, closed loop, {result['clients']} clients",
                    f"{result['throughput_rps']:.0f} req/s",
                    ms(result["latency"]["p50_ms"]),
                    ms(result["latency"]["p95_ms"]),
                    "reference" if result is me else f"{ratio:.2f} × /me",
                    "" if result is me else "≥ 0.50 × /me",
                    "" if result is me else verdict(ok),
                )
            )
    if opn:
        p95 = opn["latency"]["p95_ms"]
        clean = opn["ok"] == opn["completed"]
        ok = judge(r, "open_loop_p95_ms", p95, p95 is not None and p95 <= BUDGETS["open_loop_p95_ms"] and clean)
        missed += [] if ok else ["open-loop p95"]
        lines.append(
            row(
                f"POST /api/v1/entries/, open loop at {opn['rate_rps']:.0f} req/s (p99 {ms(opn['latency']['p99_ms'])})",
                f"{opn['ok'] / opn['duration_s']:.1f} req/s",
                ms(opn["latency"]["p50_ms"]),
                ms(p95),
                "",
                "p95 ≤ 50 ms",
                verdict(ok),
            )
        )
    if sync:
        size, server = sync["size"], sync["server"]
        ok = judge(
            r, "sync_server_p95_ms", server["p95_ms"], (server["p95_ms"] or 1e9) <= BUDGETS["sync_server_p95_ms"]
        )
        missed += [] if ok else ["sync server time"]
        lines.append(
            row(
                f"sync of {size} entries: server time",
                f"{size / (server['p50_ms'] / 1000):.0f} rows/s",
                ms(server["p50_ms"]),
                ms(server["p95_ms"]),
                "",
                "p95 ≤ 500 ms",
                verdict(ok),
            )
        )
        ratio = sync["sync_rows_per_s"] / sync["raw_rows_per_s"]
        ok = ratio >= BUDGETS["sync_vs_raw_rows_ratio"] and not sync["unexpected_statuses"]
        missed += [] if judge(r, "sync_vs_raw_rows_ratio", ratio, ok) else ["sync rows/s vs raw INSERT"]
        lines.append(
            row(
                f"sync of {size} entries: client wall time",
                f"{sync['sync_rows_per_s']:.0f} rows/s",
                ms(sync["sync_wall"]["p50_ms"]),
                ms(sync["sync_wall"]["p95_ms"]),
                f"{ratio:.3f} × raw",
                "≥ 0.25 × raw",
                verdict(ok),
            )
        )
        lines.append(
            row(
                f"raw multi-row INSERT of the same {size} rows (psycopg)",
                f"{sync['raw_rows_per_s']:.0f} rows/s",
                ms(sync["raw_insert"]["p50_ms"]),
                ms(sync["raw_insert"]["p95_ms"]),
                "reference",
                "",
                "",
            )
        )

    lines += [
        "",
        "Server time of the same requests, from the app's own request log line (Django + DRF + database; not "
        "gunicorn's socket I/O, nor the wait for a free worker thread):",
        "",
        row("phase", "requests", "median", "p95", "p99"),
        row(*["---"] * 5),
    ]
    for name, label in PHASE_LABELS.items():
        if r.get(name):
            s = r[name]["server"]
            lines.append(row(label, s["count"], ms(s["p50_ms"]), ms(s["p95_ms"]), ms(s["p99_ms"])))

    groups = ("gunicorn", "postgres", "load generator", "other processes")
    lines += [
        "",
        "CPU per request, in ms of one core, by process group (warm-up included); for the loops also the cores "
        'each group kept busy. "other processes" is everything else on the machine:',
        "",
        row("phase", *groups, "cores busy (same order)"),
        row(*["---"] * 6),
    ]
    for name, label in PHASE_LABELS.items():
        cpu = (r.get(name) or {}).get("cpu") or {}
        if cpu.get("cpu_ms_per_request"):
            per = cpu["cpu_ms_per_request"]
            cores = " / ".join(f"{cpu['cores'][g]:.2f}" for g in groups) if "cores" in cpu else "–"
            lines.append(row(label, *(f"{per[g]:.1f}" for g in groups), cores))

    lines += derived_figures(r)
    statuses = {name: r[name]["statuses"] for name in ("closed_me", "closed_post", "open_post") if r.get(name)}
    lines += ["", f"Answers by status: `{json.dumps(statuses)}`."]
    if opn:
        lines.append(
            f"Open-loop dispatch lag (how late the generator sent against its timetable): median "
            f"{ms(opn['dispatch_lag']['p50_ms'])}, p99 {ms(opn['dispatch_lag']['p99_ms'])}."
        )
    if sync and sync["unexpected_statuses"]:
        lines.append(f"Sync items not `created`: {sync['unexpected_statuses']}.")
    busy = {
        PHASE_LABELS[name]: r[name]["cpu"]["cores"]["other processes"]
        for name in ("closed_me", "closed_post", "open_post")
        if r.get(name) and "cores" in r[name].get("cpu", {})
    }
    noisy = {label: cores for label, cores in busy.items() if cores > OTHER_LOAD_LIMIT}
    if noisy:
        phases = ", ".join(f"{label} {cores:.2f} cores" for label, cores in noisy.items())
        lines.append(
            f"WARNING: other processes on this machine used CPU during the run ({phases}); these figures are "
            "contaminated by them. Run again when the machine is quiet."
        )
    lines += [
        "",
        "The load generator is one asyncio process on the same cores as gunicorn and PostgreSQL, so the "
        "closed-loop throughputs are shared-machine figures; the budget reads their ratio.",
        "",
    ]
    if r.get("insight"):
        lines += ["", insight.report(r["insight"])]
        missed += [f"insight: {key}" for key, v in r["insight"]["verdicts"].items() if not v["pass"]]
    if r.get("sweep"):
        lines += ["", sweep.report(r["sweep"])]
        missed += [] if r["sweep"]["budget_met"] and r["sweep"]["duplicates"] == 0 else ["reminder sweep"]
    lines += ["", f"**MISSED: {'; '.join(missed)}**" if missed else "All budgets met."]
    return "\n".join(lines) + "\n", missed


def git_commit() -> str:
    head = subprocess.run(["git", "rev-parse", "--short", "HEAD"], cwd=ROOT, capture_output=True, text=True)
    dirty = subprocess.run(["git", "status", "--porcelain"], cwd=ROOT, capture_output=True, text=True)
    return (head.stdout.strip() or "unknown") + ("+dirty" if dirty.stdout.strip() else "")


# --- Main ---------------------------------------------------------------------------------------


def parse_args(argv: list[str]) -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog="make bench", description="SPEC §5 write budgets (bench/README.md).")
    parser.add_argument("--quick", action="store_true", help="short durations and fewer sync runs (a smoke run)")
    parser.add_argument("--clients", type=int, default=32, help="concurrent phones in the closed loop [32]")
    parser.add_argument("--duration", type=float, default=15.0, help="closed-loop measured seconds, each [15]")
    parser.add_argument("--rounds", type=int, default=3, help="closed-loop turns of GET /me and POST [3]")
    parser.add_argument("--warmup", type=float, default=2.0, help="closed-loop warm-up seconds per turn [2]")
    parser.add_argument("--rate", type=float, default=100.0, help="open-loop requests a second [100]")
    parser.add_argument("--open-duration", type=float, default=20.0, help="open-loop measured seconds [20]")
    parser.add_argument("--sync-runs", type=int, default=15, help="measured 500-entry syncs [15]")
    parser.add_argument("--sync-size", type=int, default=500, help="entries per sync [500]")
    parser.add_argument("--workers", type=int, default=4, help="gunicorn workers [4]")
    parser.add_argument("--threads", type=int, default=4, help="gunicorn threads per worker [4]")
    parser.add_argument("--worker-class", default="gthread", help="gunicorn worker class [gthread]")
    parser.add_argument(
        "--phases",
        default="closed,open,sync,insight,sweep",
        help="which phases to run [closed,open,sync,insight,sweep]: the journal writes, the clinician reads "
        "(bench/insight.py) and the reminder sweep (bench/sweep.py)",
    )
    args = parser.parse_args(argv)
    if args.quick:
        args.duration, args.rounds, args.open_duration, args.sync_runs = 6.0, 1, 8.0, 5
    return args


async def measure(args, server: Gunicorn, phones: list[Phone], field_key: str) -> dict:
    import aiohttp

    base_url = f"http://127.0.0.1:{server.port}"
    phases = set(args.phases.split(","))
    load_phones = phones[: args.clients]
    sync_phones = phones[args.clients : args.clients + args.sync_runs + 2]
    raw_phone = phones[-1]
    requests = Requests(2026)
    results: dict = {}

    def session(*, force_close: bool = False):
        # A fresh pool per phase: a connection the server closed while idle between phases (gunicorn's
        # keep-alive is 2 s) would otherwise be picked up and fail as "Server disconnected".
        connector = aiohttp.TCPConnector(limit=args.clients, limit_per_host=args.clients, force_close=force_close)
        return aiohttp.ClientSession(base_url=base_url, connector=connector, timeout=aiohttp.ClientTimeout(total=60))

    meter = CpuMeter(server)

    def post_entry(phone: Phone):
        return requests.post_entry(phone, "post")

    async with session() as client:
        await refresh_tokens(client, phones, force=True)
    results["machine_busy_cores_before"] = wait_for_quiet(15.0 if args.quick else 90.0)
    if "closed" in phases:
        # GET /me and POST take turns in short rounds, so a slow spell of the machine falls on both.
        closed = {"closed_me": (requests.me, Outcome(), []), "closed_post": (post_entry, Outcome(), [])}
        segment = args.duration / args.rounds
        say(
            f"closed loop: GET /api/v1/me/ and POST /api/v1/entries/ in turn, {args.clients} clients, "
            f"{args.rounds} round(s) of {args.warmup:.0f}+{segment:.0f} s each"
        )
        for _ in range(args.rounds):
            for build, outcome, spans in closed.values():
                async with session() as client:
                    meter.start()
                    await closed_loop(client, load_phones, build, args.warmup, segment, outcome)
                    spans.append(meter.stop())
        for name, (_, outcome, spans) in closed.items():
            results[name] = closed_summary(outcome, args.clients, args.rounds, args.warmup, args.duration)
            results[name]["cpu"] = cpu_figures(spans, outcome.total)
    if "open" in phases:
        say(f"open loop: POST /api/v1/entries/ at {args.rate:.0f} req/s, 2+{args.open_duration:.0f} s")
        async with session() as client:
            await refresh_tokens(client, load_phones)
            meter.start()
            results["open_post"] = await open_loop(client, load_phones, requests, args.rate, 2.0, args.open_duration)
            results["open_post"]["cpu"] = cpu_figures([meter.stop()], results["open_post"]["requests_total"])
    if "sync" in phases:
        say(f"sync: {args.sync_runs} × {args.sync_size} entries (+2 warm-up), each followed by the raw INSERT")
        # One new connection per sync, as a phone coming back online opens one.
        async with session(force_close=True) as client:
            results["sync"] = await sync_and_raw(
                client, meter, sync_phones, raw_phone, args.sync_runs, 2, args.sync_size, field_key
            )
    time.sleep(0.5)  # the last log lines reach the file
    durations = server_durations(server.log_path)
    for name in ("closed_me", "closed_post", "open_post", "sync"):
        if name in results:
            attach_server_times(results[name], durations)
    return results


def main(argv: list[str]) -> int:
    args = parse_args(argv)
    from cryptography.fernet import Fernet

    OUT.mkdir(parents=True, exist_ok=True)
    port = spare_port()
    field_key = Fernet.generate_key().decode()
    env = bench_env(port, field_key, database=BENCH_DB, redis_url=REDIS_DB_URL)
    started_at = datetime.now(UTC).replace(microsecond=0)
    phones_needed = args.clients + args.sync_runs + 2 + 1

    server = Gunicorn(env, port, args.workers, args.threads, args.worker_class, OUT / "gunicorn.log")

    def on_term(signum, frame):
        raise KeyboardInterrupt

    signal.signal(signal.SIGTERM, on_term)
    try:
        say(f"recreating database {BENCH_DB} and migrating it")
        recreate_database()
        run_django(env, ["manage.py", "migrate", "--noinput"])
        say(f"seeding {phones_needed} enrolled patients (default PBKDF2 hashing: ~{phones_needed // 2} s)")
        phones = seed(env, phones_needed)
        say(f"starting gunicorn ({' '.join(server.args[4:])})")
        server.start()
        server.wait_ready()
        results = asyncio.run(measure(args, server, phones, field_key))
    except KeyboardInterrupt:
        say("interrupted")
        return 130
    finally:
        server.stop()
    # The other parts run after the journal server has stopped, each on its own database and server.
    phases = set(args.phases.split(","))
    try:
        if "insight" in phases:
            results["insight"] = insight.run(env=env, quick=args.quick)
        if "sweep" in phases:
            results["sweep"] = sweep.run(env=env, quick=args.quick, log=say)
    except KeyboardInterrupt:
        say("interrupted")
        return 130

    results |= {
        "started_at": started_at.isoformat(),
        "commit": git_commit(),
        "args": vars(args),
        "budgets": BUDGETS,
        "verdicts": {},
        "machine": {"cores": os.cpu_count(), "python": platform.python_version(), "platform": platform.platform()},
        "server": {"config": " ".join(server.args[4:]), "database": BENCH_DB, "redis": REDIS_DB_URL},
        "load_generator": f"aiohttp {__import__('aiohttp').__version__}, one asyncio process, "
        f"{args.clients} keep-alive connections",
    }
    markdown, missed = build_report(results)
    (OUT / "report.md").write_text(markdown)
    results["missed"] = missed
    (OUT / "report.json").write_text(json.dumps(results, indent=2, default=str) + "\n")
    print(markdown)
    return 0


if __name__ == "__main__":
    if len(sys.argv) > 1 and sys.argv[1] == "_create":
        _django_create(int(sys.argv[2]))
    elif len(sys.argv) > 1 and sys.argv[1] == "_enroll":
        _django_enroll(sys.argv[2])
    else:
        sys.exit(main(sys.argv[1:]))
