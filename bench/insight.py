"""The clinician-side budgets (issue 5): trends, the triage list and the clinic export, on the
data set of `generate_load --patients 1000 --days 365` (~1.5 M entries) behind gunicorn.

- One patient's 365-day trends: p95 server time ≤ 20 ms, and ≤ 2× a hand-written SQL query that
  returns the same daily figures straight from the entries, timed in the same run (interleaved).
  The two sides are what the budget names: the trends request's server time (the app's request
  log: routing, JWT auth, care-team check, access-log insert and commit, the trend, rendering; not
  the socket I/O) against the hand SQL's time from a psycopg client on the same machine (execute
  and fetch, prepared after 5 runs as the app's statements are). Each round reads one random
  patient three ways in a row: trends, hand SQL, and GET /patients/{id}/, the floor every care-team
  read pays before any trend is computed. The ratio verdict is on medians; the report gives p95s
  too, and, labelled as such and not as the budget, trends' own work: trends minus the floor, per
  round, against the hand SQL.
- Triage list: 200 patients p95 ≤ 100 ms, 1,000 patients ≤ 300 ms, the same query count for both.
- Clinic export of every entry without notes: ≥ 50,000 rows/s, the server's peak RSS < 250 MB
  (the rate with notes is reported too).

`run()` is called by bench.run (make bench); `python -m bench.insight [--quick]` runs it alone.
Its own database, interlude_bench_load, is recreated each run (`--keep-data` reuses a loaded one:
the load takes ~4 min); Redis db 6 is shared with bench.run. `--trends-only` skips triage and exports.
`--quick` loads 30 days, so its 365-day trends read a month of data: not the budget's figures.
"""

from __future__ import annotations

import argparse
import json
import os
import random
import sys
import time
import urllib.request
import uuid
from datetime import date, timedelta
from pathlib import Path

from bench import dashboard, load
from bench.common import (
    OUT,
    ROOT,
    Gunicorn,
    run_django,
    say,
    server_durations,
    spare_port,
    summary_ms,
)

LOAD_DB = "interlude_bench_load"
BUDGETS = {
    "trends_p95_ms": 20.0,
    "trends_vs_sql_ratio": 2.0,
    "triage_200_p95_ms": 100.0,
    "triage_1000_p95_ms": 300.0,
    "export_rows_per_s": 50_000.0,
    "export_peak_rss_mb": 250.0,
}
CLINICIAN_PASSWORD = "load-test-password-8841"  # backend/loadgen.py
LARGE, SMALL, ADMIN = "large@load.interlude.test", "small@load.interlude.test", "admin@load.interlude.test"

# The daily figures of /trends/ `days`, computed from the raw entries with nothing precomputed: the
# reference the trends endpoint (which reads daily rollups) is compared with.
HAND_SQL = """
SELECT d::date AS day, COUNT(e.id), ROUND(AVG(e.craving), 2), MAX(e.craving), ROUND(AVG(e.mood), 2),
       ROUND(AVG(e.anxiety), 2), ROUND(AVG(e.sleep_hours), 2),
       COALESCE(BOOL_OR(e.kind = 'use'), false), COALESCE(BOOL_OR(e.kind = 'check_in'), false)
FROM generate_series(%(first)s::date, %(last)s::date, interval '1 day') AS d
LEFT JOIN journal_entry e ON e.patient_id = %(patient)s AND e.local_date = d::date AND e.deleted_at IS NULL
GROUP BY d ORDER BY d
"""


_CARE_TEAM_OF_SMALL = (
    "import django, json; django.setup()\nfrom accounts.models import User\n"
    "from accounts.selectors import patients_visible_to\n"
    f"user = User.objects.get(email={SMALL!r})\n"
    "print(json.dumps([str(p) for p in patients_visible_to(user).values_list('pk', flat=True)]))"
)


def recreate_database() -> None:
    import psycopg

    with psycopg.connect("postgresql://postgres@127.0.0.1:5432/postgres", autocommit=True) as conn:
        conn.execute(f"DROP DATABASE IF EXISTS {LOAD_DB} WITH (FORCE)")
        conn.execute(f"CREATE DATABASE {LOAD_DB}")


