"""Mass assignment (SPEC §3: server-owned fields are never taken from a request body): every
write of the schema, sent with its valid body plus every server-owned field with a hostile value,
stores none of them. Read back from the database, not from the response.

The list of writes comes from the schema; a write without an entry in WRITES fails, so a new
route cannot skip this."""

from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime
from zoneinfo import ZoneInfo

import pytest
from django.core.exceptions import FieldDoesNotExist, ObjectDoesNotExist, ValidationError
from django.db.models import Model

from accounts.models import CareTeamMembership, EnrollmentCode, Patient, User
from journal.models import Alert, Assessment, Entry, TherapySession
from reminders.models import Device, Prompt, Schedule
from tests.routes import PUBLIC_PATHS, schema_operations
from tests.security.calls import BODIES, call, content_of
from tests.security.conftest import World
from tests.security.test_permission_matrix import A, expectation

pytestmark = pytest.mark.django_db

HOSTILE_ID = "00000000-0000-4000-8000-00000000dead"
LONG_AGO = "2001-01-01T00:00:00Z"


def hostile_fields(world: World) -> dict:
    """Every server-owned field we know of, each with a value the server would never choose."""
    cast = world.cast
    someone_else = str(cast.outsider.id)
    return {
        "id": HOSTILE_ID,
        "patient": str(cast.other_patient.id),
        "patient_id": str(cast.other_patient.id),
        "user": str(cast.other_patient.user_id),
        "user_id": str(cast.other_patient.user_id),
        "clinic": str(cast.foreign_clinician.clinic_id),
        "clinic_id": str(cast.foreign_clinician.clinic_id),
        **dict.fromkeys(
            (
                "received_at",
                "created_at",
                "updated_at",
                "deleted_at",
                "acknowledged_at",
                "resolved_at",
                "sent_at",
                "completed_at",
                "expires_at",
                "opened_at",
                "last_fired_at",
                "used_at",
                "revoked_at",
                "date_joined",
                "last_login",
            ),
            LONG_AGO,
        ),  # fmt: skip
        "version": 99,
        "local_date": "2001-01-01",
        # Half a day from the patient's hour now: the entries these calls write are 30–40 minutes old.
        "local_hour": (datetime.now(ZoneInfo(cast.patient.timezone)).hour + 12) % 24,
        "change_seq": 999999,
        "late": True,
        "edited": True,
        "status": "discharged",
        "role": "clinician",
        "is_clinic_admin": True,
        "is_staff": True,
        "is_superuser": True,
        "is_active": False,
        "email": "hijack@example.org",
        "password": "a-hijacked-passphrase",
        **dict.fromkeys(("acknowledged_by", "resolved_by", "created_by", "added_by"), someone_else),
        "score": 27,
        "severity": "severe",
        "rule": "disengaged",
        "evidence": [],
        "active": False,
        "deactivated_reason": "hostile",
        "attempts": 99,
        "slot": 99,
        "code_hash": "0" * 64,
    }


Rows = Callable[[World, dict, dict, User], list[Model]]


@dataclass(frozen=True)
class Write:
    rows: Rows  # (world, response JSON, body sent, actor) -> the rows the write made or changed
    may_take: frozenset = frozenset()  # client-writable here: `id` made by the phone, a patient's status
    overrides: tuple = ()  # (field, value): a hostile value that fits this route better
    nested: bool = False  # the body holds items (sync): hostile fields go into each item too


def _one(model, key: str = "id", field: str = "pk") -> Rows:
    return lambda w, r, b, u: [model.objects.get(**{field: r[key]})]


def _mine(model, param: str) -> Rows:
    return lambda w, r, b, u: [model.objects.get(pk=w.mine.ids[param])]


def _actor(w, r, b, user) -> list[Model]:
    user = User.objects.get(pk=user.pk)
    return [user, *Patient.objects.filter(user=user)]


def _nothing(w, r, b, u) -> list[Model]:
    return []  # no row of its own; the privilege snapshot covers it


