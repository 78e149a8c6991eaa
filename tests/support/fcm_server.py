"""A loopback server speaking FCM HTTP v1 and Google's OAuth2 token endpoint.

- POST /token: the service-account JWT-bearer grant. The assertion's RS256 signature is checked
  against the throwaway key's public half, and its audience and scope are checked too, so the test
  proves google-auth really signed in; the answer is a Bearer token valid for an hour.
- POST /v1/projects/<project>/messages:send: needs a Bearer token this server issued; records the
  request (headers and JSON body) and answers from, in order: the one-shot `script`, the
  per-token `replies`, else 200.

A message counts as *accepted* (FCM took it; the phone will show it) when the server decides to
answer 200, before writing the answer: a `Reply(hang_after_accept=True)` records the acceptance
and then stalls, so a test can kill the sender in the window between FCM accepting a message and
the send being recorded. `Reply(hang=True)` stalls without accepting (a send that never got through).
"""

import base64
import json
import threading
import time
import urllib.parse
from collections import deque
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import padding, rsa

JWT_GRANT = "urn:ietf:params:oauth:grant-type:jwt-bearer"
FCM_SCOPE = "https://www.googleapis.com/auth/firebase.messaging"
# google-auth always addresses the assertion to Google's token endpoint, wherever it posts it.
GOOGLE_TOKEN_AUDIENCE = "https://oauth2.googleapis.com/token"
PROJECT_ID = "interlude-loopback"
HANG_LIMIT_SECONDS = 60.0  # a stalled answer never outlives the test that asked for it


@dataclass(frozen=True)
class Reply:
    status: int = 200
    error_status: str = ""  # google.rpc status, e.g. "UNREGISTERED"... goes to error.status
    error_code: str = ""  # FCM's own code in error.details[].errorCode
    retry_after: str | None = None
    field_violation: str = ""  # a google.rpc.BadRequest naming this field of the message
    hang: bool = False
    hang_after_accept: bool = False

    @classmethod
    def ok(cls) -> "Reply":
        return cls()

    @classmethod
    def unregistered(cls) -> "Reply":
        return cls(404, "NOT_FOUND", "UNREGISTERED")

    @classmethod
    def invalid_argument(cls, field: str = "message.token") -> "Reply":
        return cls(400, "INVALID_ARGUMENT", "INVALID_ARGUMENT", field_violation=field)

    @classmethod
    def quota(cls, retry_after: int | None = 120) -> "Reply":
        return cls(429, "RESOURCE_EXHAUSTED", "QUOTA_EXCEEDED", None if retry_after is None else str(retry_after))

    @classmethod
    def unavailable(cls, status: int = 503) -> "Reply":
        return cls(
            status, "UNAVAILABLE" if status == 503 else "INTERNAL", "UNAVAILABLE" if status == 503 else "INTERNAL"
        )


@dataclass
class Received:
    path: str
    headers: dict
    body: dict
    accepted: bool = False

    @property
    def message(self) -> dict:
        return self.body.get("message", {})

    @property
    def token(self) -> str:
        return self.message.get("token", "")

    @property
    def prompt_id(self) -> str:
        return self.message.get("data", {}).get("prompt_id", "")


@dataclass
class TokenGrant:
    claims: dict
    access_token: str


def _b64decode(part: str) -> bytes:
    return base64.urlsafe_b64decode(part + "=" * (-len(part) % 4))


@dataclass
class _State:
    public_key: rsa.RSAPublicKey
    lock: threading.Lock = field(default_factory=threading.Lock)
    script: deque = field(default_factory=deque)
    replies: dict = field(default_factory=dict)
    received: list = field(default_factory=list)
    grants: list = field(default_factory=list)
    release: threading.Event = field(default_factory=threading.Event)
    issued: set = field(default_factory=set)


