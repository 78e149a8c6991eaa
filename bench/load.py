"""Load (issue 7): 300 simulated phones and 20 clinicians against gunicorn for 5 minutes, on the
data set bench.insight loads (1,000 patients × 365 days; generate_load gives the first 300 patients
a phone password and the clinics their clinicians).

Each phone signs in, then loops with a think time: posts an entry, syncs a small batch (some of it
retried, as a phone on a bad network does), reads its open prompts and its changes feed. Each
clinician loops over the triage list (API), a patient's dashboard page and the alert inbox. The run
passes when nothing answered an error and the database holds exactly the entries the phones were
told were accepted (201/200, or `created`/`unchanged` in a sync) — no more, no fewer.

`run_load(base, env, ...)` is called by bench.insight with its gunicorn; p95 per endpoint comes
from the client (what a phone waits) and from the server's own request log.
"""

from __future__ import annotations

import asyncio
import json
import random
import time
import uuid
from collections import defaultdict
from datetime import UTC, datetime, timedelta

from bench import dashboard
from bench.common import say, server_durations, summary_ms

PHONES = 300
CLINICIANS = 20
PHONE_PASSWORD = "phone-load-password-7730"  # backend/loadgen.py
CLINICIAN_PASSWORD = "load-test-password-8841"
PHONE_THINK_S = (2.0, 6.0)
CLINICIAN_THINK_S = (1.0, 3.0)
# Phones come online over the first half of the run: a password check is ~0.5 s of CPU by design
# (PBKDF2, 10^6 rounds), and a phone keeps its sign-in for 30 days, so 300 in the same minute would
# measure the hasher, not a morning.
SIGN_IN_SPREAD = 0.5


def _iso(moment: datetime) -> str:
    return moment.astimezone(UTC).isoformat().replace("+00:00", "Z")


def _entry(rng: random.Random) -> dict:
    occurred = datetime.now(UTC) - timedelta(seconds=rng.uniform(5, 3600))
    kind = rng.choices(("check_in", "craving", "use"), weights=(6, 3, 1))[0]
    item = {"id": str(uuid.uuid4()), "kind": kind, "occurred_at": _iso(occurred)}
    if kind == "check_in":
        item |= {"craving": rng.randint(0, 10), "mood": rng.randint(0, 10)}
    elif kind == "craving":
        item["craving"] = rng.randint(1, 10)
    else:
        item |= {"substance": "alcohol", "craving": rng.randint(0, 10)}
    if rng.random() < 0.3:
        item["note"] = "a short note " * rng.randint(1, 10)
    return item


class Tally:
    """What the clients saw: latencies per endpoint, errors, and every entry id the server accepted."""

    def __init__(self):
        self.latency: dict[str, list[float]] = defaultdict(list)
        self.request_ids: dict[str, list[str]] = defaultdict(list)
        self.errors: list[str] = []
        self.accepted: set[str] = set()
        self.counter = 0

    def request_id(self, endpoint: str) -> str:
        self.counter += 1
        rid = f"bench-load-{self.counter:08d}"
        self.request_ids[endpoint].append(rid)
        return rid


async def _call(session, tally: Tally, endpoint: str, method: str, path: str, *, headers: dict,
                body: dict | None = None, expect: tuple[int, ...] = (200,)) -> tuple[int, bytes]:  # fmt: skip
    headers = {**headers, "X-Request-ID": tally.request_id(endpoint)}
    data = json.dumps(body).encode() if body is not None else None
    if data is not None:
        headers["Content-Type"] = "application/json"
    started = time.perf_counter()
    try:
        async with session.request(method, path, data=data, headers=headers) as response:
            content = await response.read()
            status = response.status
    except Exception as exc:  # noqa: BLE001 - every failure is counted, none is hidden
        tally.errors.append(f"{endpoint}: {type(exc).__name__}")
        return 0, b""
    tally.latency[endpoint].append(time.perf_counter() - started)
    if status not in expect:
        tally.errors.append(f"{endpoint}: {status} {content[:200]!r}")
    return status, content


async def _phone(session, tally: Tally, number: int, seconds: float, deadline: float) -> None:
    rng = random.Random(number)
    email = f"p{number:04d}@load.interlude.test"
    await asyncio.sleep(rng.uniform(0, SIGN_IN_SPREAD * seconds))
    status, content = await _call(session, tally, "POST /auth/token/", "POST", "/api/v1/auth/token/",
                                  headers={}, body={"email": email, "password": PHONE_PASSWORD})  # fmt: skip
    if status != 200:
        return
    headers = {"Authorization": f"Bearer {json.loads(content)['access']}"}
    pending_retry: list[dict] = []
    while time.monotonic() < deadline:
        action = rng.choices(("post", "sync", "prompts", "changes"), weights=(4, 2, 2, 1))[0]
        if action == "post":
            item = _entry(rng)
            status, _ = await _call(session, tally, "POST /entries/", "POST", "/api/v1/entries/", headers=headers,
                                    body=item, expect=(201,))  # fmt: skip
            if status == 201:
                tally.accepted.add(item["id"])
        elif action == "sync":
            # A batch of new entries plus, sometimes, the last batch again (its answer "was lost").
            batch = [_entry(rng) for _ in range(rng.randint(1, 8))]
            items = batch + (pending_retry if rng.random() < 0.3 else [])
            status, content = await _call(session, tally, "POST /entries/sync/", "POST", "/api/v1/entries/sync/",
                                          headers=headers, body={"entries": items})  # fmt: skip
            if status == 200:
                for result in json.loads(content)["results"]:
                    if result["status"] in ("created", "unchanged"):
                        tally.accepted.add(str(result["id"]))
                    else:
                        tally.errors.append(f"sync item {result['status']}")
            pending_retry = batch
        elif action == "prompts":
            await _call(session, tally, "GET /prompts/", "GET", "/api/v1/prompts/?status=open", headers=headers)
        else:
            await _call(session, tally, "GET /entries/changes/", "GET", "/api/v1/entries/changes/", headers=headers)
        await asyncio.sleep(rng.uniform(*PHONE_THINK_S))


