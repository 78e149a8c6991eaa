"""Tampered and dead tokens (SPEC §3): every one is a 401 in the error shape, on a patient's route
and a clinician's alike. tests/accounts/test_auth_tokens.py already has a token signed with
another key (with its shape); the rest of the matrix is here: signature, claims, algorithm, token
type, lifetime, the sign-in behind the token, and the Authorization header itself."""

import base64
import json
import time
import uuid

import jwt
import pytest
from django.conf import settings
from rest_framework.test import APIClient

from tests.conftest import sign_in

pytestmark = [
    pytest.mark.django_db,
    # HS512 under the test run's 47-byte key: the point is that the server refuses the algorithm.
    pytest.mark.filterwarnings("ignore::jwt.warnings.InsecureKeyLengthWarning"),
]

KEY = settings.SIMPLE_JWT["SIGNING_KEY"]


def _b64(data: dict) -> str:
    return base64.urlsafe_b64encode(json.dumps(data).encode()).rstrip(b"=").decode()


def _claims(token: str) -> dict:
    return jwt.decode(token, options={"verify_signature": False})


def _flip_signature_byte(token: str) -> str:
    head, body, signature = token.split(".")
    raw = bytearray(base64.urlsafe_b64decode(signature + "=" * (-len(signature) % 4)))
    raw[len(raw) // 2] ^= 0x01
    return f"{head}.{body}.{base64.urlsafe_b64encode(bytes(raw)).rstrip(b'=').decode()}"


def _with_claims_kept_signature(token: str, **changes) -> str:
    head, _, signature = token.split(".")
    return f"{head}.{_b64({**_claims(token), **changes})}.{signature}"


def _unsigned(token: str, alg: str) -> str:
    return f"{_b64({'alg': alg, 'typ': 'JWT'})}.{_b64(_claims(token))}."


def _signed(claims: dict, algorithm: str = "HS256") -> str:
    """Signed with the server's real key: what only a bug (or a leaked key) could mint."""
    return jwt.encode(claims, KEY, algorithm=algorithm)


# name -> (tokens of the victim, tokens of another user) -> the token to present
TAMPERS = {
    "signature byte flipped": lambda mine, other: _flip_signature_byte(mine["access"]),
    "user_id changed, signature kept": lambda mine, other: _with_claims_kept_signature(
        mine["access"], user_id=_claims(other["access"])["user_id"]
    ),
    "sid changed, signature kept": lambda mine, other: _with_claims_kept_signature(
        mine["access"], sid=_claims(other["access"])["sid"]
    ),
    "exp pushed a year out, signature kept": lambda mine, other: _with_claims_kept_signature(
        mine["access"], exp=int(time.time()) + 365 * 86400
    ),
    "alg none": lambda mine, other: _unsigned(mine["access"], "none"),
    "alg None": lambda mine, other: _unsigned(mine["access"], "None"),
    "alg NONE": lambda mine, other: _unsigned(mine["access"], "NONE"),
    "HS256 header, signature stripped": lambda mine, other: mine["access"].rsplit(".", 1)[0] + ".",
    "HS512 with the real key": lambda mine, other: _signed(_claims(mine["access"]), "HS512"),
    "expired, real key": lambda mine, other: _signed(
        {**_claims(mine["access"]), "iat": int(time.time()) - 3600, "exp": int(time.time()) - 1}
    ),
    "refresh token as access token": lambda mine, other: mine["refresh"],
    "real key, another user's id on my sign-in": lambda mine, other: _signed(
        {**_claims(mine["access"]), "user_id": _claims(other["access"])["user_id"]}
    ),
    "real key, my id on another user's sign-in": lambda mine, other: _signed(
        {**_claims(mine["access"]), "sid": _claims(other["access"])["sid"]}
    ),
    "real key, no sid": lambda mine, other: _signed({k: v for k, v in _claims(mine["access"]).items() if k != "sid"}),
    "real key, sid of no sign-in": lambda mine, other: _signed({**_claims(mine["access"]), "sid": str(uuid.uuid4())}),
    "real key, sid not a uuid": lambda mine, other: _signed({**_claims(mine["access"]), "sid": "1 OR 1=1"}),
    "real key, no token_type": lambda mine, other: _signed(
        {k: v for k, v in _claims(mine["access"]).items() if k != "token_type"}
    ),
    "garbage": lambda mine, other: "not.a.jwt",
    "empty": lambda mine, other: "",
}

# A patient's token on a patient's route, a clinician's on a clinician's.
ROUTES = {"patient": "/api/v1/entries/", "clinician": "/api/v1/patients/"}


def _tokens(cast, role: str) -> tuple[dict, dict]:
    victim = cast.patient.user if role == "patient" else cast.clinician
    bystander = cast.other_patient.user if role == "patient" else cast.outsider
    return sign_in(APIClient(), victim.email), sign_in(APIClient(), bystander.email)


def _get(path: str, authorization: str):
    return APIClient().get(path, HTTP_AUTHORIZATION=authorization)


def assert_not_authenticated(response, what: str) -> None:
    assert response.status_code == 401, f"{what}: {response.status_code} {response.content[:300]!r}"
    body = response.json()
    assert set(body) == {"error"}, body
    assert body["error"]["code"] == "not_authenticated", body
    assert isinstance(body["error"]["message"], str) and body["error"]["message"]
    assert "fields" not in body["error"]
    assert response.headers.get("WWW-Authenticate", "").startswith("Bearer"), dict(response.headers)


@pytest.mark.parametrize("role", ROUTES)
@pytest.mark.parametrize("tamper", TAMPERS)
def test_tampered_access_token_is_401(cast, role, tamper):
    mine, other = _tokens(cast, role)
    assert _get(ROUTES[role], f"Bearer {mine['access']}").status_code == 200  # the untouched token works
    assert_not_authenticated(_get(ROUTES[role], f"Bearer {TAMPERS[tamper](mine, other)}"), tamper)


@pytest.mark.parametrize(
    "header",
    [
        "Bearer",
        "Bearer ",
        "Bearer a b",
        "Basic Y2FyZXJAZXhhbXBsZS5vcmc6YS1sb25nLXRlc3QtcGFzc3BocmFzZQ==",
        "Token x.y.z",
    ],
)
def test_malformed_authorization_header_is_401(cast, header):
    assert_not_authenticated(_get("/api/v1/me/", header), header)


def test_access_token_of_a_signed_out_sign_in_is_401(cast):
    tokens = sign_in(APIClient(), cast.patient.user.email)
    client = APIClient()
    client.credentials(HTTP_AUTHORIZATION=f"Bearer {tokens['access']}")
    assert client.post("/api/v1/auth/logout/", {"refresh": tokens["refresh"]}, format="json").status_code == 204
    assert_not_authenticated(client.get("/api/v1/entries/"), "after logout")


def test_access_token_of_a_deactivated_account_is_401(cast):
    tokens = sign_in(APIClient(), cast.patient.user.email)
    other_device = sign_in(APIClient(), cast.patient.user.email)
    client = APIClient()
    client.credentials(HTTP_AUTHORIZATION=f"Bearer {tokens['access']}")
    assert client.delete("/api/v1/me/").status_code == 204
    assert_not_authenticated(client.get("/api/v1/me/"), "deactivated, same sign-in")
    assert_not_authenticated(_get("/api/v1/me/", f"Bearer {other_device['access']}"), "deactivated, other sign-in")


def test_privilege_claims_added_to_a_patient_token_change_nothing(cast):
    """Who a token holder is comes from the database, never from claims, even validly signed ones."""
    claims = _claims(sign_in(APIClient(), cast.patient.user.email)["access"])
    forged = _signed({**claims, "role": "clinician", "is_clinic_admin": True, "is_staff": True, "is_superuser": True})
    response = _get("/api/v1/patients/", f"Bearer {forged}")
    assert response.status_code == 403
    assert response.json()["error"]["code"] == "permission_denied"
    assert _get("/api/v1/me/", f"Bearer {forged}").json()["role"] == "patient"


REFRESH_TAMPERS = {
    "signature byte flipped": lambda t: _flip_signature_byte(t["refresh"]),
    "alg none": lambda t: _unsigned(t["refresh"], "none"),
    "signed with another key": lambda t: jwt.encode(_claims(t["refresh"]), "another-key-long-enough-for-hs256!!"),
    "HS512 with the real key": lambda t: _signed(_claims(t["refresh"]), "HS512"),
    "access token as refresh token": lambda t: t["access"],
    "jti of no token, real key": lambda t: _signed({**_claims(t["refresh"]), "jti": str(uuid.uuid4())}),
}


@pytest.mark.parametrize("tamper", REFRESH_TAMPERS)
def test_tampered_refresh_token_is_401_and_mints_nothing(cast, tamper):
    from accounts.models import RefreshToken

    tokens = sign_in(APIClient(), cast.patient.user.email)
    before = RefreshToken.objects.count()
    response = APIClient().post(
        "/api/v1/auth/token/refresh/", {"refresh": REFRESH_TAMPERS[tamper](tokens)}, format="json"
    )
    assert response.status_code == 401, (tamper, response.status_code, response.content[:300])
    assert response.json()["error"]["code"] == "not_authenticated"
    assert RefreshToken.objects.count() == before