def _request(base: str, path: str, token: str | None = None, body: dict | None = None, request_id: str = ""):
    request = urllib.request.Request(base + path, data=json.dumps(body).encode() if body else None)  # noqa: S310
    request.add_header("Content-Type", "application/json")
    if token:
        request.add_header("Authorization", f"Bearer {token}")
    if request_id:
        request.add_header("X-Request-ID", request_id)
    return urllib.request.urlopen(request, timeout=300)  # noqa: S310 - loopback


def _json(base: str, path: str, token: str | None = None, body: dict | None = None, request_id: str = "") -> dict:
    with _request(base, path, token, body, request_id) as response:
        return json.loads(response.read())


def _sign_in(base: str, email: str) -> str:
    return _json(base, "/api/v1/auth/token/", body={"email": email, "password": CLINICIAN_PASSWORD})["access"]


def _rss_mb(pids: list[int]) -> dict[str, float]:
    """Current and peak (VmHWM) resident memory of each process, the largest of each, in MB."""
    current = peak = 0.0
    for pid in pids:
        try:
            status = Path(f"/proc/{pid}/status").read_text()
        except OSError:
            continue
        fields = {line.split(":")[0]: line.split()[1] for line in status.splitlines() if line.startswith("Vm")}
        current = max(current, int(fields.get("VmRSS", 0)) / 1024)
        peak = max(peak, int(fields.get("VmHWM", 0)) / 1024)
    return {"rss_mb": current, "peak_rss_mb": peak}


# The trend's own statement and its parameter order, as journal.selectors.trends builds them; the
# parameters named by what each stands for, filled in per round.
_TREND_STATEMENT = (
    "import django, json; django.setup()\nfrom journal.selectors.trends import _trend_statement, trend_params\n"
    "print(json.dumps({'sql': _trend_statement('postgresql'), "
    "'params': trend_params('patient', 'first', 'last', 'first', 'last', 'today')}))"
)


def measure_trends(base: str, token: str, patient_ids: list[str], today: date, runs: int, env: dict) -> dict:
    import psycopg

    first, last = today - timedelta(days=364), today
    request_ids, sql_seconds, floor_ids, statement_seconds = [], [], [], []
    # The trend's own statement, run bare from the same client as the hand SQL: like for like.
    statement = json.loads(run_django(env, ["-c", _TREND_STATEMENT]).strip().splitlines()[-1])
    rng = random.Random(5)
    # The same session settings as the app's connections (backend/settings.py), so the comparison is
    # of the queries, not of PostgreSQL's parallel-worker start-up.
    dsn = env["DATABASE_URL"].replace("postgres://", "postgresql://")
    with psycopg.connect(dsn, options="-c max_parallel_workers_per_gather=0") as conn:
        for n in range(runs + 10):
            patient = rng.choice(patient_ids)
            rid = f"bench-trends-{n:04d}-{uuid.uuid4().hex[:6]}"
            _json(base, f"/api/v1/patients/{patient}/trends/?from={first}&to={last}", token, request_id=rid)
            started = time.perf_counter()
            rows = conn.execute(HAND_SQL, {"first": first, "last": last, "patient": patient}).fetchall()
            elapsed = time.perf_counter() - started
            assert len(rows) == 365
            started = time.perf_counter()
            values = {"patient": patient, "first": first, "last": last, "today": today}
            conn.execute(statement["sql"], [values[name] for name in statement["params"]]).fetchone()
            statement_elapsed = time.perf_counter() - started
            # The floor every care-team read pays before any trend is computed: authentication, the
            # care-team check, the access-log row and its commit (the patient's profile).
            floor_id = f"bench-floor-{n:04d}-{uuid.uuid4().hex[:6]}"
            _json(base, f"/api/v1/patients/{patient}/", token, request_id=floor_id)
            if n >= 10:  # warm-up: caches, connections
                request_ids.append(rid)
                sql_seconds.append(elapsed)
                statement_seconds.append(statement_elapsed)
                floor_ids.append(floor_id)
    return {"_request_ids": request_ids, "_floor_ids": floor_ids, "sql": summary_ms(sql_seconds),
            "trend_statement": summary_ms(statement_seconds), "from": str(first), "to": str(last)}  # fmt: skip


