import base64
import json
from datetime import timedelta

import jwt
import pytest
import time_machine
from django.conf import settings
from rest_framework.test import APIClient

from accounts.models import SignIn
from tests.conftest import sign_in

pytestmark = pytest.mark.django_db


def _bearer(token: str) -> APIClient:
    client = APIClient()
    client.credentials(HTTP_AUTHORIZATION=f"Bearer {token}")
    return client


def test_sign_in_returns_tokens_and_profile(cast):
    body = sign_in(APIClient(), "carer@example.org")
    assert set(body) == {"access", "refresh", "user"}
    assert body["user"]["role"] == "clinician"
    assert body["user"]["clinic"]["id"] == str(cast.clinician.clinic_id)


def test_wrong_password_is_401_in_error_shape(cast):
    response = APIClient().post(
        "/api/v1/auth/token/", {"email": "carer@example.org", "password": "nope"}, format="json"
    )
    assert response.status_code == 401
    assert response.json()["error"]["code"] == "not_authenticated"


def test_unknown_email_answers_like_a_wrong_password(db):
    response = APIClient().post("/api/v1/auth/token/", {"email": "ghost@example.org", "password": "x"}, format="json")
    assert response.status_code == 401
    assert response.json()["error"]["code"] == "not_authenticated"


def test_email_is_case_insensitive(cast):
    assert sign_in(APIClient(), "CARER@Example.org")["user"]["email"] == "carer@example.org"


def test_access_token_opens_me(cast):
    tokens = sign_in(APIClient(), "carer@example.org")
    assert _bearer(tokens["access"]).get("/api/v1/me/").status_code == 200


def test_forged_signature_is_401(cast):
    tokens = sign_in(APIClient(), "carer@example.org")
    claims = jwt.decode(tokens["access"], options={"verify_signature": False})
    forged = jwt.encode(claims, "not-the-real-signing-key-but-long-enough", algorithm="HS256")
    response = _bearer(forged).get("/api/v1/me/")
    assert response.status_code == 401
    assert response.json()["error"]["code"] == "not_authenticated"


def test_alg_none_token_is_401(cast):
    tokens = sign_in(APIClient(), "carer@example.org")
    claims = jwt.decode(tokens["access"], options={"verify_signature": False})

    def b64(data: dict) -> str:
        return base64.urlsafe_b64encode(json.dumps(data).encode()).rstrip(b"=").decode()

    unsigned = f"{b64({'alg': 'none', 'typ': 'JWT'})}.{b64(claims)}."
    assert _bearer(unsigned).get("/api/v1/me/").status_code == 401


def test_expired_access_token_is_401(cast):
    tokens = sign_in(APIClient(), "carer@example.org")
    with time_machine.travel(timedelta(minutes=16)):
        assert _bearer(tokens["access"]).get("/api/v1/me/").status_code == 401


def test_access_token_lives_fifteen_minutes(cast):
    tokens = sign_in(APIClient(), "carer@example.org")
    claims = jwt.decode(tokens["access"], options={"verify_signature": False})
    assert claims["exp"] - claims["iat"] == 15 * 60
    refresh = jwt.decode(tokens["refresh"], options={"verify_signature": False})
    assert refresh["exp"] - refresh["iat"] == 30 * 24 * 3600


def test_refresh_token_is_not_an_access_token(cast):
    tokens = sign_in(APIClient(), "carer@example.org")
    assert _bearer(tokens["refresh"]).get("/api/v1/me/").status_code == 401


def test_expired_refresh_token_is_401(cast):
    tokens = sign_in(APIClient(), "carer@example.org")
    with time_machine.travel(timedelta(days=31)):
        response = APIClient().post("/api/v1/auth/token/refresh/", {"refresh": tokens["refresh"]}, format="json")
    assert response.status_code == 401


def _refresh(token: str):
    return APIClient().post("/api/v1/auth/token/refresh/", {"refresh": token}, format="json")


def test_refresh_rotates_the_pair(cast):
    first = sign_in(APIClient(), "carer@example.org")
    response = _refresh(first["refresh"])
    assert response.status_code == 200
    second = response.json()
    assert second["refresh"] != first["refresh"]
    assert _bearer(second["access"]).get("/api/v1/me/").status_code == 200


def test_rotated_token_reused_within_grace_gets_the_same_pair(cast):
    first = sign_in(APIClient(), "carer@example.org")
    with time_machine.travel(timedelta(seconds=1), tick=False) as traveller:
        a = _refresh(first["refresh"]).json()
        traveller.shift(timedelta(seconds=settings.REFRESH_REUSE_GRACE_SECONDS - 1))
        b = _refresh(first["refresh"])
    assert b.status_code == 200
    assert b.json() == a