_ALERT_OVERRIDES = (("severity", "low"),)
WRITES: dict[tuple[str, str], Write] = {
    ("post", "/api/v1/alerts/{alert_id}/acknowledge/"): Write(
        _mine(Alert, "alert_id"), overrides=(*_ALERT_OVERRIDES, ("status", "resolved"))
    ),
    ("post", "/api/v1/alerts/{alert_id}/resolve/"): Write(
        _mine(Alert, "alert_id"), overrides=(*_ALERT_OVERRIDES, ("status", "open"))
    ),
    ("post", "/api/v1/assessments/"): Write(_one(Assessment), may_take=frozenset({"id"})),
    ("post", "/api/v1/auth/enroll/"): Write(
        lambda w, r, b, u: [user := User.objects.get(pk=r["user"]["id"]), Patient.objects.get(user=user)]
    ),
    ("post", "/api/v1/auth/logout/"): Write(_nothing),
    ("post", "/api/v1/auth/password-reset/"): Write(_nothing),
    ("post", "/api/v1/auth/password-reset/confirm/"): Write(_nothing),
    ("post", "/api/v1/auth/token/"): Write(_nothing),
    ("post", "/api/v1/auth/token/refresh/"): Write(_nothing),
    ("post", "/api/v1/devices/"): Write(_one(Device)),
    ("post", "/api/v1/entries/"): Write(_one(Entry), may_take=frozenset({"id"})),
    ("patch", "/api/v1/entries/{entry_id}/"): Write(_mine(Entry, "entry_id")),
    ("post", "/api/v1/entries/sync/"): Write(
        lambda w, r, b, u: [Entry.objects.get(pk=b["entries"][0]["id"])], may_take=frozenset({"id"}), nested=True
    ),
    ("patch", "/api/v1/me/"): Write(_actor),
    ("post", "/api/v1/me/password/"): Write(_actor),
    ("post", "/api/v1/patients/"): Write(_one(Patient)),
    ("patch", "/api/v1/patients/{patient_id}/"): Write(_mine(Patient, "patient_id"), may_take=frozenset({"status"})),
    ("post", "/api/v1/patients/{patient_id}/care-team/"): Write(
        lambda w, r, b, u: [CareTeamMembership.objects.get(clinician=w.cast.outsider, patient=w.cast.patient)]
    ),
    ("post", "/api/v1/patients/{patient_id}/enrollment/"): Write(
        lambda w, r, b, u: [EnrollmentCode.objects.order_by("-created_at").first()]
    ),
    ("post", "/api/v1/patients/{patient_id}/reminders/"): Write(_one(Schedule)),
    ("patch", "/api/v1/patients/{patient_id}/reminders/{schedule_id}/"): Write(_mine(Schedule, "schedule_id")),
    ("post", "/api/v1/patients/{patient_id}/sessions/"): Write(_one(TherapySession)),
    ("patch", "/api/v1/patients/{patient_id}/sessions/{session_id}/"): Write(_mine(TherapySession, "session_id")),
    ("post", "/api/v1/prompts/{prompt_id}/receipt/"): Write(
        _mine(Prompt, "prompt_id"), overrides=(("status", "completed"),)
    ),
    ("post", "/api/v1/reminders/"): Write(_one(Schedule)),
    ("patch", "/api/v1/reminders/{schedule_id}/"): Write(_mine(Schedule, "schedule_id")),
}

SCHEMA_WRITES = [(m, p) for m, p in schema_operations() if m in ("post", "put", "patch")]
# The actors a write is tried as: a patient (escalating to clinician), a care-team clinician
# (escalating to admin), a clinic admin (escalating to staff or another clinic), where allowed.
WRITERS = ("patient", "clinician", "admin")
KNOWN_BUGS: dict[tuple[str, str, str], str] = {}


def _cases() -> list:
    cases = []
    for method, path in SCHEMA_WRITES:
        actors = ["anonymous"] if path in PUBLIC_PATHS else [a for a in WRITERS if expectation(method, path, a) == A]
        for actor in actors or ["patient"]:
            bug = KNOWN_BUGS.get((method, path, actor))
            marks = [pytest.mark.xfail(strict=True, reason=bug)] if bug else []
            cases.append(pytest.param(method, path, actor, id=f"{method.upper()} {path} as {actor}", marks=marks))
    return cases