def trends_figures(trends: dict, durations: dict[str, float]) -> None:
    """Server time of the trends and floor requests from the request log, and trends' own work:
    per round, the trends request minus the floor request on the same patient."""
    rounds = zip(trends.pop("_request_ids"), trends.pop("_floor_ids"), strict=True)
    pairs = [
        (durations[rid] / 1000, durations[fid] / 1000) for rid, fid in rounds if rid in durations and fid in durations
    ]
    trends["server"] = summary_ms([t for t, _ in pairs])
    trends["floor_server"] = summary_ms([f for _, f in pairs])
    trends["own_work"] = summary_ms([t - f for t, f in pairs])
    for name in ("p50_ms", "p95_ms"):
        trends[f"ratio_{name[:3]}"] = trends["server"][name] / trends["sql"][name]
        trends[f"own_work_ratio_{name[:3]}"] = trends["own_work"][name] / trends["sql"][name]


def measure_triage(base: str, token: str, runs: int, tag: str) -> dict:
    request_ids, count = [], None
    for n in range(runs + 3):
        rid = f"bench-triage-{tag}-{n:04d}-{uuid.uuid4().hex[:6]}"
        count = _json(base, "/api/v1/patients/", token, request_id=rid)["count"]
        if n >= 3:
            request_ids.append(rid)
    return {"_request_ids": request_ids, "patients": count}


def measure_export(base: str, token: str, server: Gunicorn, include_notes: bool) -> dict:
    path = "/api/v1/exports/entries.csv" + ("?include_notes=true" if include_notes else "")
    rows, size, samples = 0, 0, []
    started = time.perf_counter()
    next_sample = started
    with _request(base, path, token) as response:
        while chunk := response.read(1 << 20):
            rows += chunk.count(b"\n")
            size += len(chunk)
            if time.perf_counter() >= next_sample:
                samples.append(_rss_mb(server.pids()[1:])["rss_mb"])
                next_sample += 1.0
    seconds = time.perf_counter() - started
    memory = _rss_mb(server.pids()[1:])
    return {
        "rows": rows,
        "bytes": size,
        "seconds": seconds,
        "rows_per_s": rows / seconds,
        "worker_rss_mb_samples": samples,
        "worker_rss_mb_max_sampled": max(samples, default=memory["rss_mb"]),
        "worker_peak_rss_mb": memory["peak_rss_mb"],
    }


def triage_query_counts(env: dict) -> dict:
    """Queries of the triage read for both clinicians, counted in a Django process on the same data."""
    script = (
        "import django, json; django.setup()\n"
        "from django.db import connection\n"
        "from django.test.utils import CaptureQueriesContext\n"
        "from accounts.models import User\n"
        "from dashboard.selectors import triage_rows\n"
        "out = {}\n"
        f"for email in ({SMALL!r}, {LARGE!r}):\n"
        "    user = User.objects.get(email=email)\n"
        "    with CaptureQueriesContext(connection) as queries:\n"
        "        rows = triage_rows(user)\n"
        "    out[email] = {'patients': len(rows), 'queries': len(queries)}\n"
        "print(json.dumps(out))\n"
    )
    return json.loads(run_django(env, ["-c", script]).strip().splitlines()[-1])


