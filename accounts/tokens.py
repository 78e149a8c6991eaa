"""JWT minting and reading for sign-ins (SPEC §3).

Tokens are HS256 JWTs signed through simplejwt's token backend. A pair is a pure function of its
RefreshToken row, so presenting a rotated-away token within the grace period can be answered with
the very same pair without ever storing a token.
"""

import uuid
from dataclasses import dataclass
from datetime import datetime

from django.conf import settings
from rest_framework_simplejwt.exceptions import TokenBackendError
from rest_framework_simplejwt.state import token_backend

from accounts.models import RefreshToken

_ACCESS_JTI_NAMESPACE = uuid.UUID("5b0c7ad3-54a5-4c9b-8d57-1f0d4b3f9a10")


@dataclass(frozen=True)
class TokenPair:
    access: str
    refresh: str


def _timestamp(moment: datetime) -> int:
    return int(moment.timestamp())


def pair_for(row: RefreshToken, user_id) -> TokenPair:
    issued = _timestamp(row.issued_at)
    common = {"user_id": str(user_id), "sid": str(row.sign_in_id), "iat": issued}
    refresh = {"token_type": "refresh", "jti": str(row.jti), "exp": _timestamp(row.expires_at), **common}
    access = {
        "token_type": "access",
        "jti": str(uuid.uuid5(_ACCESS_JTI_NAMESPACE, str(row.jti))),
        "exp": issued + int(settings.SIMPLE_JWT["ACCESS_TOKEN_LIFETIME"].total_seconds()),
        **common,
    }
    return TokenPair(access=token_backend.encode(access), refresh=token_backend.encode(refresh))


class InvalidToken(Exception):
    pass


def read_refresh(raw: str) -> dict:
    """Verifies signature, algorithm and expiry; returns the claims of a refresh token."""
    try:
        claims = token_backend.decode(raw, verify=True)
    except TokenBackendError as exc:
        raise InvalidToken(str(exc)) from None
    if claims.get("token_type") != "refresh" or "jti" not in claims or "sid" not in claims:
        raise InvalidToken("not a refresh token")
    try:
        uuid.UUID(str(claims["jti"]))
        uuid.UUID(str(claims["sid"]))
    except ValueError:
        raise InvalidToken("malformed token") from None
    return claims