def test_rotated_token_reused_after_grace_revokes_the_whole_sign_in(cast):
    first = sign_in(APIClient(), "carer@example.org")
    with time_machine.travel(timedelta(seconds=1), tick=False) as traveller:
        rotated = _refresh(first["refresh"]).json()
        traveller.shift(timedelta(seconds=settings.REFRESH_REUSE_GRACE_SECONDS + 1))
        theft = _refresh(first["refresh"])
        assert theft.status_code == 401
        # The pair the thief's token was rotated into dies too: refresh and access alike.
        assert _refresh(rotated["refresh"]).status_code == 401
        assert _bearer(rotated["access"]).get("/api/v1/me/").status_code == 401
    assert SignIn.objects.get().revoked_reason == "refresh_reuse"


def test_reuse_revokes_only_that_sign_in(cast):
    phone = sign_in(APIClient(), "carer@example.org")
    laptop = sign_in(APIClient(), "carer@example.org")
    with time_machine.travel(timedelta(seconds=1), tick=False) as traveller:
        _refresh(phone["refresh"])
        traveller.shift(timedelta(seconds=60))
        assert _refresh(phone["refresh"]).status_code == 401
        assert _bearer(laptop["access"]).get("/api/v1/me/").status_code == 200


def test_logout_ends_that_refresh_token(cast):
    tokens = sign_in(APIClient(), "carer@example.org")
    response = _bearer(tokens["access"]).post("/api/v1/auth/logout/", {"refresh": tokens["refresh"]}, format="json")
    assert response.status_code == 204
    assert _refresh(tokens["refresh"]).status_code == 401


def test_logout_with_someone_elses_refresh_token_is_refused(cast):
    mine = sign_in(APIClient(), "carer@example.org")
    theirs = sign_in(APIClient(), "outsider@example.org")
    response = _bearer(mine["access"]).post("/api/v1/auth/logout/", {"refresh": theirs["refresh"]}, format="json")
    assert response.status_code == 400
    assert _refresh(theirs["refresh"]).status_code == 200


def test_garbage_refresh_token_is_401(db):
    assert _refresh("not-a-token").status_code == 401


def test_stale_access_header_does_not_block_refresh(cast):
    tokens = sign_in(APIClient(), "carer@example.org")
    client = _bearer("expired.garbage.token")
    response = client.post("/api/v1/auth/token/refresh/", {"refresh": tokens["refresh"]}, format="json")
    assert response.status_code == 200


def test_password_change_revokes_every_sign_in_and_returns_a_new_pair(cast):
    other_device = sign_in(APIClient(), "carer@example.org")
    tokens = sign_in(APIClient(), "carer@example.org")
    response = _bearer(tokens["access"]).post(
        "/api/v1/me/password/",
        {"current_password": "a-long-test-passphrase", "new_password": "an-even-longer-passphrase"},
        format="json",
    )
    assert response.status_code == 200
    assert _bearer(other_device["access"]).get("/api/v1/me/").status_code == 401
    assert _refresh(other_device["refresh"]).status_code == 401
    assert _bearer(response.json()["access"]).get("/api/v1/me/").status_code == 200
    sign_in(APIClient(), "carer@example.org", "an-even-longer-passphrase")


def test_password_change_needs_the_current_password(cast):
    tokens = sign_in(APIClient(), "carer@example.org")
    response = _bearer(tokens["access"]).post(
        "/api/v1/me/password/",
        {"current_password": "wrong", "new_password": "an-even-longer-passphrase"},
        format="json",
    )
    assert response.status_code == 400
    assert "current_password" in response.json()["error"]["fields"]


def test_guesses_at_the_current_password_count_against_the_lockout(cast, settings):
    """A stolen access token must not try passwords without limit and then take the account over."""
    client = _bearer(sign_in(APIClient(), "carer@example.org")["access"])
    guess = {"current_password": "wrong", "new_password": "an-even-longer-passphrase"}
    codes = [
        client.post("/api/v1/me/password/", guess, format="json").status_code
        for _ in range(settings.LOGIN_MAX_FAILURES + 1)
    ]
    assert codes == [400] * settings.LOGIN_MAX_FAILURES + [429]
    right = {"current_password": "a-long-test-passphrase", "new_password": "an-even-longer-passphrase"}
    assert client.post("/api/v1/me/password/", right, format="json").status_code == 429  # locked, even when right
    assert (
        APIClient()
        .post(
            "/api/v1/auth/token/", {"email": "carer@example.org", "password": "a-long-test-passphrase"}, format="json"
        )
        .status_code
        == 429
    )  # the same allowance as signing in
