"""How to call any route of the schema on the world's real objects: a valid body (or query) per
(method, path) template, so a request reaches past validation to the permission and lookup layers."""

import uuid
from collections.abc import Callable
from urllib.parse import urlencode

from rest_framework.test import APIClient

from accounts.services import patient_create
from tests.conftest import sign_in
from tests.factories import PASSWORD
from tests.routes import fill
from tests.security.conftest import World
from tests.timeutil import iso_ago

Builder = Callable[[World, dict | None], dict]


def _enrollment_code(world: World) -> str:
    _, code, _ = patient_create(
        clinician=world.cast.clinician, display_name="Newcomer Notyet", timezone_name="Europe/Berlin", substances=[]
    )
    return code


def _fresh_refresh(world: World) -> str:
    return sign_in(APIClient(), world.cast.patient.user.email)["refresh"]


# A valid body for every write of the schema. `tokens` are the caller's own (None when anonymous).
BODIES: dict[tuple[str, str], Builder] = {
    ("post", "/api/v1/alerts/{alert_id}/acknowledge/"): lambda w, t: {"note": "Seen, calling today."},
    ("post", "/api/v1/alerts/{alert_id}/resolve/"): lambda w, t: {"note": "Talked it through."},
    ("post", "/api/v1/assessments/"): lambda w, t: {
        "instrument": "gad7",
        "answers": [1, 0, 0, 0, 0, 0, 0],
        "completed_at": iso_ago(hours=1),
    },
    ("post", "/api/v1/auth/enroll/"): lambda w, t: {
        "code": _enrollment_code(w),
        "email": f"new-{uuid.uuid4().hex[:8]}@example.org",
        "password": "a-brand-new-passphrase",
        "consent_version": "1",
    },
    ("post", "/api/v1/auth/logout/"): lambda w, t: {"refresh": t["refresh"] if t else "none"},
    ("post", "/api/v1/auth/password-reset/"): lambda w, t: {"email": w.cast.patient.user.email},
    # No reset mail is read here: an unknown token is the 400 that proves the route was reached.
    ("post", "/api/v1/auth/password-reset/confirm/"): lambda w, t: {
        "token": "not-a-token",
        "password": "a-brand-new-passphrase",
    },
    ("post", "/api/v1/auth/token/"): lambda w, t: {"email": w.cast.patient.user.email, "password": PASSWORD},
    ("post", "/api/v1/auth/token/refresh/"): lambda w, t: {"refresh": _fresh_refresh(w)},
    ("post", "/api/v1/devices/"): lambda w, t: {"platform": "ios", "token": f"tok-{uuid.uuid4().hex}"},
    ("post", "/api/v1/entries/"): lambda w, t: {"kind": "craving", "occurred_at": iso_ago(minutes=30), "craving": 4},
    ("patch", "/api/v1/entries/{entry_id}/"): lambda w, t: {"craving": 5},
    ("post", "/api/v1/entries/sync/"): lambda w, t: {
        "entries": [{"id": str(uuid.uuid4()), "kind": "craving", "occurred_at": iso_ago(minutes=40), "craving": 2}]
    },
    ("patch", "/api/v1/me/"): lambda w, t: {"display_name": "Renamed Self"},
    ("post", "/api/v1/me/password/"): lambda w, t: {
        "current_password": PASSWORD,
        "new_password": "an-even-longer-passphrase",
    },
    ("post", "/api/v1/patients/"): lambda w, t: {
        "display_name": "Newly Added",
        "timezone": "Europe/Berlin",
        "substances": ["alcohol"],
    },
    ("patch", "/api/v1/patients/{patient_id}/"): lambda w, t: {"substances": ["alcohol", "cocaine"]},
    ("post", "/api/v1/patients/{patient_id}/care-team/"): lambda w, t: {"clinician": str(w.cast.outsider.id)},
    ("post", "/api/v1/patients/{patient_id}/enrollment/"): lambda w, t: {},
    ("post", "/api/v1/patients/{patient_id}/reminders/"): lambda w, t: {
        "kind": "custom",
        "message": "Evening walk",
        "time": "18:00",
    },
    ("patch", "/api/v1/patients/{patient_id}/reminders/{schedule_id}/"): lambda w, t: {"enabled": False},
    ("post", "/api/v1/patients/{patient_id}/sessions/"): lambda w, t: {
        "kind": "integration",
        "starts_at": iso_ago(days=2),
        "duration_minutes": 50,
    },
    ("patch", "/api/v1/patients/{patient_id}/sessions/{session_id}/"): lambda w, t: {"duration_minutes": 45},
    ("post", "/api/v1/prompts/{prompt_id}/receipt/"): lambda w, t: {},
    ("post", "/api/v1/reminders/"): lambda w, t: {"kind": "check_in", "time": "20:00"},
    ("patch", "/api/v1/reminders/{schedule_id}/"): lambda w, t: {"time": "21:00"},
}

# Query strings a route needs to get past validation.
QUERIES: dict[tuple[str, str], Callable[[World], dict]] = {
    ("get", "/api/v1/consent/"): lambda w: {"code": _enrollment_code(w)},
    ("delete", "/api/v1/patients/{patient_id}/care-team/"): lambda w: {"clinician": str(w.cast.clinician.id)},
}


def call(client: APIClient, method: str, template: str, world: World, *, tokens=None, ids=None, body=None):
    """Calls `method template` with its ids filled from `ids` (random UUIDs for any missing), the
    route's query, and `body` (default: the route's valid body)."""
    url = fill(template, **(ids or {}))
    query = QUERIES.get((method, template))
    if query is not None:
        url += "?" + urlencode(query(world))
    if body is None and (method, template) in BODIES:
        body = BODIES[(method, template)](world, tokens)
    return getattr(client, method)(url, body, format="json")


def content_of(response) -> bytes:
    if getattr(response, "streaming", False):
        return b"".join(response.streaming_content)
    return response.content
