"""The permission matrix (SPEC §3, §4): every (method, path) of the OpenAPI schema × every actor,
on the world's real objects. Generated from the schema, so a new route is in the matrix the day
it is added, and fails until EXPECTATIONS says who may use it.

Outcome classes:
- allowed: 2xx, or a 4xx that proves the request got past the permission layer (400, 409, 412,
  413, 415, 429); never 401/403/404.
- forbidden: 403 `permission_denied` for a role that may not use the route, decided before any
  lookup (a random id gets the very same answer).
- hidden: 404 `not_found` for another patient's object, or a patient outside the caller's care
  teams; the very same answer as for an id that does not exist.
- unauthenticated: 401 `not_authenticated`.
"""

import fnmatch
import json

import pytest

from tests.routes import PUBLIC_PATHS, schema_operations
from tests.security.calls import call, content_of
from tests.security.conftest import ACTORS

pytestmark = pytest.mark.django_db

A, F, H, U = "allowed", "forbidden", "hidden", "unauthenticated"
# Whose objects fill an actor's paths when we look for leaks: the patient whose data they may read.
HOME = {"patient": "mine", "other_patient": "theirs", "clinician": "mine", "outsider": "theirs"}

_ALL = (A, A, A, A, A, A)
_PATIENTS_ONLY = (A, A, F, F, F, F)
# A patient's own object (entry, schedule, prompt): another patient gets 404, clinicians 403.
_OWN_OBJECT = (A, H, F, F, F, F)

# First match wins. Columns: patient (the object's owner), other_patient, clinician (on the
# patient's care team), outsider (same clinic, not on it), admin (clinic admin, on no care team),
# foreign_admin (admin of another clinic). Anonymous is 401 everywhere but on PUBLIC_PATHS.
RULES: list[tuple[str, str, tuple[str, ...]]] = [
    ("*", "/api/v1/patients/{patient_id}/care-team/", (F, F, F, F, A, H)),
    ("*", "/api/v1/patients/", (F, F, A, A, A, A)),
    ("*", "/api/v1/patients/{*", (F, F, A, H, H, H)),
    ("*", "/api/v1/alerts/", (F, F, A, A, A, A)),
    ("*", "/api/v1/alerts/{*", (F, F, A, H, H, H)),
    ("*", "/api/v1/audit/", (F, F, F, F, A, A)),
    ("*", "/api/v1/exports/*", (F, F, F, F, A, A)),
    ("delete", "/api/v1/me/", _PATIENTS_ONLY),
    ("*", "/api/v1/me/", _ALL),
    ("*", "/api/v1/me/password/", _ALL),
    ("*", "/api/v1/me/*", _PATIENTS_ONLY),
    ("*", "/api/v1/auth/logout/", _ALL),
    ("*", "/api/v1/instruments/", _ALL),
    ("*", "/api/v1/devices/", _ALL),
    ("*", "/api/v1/devices/{*", (A, H, H, H, H, H)),  # anyone may have devices; only the owner sees one
    *[("*", f"/api/v1/{kind}/{{*", _OWN_OBJECT) for kind in ("entries", "reminders", "prompts")],
    *[("*", f"/api/v1/{kind}/*", _PATIENTS_ONLY) for kind in ("entries", "reminders", "prompts")],
    ("*", "/api/v1/assessments/", _PATIENTS_ONLY),
    ("*", "/api/v1/sessions/", _PATIENTS_ONLY),
]


def expectation(method: str, path: str, actor: str) -> str:
    if path in PUBLIC_PATHS:
        return A
    for methods, pattern, outcomes in RULES:
        if methods in ("*", method) and fnmatch.fnmatchcase(path, pattern):
            return U if actor == "anonymous" else dict(zip(ACTORS, outcomes, strict=False))[actor]
    raise LookupError(f"no expectation for {method.upper()} {path}: add a rule to RULES")


