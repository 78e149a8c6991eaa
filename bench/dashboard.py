"""The dashboard pages' budgets (issue 6) on the data set bench.insight loads (1,000 patients × 365
days): the patient page with 365 days, p95 server time ≤ 150 ms; the triage page of a clinician with
200 patients ≤ 200 ms (the 1,000-patient page is reported too). Called by bench.insight with its
running gunicorn; sign-in is a Django session made in a subprocess, as a browser would hold."""

from __future__ import annotations

import json
import random
import urllib.request
import uuid

from bench.common import run_django, summary_ms

BUDGETS = {"patient_page_p95_ms": 150.0, "triage_page_200_p95_ms": 200.0}

_SESSION = """
import django, json; django.setup()
from django.conf import settings
from django.contrib.auth import BACKEND_SESSION_KEY, HASH_SESSION_KEY, SESSION_KEY
from django.contrib.sessions.backends.db import SessionStore
from accounts.models import User
keys = {}
for email in EMAILS:
    user = User.objects.get(email=email)
    session = SessionStore()
    session[SESSION_KEY] = str(user.pk)
    session[BACKEND_SESSION_KEY] = "django.contrib.auth.backends.ModelBackend"
    session[HASH_SESSION_KEY] = user.get_session_auth_hash()
    session.create()
    keys[email] = session.session_key
print(json.dumps({"cookie": settings.SESSION_COOKIE_NAME, "keys": keys}))
"""


def sessions(env: dict, emails: list[str]) -> tuple[str, dict[str, str]]:
    """A signed-in dashboard session per clinician (two-factor is off in the bench's env)."""
    output = run_django(env, ["-c", _SESSION.replace("EMAILS", json.dumps(emails))])
    made = json.loads(output.strip().splitlines()[-1])
    return made["cookie"], made["keys"]


def _get(base: str, path: str, cookie: str, request_id: str) -> int:
    request = urllib.request.Request(base + path)  # noqa: S310 - loopback
    request.add_header("Cookie", cookie)
    request.add_header("X-Request-ID", request_id)
    with urllib.request.urlopen(request, timeout=120) as response:  # noqa: S310 - loopback
        body = response.read()
        if response.status != 200 or b"<html" not in body:
            raise RuntimeError(f"{path} answered {response.status}")
        return len(body)


def measure(base: str, env: dict, *, large: str, small: str, patient_ids: list[str], runs: int) -> dict:
    """Requests (with request ids) for the patient page and both triage pages; the caller reads the
    server durations from gunicorn's log and hands them to `summarize`."""
    cookie_name, keys = sessions(env, [large, small])
    cookies = {email: f"{cookie_name}={key}" for email, key in keys.items()}
    rng = random.Random(6)
    ids: dict[str, list[str]] = {"patient_page": [], "triage_page_200": [], "triage_page_1000": []}
    sizes: dict[str, int] = {}
    for n in range(runs + 5):
        patient = rng.choice(patient_ids)
        for name, path, who in (
            ("patient_page", f"/dashboard/patients/{patient}/?days=365", large),
            ("triage_page_200", "/dashboard/", small),
            ("triage_page_1000", "/dashboard/", large),
        ):
            if name.startswith("triage_page") and n % 3:
                continue  # a third as many triage pages: they are the slower, steadier reads
            rid = f"bench-dash-{name}-{n:04d}-{uuid.uuid4().hex[:6]}"
            sizes[name] = _get(base, path, cookies[who], rid)
            if n >= 5:  # warm-up
                ids[name].append(rid)
    return {"_request_ids": ids, "html_bytes": sizes}


def summarize(measured: dict, durations: dict[str, float]) -> dict:
    results = {}
    for name, request_ids in measured.pop("_request_ids").items():
        found = [durations[rid] / 1000 for rid in request_ids if rid in durations]
        results[name] = {"server": summary_ms(found), "html_bytes": measured["html_bytes"].get(name)}
    return results


def verdicts(results: dict) -> dict:
    patient_p95 = results["patient_page"]["server"]["p95_ms"]
    triage_p95 = results["triage_page_200"]["server"]["p95_ms"]
    return {
        "patient_page_p95_ms": {"value": patient_p95, "budget": BUDGETS["patient_page_p95_ms"],
                                "ok": patient_p95 is not None and patient_p95 <= BUDGETS["patient_page_p95_ms"]},
        "triage_page_200_p95_ms": {"value": triage_p95, "budget": BUDGETS["triage_page_200_p95_ms"],
                                   "ok": triage_p95 is not None and triage_p95 <= BUDGETS["triage_page_200_p95_ms"]},
    }  # fmt: skip