async def _clinician(session, tally: Tally, number: int, token: str, cookie: str, patient_ids: list[str],
                     deadline: float) -> None:  # fmt: skip
    rng = random.Random(10_000 + number)
    api = {"Authorization": f"Bearer {token}"}
    page = {"Cookie": cookie}
    await asyncio.sleep(rng.uniform(0, CLINICIAN_THINK_S[1]))
    while time.monotonic() < deadline:
        action = rng.choices(("triage", "patient", "alerts", "trends"), weights=(2, 3, 2, 2))[0]
        patient = rng.choice(patient_ids)
        if action == "triage":
            await _call(session, tally, "GET /patients/ (triage)", "GET", "/api/v1/patients/", headers=api)
        elif action == "patient":
            await _call(session, tally, "GET /dashboard/patients/{id}/", "GET",
                        f"/dashboard/patients/{patient}/?days=90", headers=page)  # fmt: skip
        elif action == "alerts":
            await _call(session, tally, "GET /dashboard/alerts/", "GET", "/dashboard/alerts/", headers=page)
        else:
            await _call(session, tally, "GET /patients/{id}/trends/", "GET",
                        f"/api/v1/patients/{patient}/trends/", headers=api)  # fmt: skip
        await asyncio.sleep(rng.uniform(*CLINICIAN_THINK_S))


async def _drive(base: str, env: dict, clinician_email: str, patient_ids: list[str], seconds: float, phones: int,
                 clinicians: int) -> Tally:  # fmt: skip
    import aiohttp

    tally = Tally()
    cookie_name, keys = dashboard.sessions(env, [clinician_email])
    cookie = f"{cookie_name}={keys[clinician_email]}"
    # A new connection per request, as a phone that sleeps seconds between requests has: reusing an
    # idle keep-alive connection races gunicorn closing it (2 s) and fails as a client-side reset.
    connector = aiohttp.TCPConnector(limit=phones + clinicians, force_close=True)
    timeout = aiohttp.ClientTimeout(total=60)
    async with aiohttp.ClientSession(base_url=base, connector=connector, timeout=timeout) as session:
        tokens = []
        for _ in range(clinicians):  # one sign-in each, as people at their desks would
            credentials = {"email": clinician_email, "password": CLINICIAN_PASSWORD}
            status, content = await _call(session, tally, "POST /auth/token/", "POST", "/api/v1/auth/token/",
                                          headers={}, body=credentials)  # fmt: skip
            tokens.append(json.loads(content)["access"] if status == 200 else "")
        deadline = time.monotonic() + seconds
        await asyncio.gather(
            *(_phone(session, tally, n, seconds, deadline) for n in range(1, phones + 1)),
            *(_clinician(session, tally, n, tokens[n], cookie, patient_ids, deadline) for n in range(clinicians)),
        )
    return tally


def _stored(env: dict, ids: set[str]) -> int:
    import psycopg

    dsn = env["DATABASE_URL"].replace("postgres://", "postgresql://")
    with psycopg.connect(dsn) as conn:
        return conn.execute("SELECT count(*) FROM journal_entry WHERE id = ANY(%s::uuid[])", [list(ids)]).fetchone()[0]


def run_load(base: str, env: dict, log_path, *, clinician_email: str, patient_ids: list[str], seconds: float,
             phones: int = PHONES, clinicians: int = CLINICIANS) -> dict:  # fmt: skip
    say(f"load: {phones} phones and {clinicians} clinicians for {seconds:.0f} s")
    started = time.perf_counter()
    tally = asyncio.run(_drive(base, env, clinician_email, patient_ids, seconds, phones, clinicians))
    elapsed = time.perf_counter() - started
    time.sleep(0.5)
    durations = server_durations(log_path)
    endpoints = {}
    for endpoint, latencies in sorted(tally.latency.items()):
        server = [durations[rid] / 1000 for rid in tally.request_ids[endpoint] if rid in durations]
        endpoints[endpoint] = {"requests": len(latencies), "client": summary_ms(latencies),
                               "server": summary_ms(server)}  # fmt: skip
    stored = _stored(env, tally.accepted)
    requests = sum(len(v) for v in tally.latency.values())
    return {
        "phones": phones,
        "clinicians": clinicians,
        "seconds": round(elapsed, 1),
        "requests": requests,
        "requests_per_s": round(requests / elapsed, 1),
        "errors": len(tally.errors),
        "error_samples": tally.errors[:10],
        "accepted_entries": len(tally.accepted),
        "stored_entries": stored,
        "endpoints": endpoints,
        "ok": not tally.errors and stored == len(tally.accepted),
    }