def test_every_write_of_the_schema_has_a_body_and_a_read_back():
    assert len(SCHEMA_WRITES) >= 25
    missing = [f"{m.upper()} {p}" for m, p in SCHEMA_WRITES if (m, p) not in WRITES or (m, p) not in BODIES]
    assert not missing, f"add these to WRITES (here) and BODIES (calls.py): {missing}"


PRIVILEGES = ("role", "is_clinic_admin", "is_staff", "is_superuser", "is_active", "clinic_id", "email", "password")
OWNERSHIP = ("clinic_id", "user_id", "created_by_id", "status")


def _snapshot() -> dict:
    return {
        **{("user", u["id"]): u for u in User.objects.values("id", *PRIVILEGES)},
        **{("patient", p["id"]): p for p in Patient.objects.values("id", *OWNERSHIP)},
    }


def _field(row: Model, key: str):
    for name in (key, key.removesuffix("_id")):
        try:
            field = row._meta.get_field(name)
        except FieldDoesNotExist:
            continue
        if field.concrete:
            return field
    return None


def _taken(row: Model, hostile: dict, before: dict) -> list[str]:
    """The hostile values `row` holds that it did not hold before the request (`before`: rows by
    (model, pk) as they were; a clinician's role was `clinician` all along)."""
    taken = []
    was = before.get((type(row), row.pk))
    for key, value in hostile.items():
        field = _field(row, key)
        if field is None or key == "password":
            continue
        try:
            expected = (field.target_field if field.is_relation else field).to_python(value)
        except ValidationError:
            continue  # not even of the column's type: it cannot have been stored
        if getattr(row, field.attname) == expected and (was is None or getattr(was, field.attname) != expected):
            taken.append(f"{type(row).__name__}.{field.attname}={value!r}")
    if (
        isinstance(row, User)
        and row.check_password(hostile["password"])
        and not (was and was.check_password(hostile["password"]))
    ):
        taken.append("User.password")
    return taken


def _rows_if_any(write: Write, world: World, actor: str) -> list[Model]:
    """The rows a write changes, as they are before it: those that exist already (a PATCH's)."""
    try:
        return write.rows(world, {}, {}, world.user(actor))
    except (KeyError, IndexError, ObjectDoesNotExist):
        return []


@pytest.mark.parametrize(("method", "path", "actor"), _cases())
def test_a_write_stores_no_server_owned_field(world, method, path, actor):
    write = WRITES.get((method, path))
    if write is None:
        pytest.fail(f"{method.upper()} {path} has no entry in WRITES")
    client, tokens = world.sessions[actor]
    before = _snapshot()
    rows_before = {(type(row), row.pk): row for row in _rows_if_any(write, world, actor) if row is not None}
    hostile = {k: v for k, v in hostile_fields(world).items() if k not in write.may_take} | dict(write.overrides)
    body = BODIES[(method, path)](world, tokens)
    for target in [body, *(body["entries"] if write.nested else [])]:
        target.update({k: v for k, v in hostile.items() if k not in target})

    response = call(client, method, path, world, tokens=tokens, ids=world.mine.ids, body=body)

    request = f"{method.upper()} {path} as {actor}"
    if path != "/api/v1/auth/password-reset/confirm/":  # the only write whose valid body is a 400 here
        assert response.status_code < 300, f"{request}: {response.status_code} {content_of(response)[:400]!r}"
    data = response.json() if response.content else {}
    rows = write.rows(world, data, body, world.user(actor))
    taken = [t for row in rows for t in _taken(row, hostile, rows_before)]
    assert not taken, f"{request} stored hostile values: {taken}"

    after = _snapshot()
    changed = {key: (before[key], after[key]) for key in before if key in after and before[key] != after[key]}
    if path == "/api/v1/me/password/":  # its own password is what it changes
        changed = {k: v for k, v in changed.items() if {f for f in v[0] if v[0][f] != v[1][f]} != {"password"}}
    assert not changed, f"{request} changed privileges or ownership: {changed}"