def run(*, env: dict, quick: bool, keep_data: bool = False, trends_only: bool = False) -> dict:
    """Loads the data set, measures, returns the figures (with `verdicts`)."""
    env = {**env, "DATABASE_URL": f"postgres://postgres@127.0.0.1:5432/{LOAD_DB}"}
    patients, days = (1000, 30) if quick else (1000, 365)
    load_seconds = None
    # The notes of the loaded data are encrypted with the key of the run that loaded them.
    key_file = OUT / f"{LOAD_DB}.key"
    if keep_data:
        say(f"insight: reusing {LOAD_DB} as it is (--keep-data)")
        if key_file.exists():
            env["FIELD_ENCRYPTION_KEYS"] = key_file.read_text().strip()
    else:
        key_file.write_text(env["FIELD_ENCRYPTION_KEYS"])
        say(f"insight: recreating {LOAD_DB}, generate_load --patients {patients} --days {days}")
        recreate_database()
        run_django(env, ["manage.py", "migrate", "--noinput"])
        started = time.perf_counter()
        run_django(env, ["manage.py", "generate_load", "--patients", str(patients), "--days", str(days)])
        load_seconds = time.perf_counter() - started
    patient_ids = json.loads(
        run_django(
            env,
            ["-c", "import django, json; django.setup()\nfrom accounts.models import Patient\n"
                   "print(json.dumps([str(p) for p in Patient.objects.values_list('pk', flat=True)]))"],
        ).strip().splitlines()[-1]
    )  # fmt: skip
    entries = int(
        run_django(
            env,
            ["-c", "import django; django.setup()\nfrom journal.models import Entry\nprint(Entry.objects.count())"],
        )
        .strip()
        .splitlines()[-1]
    )
    queries = None if trends_only else triage_query_counts(env)

    port = spare_port()
    env["PUBLIC_BASE_URL"] = f"http://127.0.0.1:{port}"
    server = Gunicorn(env, port, 2, 4, "gthread", OUT / "gunicorn-insight.log")
    base = f"http://127.0.0.1:{port}"
    results: dict = {"data": {"patients": patients, "days": days, "entries": entries, "load_seconds": load_seconds}}
    try:
        server.start()
        server.wait_ready()
        large, small, admin = _sign_in(base, LARGE), _sign_in(base, SMALL), _sign_in(base, ADMIN)
        runs = 40 if quick else 200
        say(f"insight: {runs} trend reads of 365 days, each followed by the hand-written SQL")
        results["trends"] = measure_trends(base, large, patient_ids, date.today(), runs, env)
        if not trends_only:
            say("insight: triage lists of 200 and 1,000 patients")
            results["triage_200"] = measure_triage(base, small, 20 if quick else 60, "small")
            results["triage_1000"] = measure_triage(base, large, 20 if quick else 60, "large")
            say("insight: the clinic export, without notes and with")
            results["export"] = measure_export(base, admin, server, include_notes=False)
            results["export_with_notes"] = measure_export(base, admin, server, include_notes=True)
            say("insight: dashboard pages: a patient's 365 days, the triage page of 200 and 1,000 patients")
            dashboard_requests = dashboard.measure(base, env, large=LARGE, small=SMALL, patient_ids=patient_ids,
                                                   runs=20 if quick else 60)  # fmt: skip
        time.sleep(0.5)
        durations = server_durations(server.log_path)
        if not trends_only:
            results["dashboard"] = dashboard.summarize(dashboard_requests, durations)
            # Last: the load writes entries, so it must not run before the figures above. Its
            # clinicians are the 200-patient one's desks; --quick runs a fifth of the crowd for 60 s.
            small_ids = json.loads(run_django(env, ["-c", _CARE_TEAM_OF_SMALL]).strip().splitlines()[-1])
            crowd = {"phones": 60, "clinicians": 4, "seconds": 60} if quick else {"seconds": 300}
            results["load"] = load.run_load(base, env, server.log_path, clinician_email=SMALL,
                                            patient_ids=small_ids, **crowd)  # fmt: skip
        trends_figures(results["trends"], durations)
        for name in ("triage_200", "triage_1000"):
            if name in results:
                found = [durations[rid] / 1000 for rid in results[name].pop("_request_ids") if rid in durations]
                results[name]["server"] = summary_ms(found)
    finally:
        server.stop()
    if queries is not None:
        results["triage_queries"] = queries
    results["verdicts"] = _verdicts(results)
    return results