class _Handler(BaseHTTPRequestHandler):
    server: "_Server"
    protocol_version = "HTTP/1.1"
    # Headers and body go out in two writes; with Nagle on, each answer stalls ~40 ms on the
    # client's delayed ACK, which capped a keep-alive sender at ~30 requests a second.
    disable_nagle_algorithm = True

    def log_message(self, *args):  # quiet
        pass

    def _answer(self, status: int, body: dict, headers: dict | None = None) -> None:
        payload = json.dumps(body).encode()
        try:
            self.send_response(status)
            self.send_header("Content-Type", "application/json; charset=UTF-8")
            self.send_header("Content-Length", str(len(payload)))
            for name, value in (headers or {}).items():
                self.send_header(name, value)
            self.end_headers()
            self.wfile.write(payload)
        except OSError:  # the client was killed while we stalled
            pass

    def do_POST(self):
        raw = self.rfile.read(int(self.headers.get("Content-Length") or 0))
        if self.path == "/token":
            return self._token(raw)
        if self.path == f"/v1/projects/{PROJECT_ID}/messages:send":
            return self._send(raw)
        return self._answer(404, {"error": {"code": 404, "status": "NOT_FOUND", "message": "no such path"}})

    def _token(self, raw: bytes) -> None:
        state = self.server.state
        form = urllib.parse.parse_qs(raw.decode())
        if form.get("grant_type") != [JWT_GRANT] or "assertion" not in form:
            return self._answer(400, {"error": "unsupported_grant_type"})
        header_b64, claims_b64, signature_b64 = form["assertion"][0].split(".")
        try:
            state.public_key.verify(
                _b64decode(signature_b64),
                f"{header_b64}.{claims_b64}".encode(),
                padding.PKCS1v15(),
                hashes.SHA256(),
            )
        except Exception:
            return self._answer(400, {"error": "invalid_grant", "error_description": "bad signature"})
        claims = json.loads(_b64decode(claims_b64))
        if claims.get("aud") != GOOGLE_TOKEN_AUDIENCE or FCM_SCOPE not in claims.get("scope", "").split():
            return self._answer(400, {"error": "invalid_grant", "error_description": "bad audience or scope"})
        with state.lock:
            access_token = f"loopback-access-{len(state.grants) + 1}"
            state.grants.append(TokenGrant(claims, access_token))
            state.issued.add(access_token)
        self._answer(200, {"access_token": access_token, "expires_in": 3600, "token_type": "Bearer"})

    def _send(self, raw: bytes) -> None:
        state = self.server.state
        headers = dict(self.headers.items())
        authorization = headers.get("Authorization", "")
        if not authorization.startswith("Bearer ") or authorization[7:] not in state.issued:
            return self._answer(401, {"error": {"code": 401, "status": "UNAUTHENTICATED", "message": "bad token"}})
        received = Received(self.path, headers, json.loads(raw or b"{}"))
        with state.lock:
            reply = state.script.popleft() if state.script else state.replies.get(received.token, Reply.ok())
            received.accepted = reply.status == 200 and not reply.hang
            state.received.append(received)
        if reply.hang or reply.hang_after_accept:
            state.release.wait(HANG_LIMIT_SECONDS)
            if reply.hang:
                return self._answer(503, {"error": {"code": 503, "status": "UNAVAILABLE", "message": "stalled"}})
        if reply.status == 200:
            return self._answer(200, {"name": f"projects/{PROJECT_ID}/messages/{len(state.received)}"})
        error = {"code": reply.status, "status": reply.error_status, "message": "loopback error"}
        details = []
        if reply.error_code:
            details.append(
                {"@type": "type.googleapis.com/google.firebase.fcm.v1.FcmError", "errorCode": reply.error_code}
            )
        if reply.field_violation:
            violation = {"field": reply.field_violation, "description": "Invalid value"}
            details.append({"@type": "type.googleapis.com/google.rpc.BadRequest", "fieldViolations": [violation]})
        if details:
            error["details"] = details
        self._answer(reply.status, {"error": error}, {"Retry-After": reply.retry_after} if reply.retry_after else None)


class _Server(ThreadingHTTPServer):
    daemon_threads = True
    state: _State


_keys: list[rsa.RSAPrivateKey] = []


def _throwaway_key() -> rsa.RSAPrivateKey:
    if not _keys:  # one per test run: generating an RSA key costs a noticeable fraction of a second
        _keys.append(rsa.generate_private_key(public_exponent=65537, key_size=2048))
    return _keys[0]


class FcmLoopback:
    """The server plus a throwaway service account whose key it trusts."""

    def __init__(self, directory: Path):
        key = _throwaway_key()
        self._server = _Server(("127.0.0.1", 0), _Handler)
        self._server.state = _State(public_key=key.public_key())
        self._thread = threading.Thread(
            target=self._server.serve_forever, kwargs={"poll_interval": 0.05}, name="fcm-loopback", daemon=True
        )
        self.credentials_file = directory / "fcm-service-account.json"
        pem = key.private_bytes(
            serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
        ).decode()
        self.credentials_file.write_text(
            json.dumps(
                {
                    "type": "service_account",
                    "project_id": PROJECT_ID,
                    "private_key_id": "loopback-key-1",
                    "private_key": pem,
                    "client_email": f"push@{PROJECT_ID}.iam.gserviceaccount.com",
                    "client_id": "1",
                    # Google's real endpoint: FCM_TOKEN_URI must override it, or no token is issued.
                    "token_uri": "https://oauth2.invalid/token",
                }
            )
        )

    @property
    def url(self) -> str:
        host, port = self._server.server_address[:2]
        return f"http://{host}:{port}"

    @property
    def state(self) -> _State:
        return self._server.state

    def settings(self) -> dict:
        """The FCM_* settings (and environment variables) that point Interlude here."""
        return {
            "FCM_PROJECT_ID": PROJECT_ID,
            "FCM_CREDENTIALS_FILE": str(self.credentials_file),
            "FCM_ENDPOINT": self.url,
            "FCM_TOKEN_URI": f"{self.url}/token",
            "FCM_TIMEOUT_SECONDS": "5",
        }

    def start(self) -> "FcmLoopback":
        self._thread.start()
        return self

    def stop(self) -> None:
        self.state.release.set()
        self._server.shutdown()
        self._server.server_close()

    # --- scripting and reading ---------------------------------------------------------------

    def queue(self, *replies: Reply) -> None:
        """One-shot answers for the next requests, whatever their token."""
        with self.state.lock:
            self.state.script.extend(replies)

    def reply_for(self, token: str, reply: Reply) -> None:
        with self.state.lock:
            self.state.replies[token] = reply

    def release_hangs(self) -> None:
        self.state.release.set()

    @property
    def received(self) -> list[Received]:
        with self.state.lock:
            return list(self.state.received)

    @property
    def accepted(self) -> list[Received]:
        return [r for r in self.received if r.accepted]

    def accepted_for(self, prompt_id) -> list[Received]:
        return [r for r in self.accepted if r.prompt_id == str(prompt_id)]

    @property
    def grants(self) -> list[TokenGrant]:
        with self.state.lock:
            return list(self.state.grants)

    def wait_for(self, predicate, timeout: float = 10.0, interval: float = 0.05) -> bool:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if predicate(self):
                return True
            time.sleep(interval)
        return predicate(self)