OPERATIONS = schema_operations()
# Known bugs: (method, path, actor) -> the bug in one line. Each becomes a strict xfail.
KNOWN_BUGS: dict[tuple[str, str, str], str] = {}


def _cases() -> list:
    cases = []
    for method, path in OPERATIONS:
        for actor in ACTORS:
            bug = KNOWN_BUGS.get((method, path, actor))
            marks = [pytest.mark.xfail(strict=True, reason=bug)] if bug else []
            cases.append(pytest.param(method, path, actor, id=f"{method.upper()} {path} as {actor}", marks=marks))
    return cases


def test_every_route_of_the_schema_has_an_expectation_for_every_actor():
    missing = []
    for method, path in OPERATIONS:
        try:
            for actor in ACTORS:
                expectation(method, path, actor)
        except LookupError as error:
            missing.append(str(error))
    assert not missing, "\n".join(missing)
    assert len(OPERATIONS) >= 60  # the schema really was read


def _error_code(response) -> str | None:
    try:
        return response.json()["error"]["code"]
    except (ValueError, KeyError, TypeError):
        return None


ALLOWED_4XX = {400, 409, 412, 413, 415, 429}


@pytest.mark.parametrize(("method", "path", "actor"), _cases())
def test_permission_matrix(world, method, path, actor):
    expected = expectation(method, path, actor)
    client, tokens = world.sessions[actor]
    response = call(client, method, path, world, tokens=tokens, ids=world.mine.ids)
    request = f"{method.upper()} {path} as {actor}"
    got = f"{response.status_code} {content_of(response)[:300]!r}"

    if expected == A:
        assert response.status_code < 300 or response.status_code in ALLOWED_4XX, f"{request}: allowed, got {got}"
        return
    status, code = {F: (403, "permission_denied"), H: (404, "not_found"), U: (401, "not_authenticated")}[expected]
    assert (response.status_code, _error_code(response)) == (status, code), f"{request}: {expected}, got {got}"
    if expected in (F, H):
        # The same answer for ids that exist and ids that don't: no hint either way.
        blind = call(client, method, path, world, tokens=tokens, ids={})
        assert blind.status_code == status, f"{request} on random ids: {blind.status_code}"
        mine, theirs = response.json()["error"], blind.json()["error"]
        assert mine == theirs, f"{request}: {mine} differs from the answer for a random id {theirs}"


READS = [(method, path) for method, path in OPERATIONS if method == "get"]


@pytest.mark.parametrize("actor", [a for a in ACTORS if a != "anonymous"])
def test_no_read_an_actor_may_make_shows_a_patient_they_may_not_see(world, actor):
    """Every GET an actor is allowed, filled with the ids of the patient they may see, holds no
    id, name or note of a patient outside their reach. A clinic admin's audit log and clinic-wide
    export are the two reads that cover every patient of their own clinic (SPEC §10, §11)."""
    client, tokens = world.sessions[actor]
    objects = {"mine": world.mine, "theirs": world.theirs}
    home = objects[HOME[actor]] if actor in HOME else world.mine
    unreachable = [objects[name] for name in objects if HOME.get(actor) != name]
    markers = set().union(*(o.markers for o in unreachable))
    checked = 0
    for method, path in READS:
        if expectation(method, path, actor) != A:
            continue
        if actor == "admin" and path.startswith(("/api/v1/audit/", "/api/v1/exports/")):
            continue
        if actor in ("admin", "foreign_admin") and "{patient_id}" in path:
            continue  # reached only for care teams, where the URL names the patient
        response = call(client, method, path, world, tokens=tokens, ids=home.ids)
        assert response.status_code == 200, (path, response.status_code, content_of(response)[:300])
        text = content_of(response).decode()
        leaked = sorted(marker for marker in markers if marker in text)
        assert not leaked, f"GET {path} as {actor} shows {leaked}: {json.dumps(text)[:500]}"
        checked += 1
    assert checked >= 3