def _verdicts(r: dict) -> dict:
    trends_p95 = r["trends"]["server"]["p95_ms"]
    trends_p50, sql_p50 = r["trends"]["server"]["p50_ms"], r["trends"]["sql"]["p50_ms"]
    checks = {
        "trends_p95_ms": (trends_p95, trends_p95 <= BUDGETS["trends_p95_ms"]),
        "trends_vs_sql_ratio": (trends_p50 / sql_p50, trends_p50 / sql_p50 <= BUDGETS["trends_vs_sql_ratio"]),
    }
    if "export" not in r:  # --trends-only
        return {key: {"value": value, "budget": BUDGETS.get(key), "pass": ok} for key, (value, ok) in checks.items()}
    counts = {v["queries"] for v in r["triage_queries"].values()}
    export = r["export"]
    checks |= {
        "triage_200_p95_ms": (r["triage_200"]["server"]["p95_ms"],
                              r["triage_200"]["server"]["p95_ms"] <= BUDGETS["triage_200_p95_ms"]),
        "triage_1000_p95_ms": (r["triage_1000"]["server"]["p95_ms"],
                               r["triage_1000"]["server"]["p95_ms"] <= BUDGETS["triage_1000_p95_ms"]),
        "triage_same_query_count": (sorted(counts), len(counts) == 1),
        "export_rows_per_s": (export["rows_per_s"], export["rows_per_s"] >= BUDGETS["export_rows_per_s"]),
        "export_peak_rss_mb": (export["worker_peak_rss_mb"],
                               export["worker_peak_rss_mb"] < BUDGETS["export_peak_rss_mb"]),
    }  # fmt: skip
    verdicts = {key: {"value": value, "budget": BUDGETS.get(key), "pass": ok} for key, (value, ok) in checks.items()}
    for key, figure in dashboard.verdicts(r["dashboard"]).items():
        verdicts[key] = {"value": figure["value"], "budget": figure["budget"], "pass": figure["ok"]}
    ld = r["load"]
    verdicts["load_no_errors_and_counts_match"] = {
        "value": f"{ld['errors']} errors, {ld['stored_entries']} of {ld['accepted_entries']} stored",
        "budget": "0 errors, all stored",
        "pass": r["load"]["ok"],
    }
    return verdicts


def report(r: dict) -> str:
    def ms(v):
        return "–" if v is None else f"{v:.1f} ms"

    def verdict(key):
        return "pass" if r["verdicts"][key]["pass"] else "**MISSED**"

    tr = r["trends"]
    t, s, floor, own = tr["server"], tr["sql"], tr["floor_server"], tr["own_work"]
    loaded = (
        "reused (--keep-data)" if r["data"]["load_seconds"] is None else f"loaded in {r['data']['load_seconds']:.0f} s"
    )
    lines = [
        "## Clinician reads (issue 5)",
        "",
        f"Data: `generate_load --patients {r['data']['patients']} --days {r['data']['days']}`, "
        f"{r['data']['entries']:,} entries, {loaded}. Server time is the app's own request log; one request at a "
        "time, gunicorn 2 workers × 4 threads. Trends, hand SQL and floor interleaved, one random patient a round, "
        f"{t['count']} rounds.",
        "",
        "| figure | median | p95 | ratio | budget | result |",
        "| --- | --- | --- | --- | --- | --- |",
        f"| 365-day trends of one patient (server) | {ms(t['p50_ms'])} | {ms(t['p95_ms'])} | | p95 ≤ 20 ms "
        f"| {verdict('trends_p95_ms')} |",
        f"| hand-written SQL: the same daily figures from the entries (psycopg client) | {ms(s['p50_ms'])} "
        f"| {ms(s['p95_ms'])} | trends {tr['ratio_p50']:.2f} × SQL (p95s: {tr['ratio_p95']:.2f} ×) | ≤ 2 × "
        f"| {verdict('trends_vs_sql_ratio')} |",
        f"| for scale: GET /patients/{{id}}/ (auth, care-team check, access log; no trends) | "
        f"{ms(floor['p50_ms'])} | {ms(floor['p95_ms'])} | floor alone {floor['p50_ms'] / s['p50_ms']:.2f} × SQL | | |",
        f"| not the budget: trends' own work, trends − floor per round | {ms(own['p50_ms'])} | {ms(own['p95_ms'])} "
        f"| {tr['own_work_ratio_p50']:.2f} × SQL (p95s: {tr['own_work_ratio_p95']:.2f} ×) | | reported |",
    ]
    if "trend_statement" in tr:
        st = tr["trend_statement"]
        lines.append(
            f"| not the budget: like for like, the trend's own SQL statement from the same psycopg client "
            f"(every figure of the response, not only the daily ones) | {ms(st['p50_ms'])} | {ms(st['p95_ms'])} "
            f"| {st['p50_ms'] / s['p50_ms']:.2f} × SQL (p95s: {st['p95_ms'] / s['p95_ms']:.2f} ×) | | reported |"
        )
    if "export" not in r:  # --trends-only
        return "\n".join(lines) + "\n"
    for key, label, budget in (("triage_200", "triage list, 200 patients", 100), ("triage_1000",
                               "triage list, 1,000 patients", 300)):  # fmt: skip
        sv = r[key]["server"]
        lines.append(f"| {label} (server) | {ms(sv['p50_ms'])} | {ms(sv['p95_ms'])} | | p95 ≤ {budget} ms "
                     f"| {verdict(key + '_p95_ms')} |")  # fmt: skip
    q = r["triage_queries"]
    lines.append(
        f"| triage queries, 200 vs 1,000 patients | {q[SMALL]['queries']} vs {q[LARGE]['queries']} | | | identical "
        f"| {verdict('triage_same_query_count')} |"
    )
    for key, label in (("export", "clinic export, no notes"), ("export_with_notes", "clinic export, with notes")):
        e = r[key]
        lines.append(
            f"| {label}: {e['rows']:,} rows, {e['bytes'] / 1e6:.0f} MB in {e['seconds']:.1f} s | "
            f"{e['rows_per_s']:,.0f} rows/s | | | "
            + ("≥ 50,000 rows/s | " + verdict("export_rows_per_s") if key == "export" else "reported | ")
            + " |"
        )
    e = r["export"]
    lines.append(
        f"| server worker peak RSS (VmHWM) after the exports | {e['worker_peak_rss_mb']:.0f} MB | | | < 250 MB "
        f"| {verdict('export_peak_rss_mb')} |"
    )
    lines += ["", "## Dashboard pages (issue 6)", "", "| page | median | p95 | HTML | budget | result |",
              "| --- | --- | --- | --- | --- | --- |"]  # fmt: skip
    for key, label, budget, verdict_key in (
        ("patient_page", "patient page, 365 days (server)", "p95 ≤ 150 ms", "patient_page_p95_ms"),
        ("triage_page_200", "triage page, 200 patients (server)", "p95 ≤ 200 ms", "triage_page_200_p95_ms"),
        ("triage_page_1000", "triage page, 1,000 patients (server)", "reported", None),
    ):
        page = r["dashboard"][key]
        lines.append(f"| {label} | {ms(page['server']['p50_ms'])} | {ms(page['server']['p95_ms'])} | "
                     f"{(page['html_bytes'] or 0) / 1024:.0f} KB | {budget} | "
                     f"{verdict(verdict_key) if verdict_key else 'reported'} |")  # fmt: skip
    ld = r["load"]
    lines += ["", "## Load (issue 7)", "",
              f"{ld['phones']} phones and {ld['clinicians']} clinicians for {ld['seconds']:.0f} s against this "
              f"gunicorn: {ld['requests']:,} requests ({ld['requests_per_s']:.0f}/s), **{ld['errors']} errors**; "
              f"entries the phones were told were accepted: {ld['accepted_entries']:,}, found in the database: "
              f"{ld['stored_entries']:,} — {verdict('load_no_errors_and_counts_match')}.", "",
              "| endpoint | requests | client p50 | client p95 | server p50 | server p95 |",
              "| --- | --- | --- | --- | --- | --- |"]  # fmt: skip
    for endpoint, figures in ld["endpoints"].items():
        c, sv = figures["client"], figures["server"]
        lines.append(f"| {endpoint} | {figures['requests']:,} | {ms(c['p50_ms'])} | {ms(c['p95_ms'])} | "
                     f"{ms(sv['p50_ms'])} | {ms(sv['p95_ms'])} |")  # fmt: skip
    if ld["error_samples"]:
        lines += ["", "Errors (first ten): " + "; ".join(ld["error_samples"])]
    return "\n".join(lines) + "\n"


def main(argv: list[str]) -> int:
    from cryptography.fernet import Fernet

    from bench.run import bench_env

    parser = argparse.ArgumentParser(prog="python -m bench.insight")
    parser.add_argument("--quick", action="store_true", help="30 days of data instead of 365")
    parser.add_argument("--keep-data", action="store_true", help=f"reuse {LOAD_DB} as it is loaded")
    parser.add_argument("--trends-only", action="store_true", help="skip the triage lists and the exports")
    args = parser.parse_args(argv)
    OUT.mkdir(parents=True, exist_ok=True)
    env = bench_env(spare_port(), Fernet.generate_key().decode())
    results = run(env=env, quick=args.quick, keep_data=args.keep_data, trends_only=args.trends_only)
    (OUT / "insight.json").write_text(json.dumps(results, indent=2, default=str) + "\n")
    print(report(results))
    return 0


if __name__ == "__main__":
    os.chdir(ROOT)
    sys.exit(main(sys.argv[1:]))
