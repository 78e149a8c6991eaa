"""Push through Firebase Cloud Messaging HTTP v1 (SPEC §7).

One message per device token, authorised by a service account's OAuth2 access token (google-auth).
Both Google hosts come from settings, so tests and proxies can point them at a loopback server.

The notification text is neutral (a locked phone's screen is public) and every message carries a
collapse key (a prompt's id; an alert notification's alert and round): if a worker dies after FCM
accepted a message but before the send was recorded, the resend replaces the first notification on
the phone instead of adding a second.
"""

import email.utils
import json
import logging
import threading
import time
from dataclasses import dataclass
from datetime import UTC, datetime
from enum import StrEnum

import google.auth.exceptions
import requests
import urllib3
from django.conf import settings
from google.auth.transport.requests import Request as GoogleAuthRequest
from google.oauth2 import service_account

logger = logging.getLogger(__name__)

FCM_SCOPE = "https://www.googleapis.com/auth/firebase.messaging"
NOTIFICATION_TITLE = "Interlude"
# Nothing that names a condition, a substance or a questionnaire: others may see the lock screen.
NOTIFICATION_BODY = {
    "check_in": "Time for your check-in",
    "assessment": "A short question is waiting",
    "craving_check": "A short question is waiting",
    "custom": "A reminder from your care team",
}
DEFAULT_BODY = "A reminder from your care team"


class PushOutcome(StrEnum):
    OK = "ok"
    INVALID_TOKEN = "invalid_token"  # the device will never receive it: deactivate the token
    RETRY = "retry"  # FCM or the network failed for now: try again later


@dataclass(frozen=True)
class PushResult:
    outcome: PushOutcome
    error: str = ""  # a short machine-readable reason, stored on the prompt or the device
    retry_after: float | None = None  # seconds, from FCM's Retry-After


def push_enabled() -> bool:
    """Push is off (not an error) until a project and a service account are configured."""
    return bool(settings.FCM_PROJECT_ID and settings.FCM_CREDENTIALS_FILE)


def notification_body(kind: str) -> str:
    return NOTIFICATION_BODY.get(kind, DEFAULT_BODY)


def notification_message(*, token: str, title: str, body: str, data: dict[str, str], collapse_key: str) -> dict:
    """One FCM v1 message. `collapse_key` (at most 64 bytes, APNs' limit) makes a resend replace
    the first notification on the phone instead of adding a second."""
    return {
        "message": {
            "token": token,
            "notification": {"title": title, "body": body},
            "data": data,
            "android": {"collapse_key": collapse_key, "notification": {"tag": collapse_key}},
            "apns": {"headers": {"apns-collapse-id": collapse_key}},
        }
    }


def push_message(*, token: str, prompt_id: str, kind: str) -> dict:
    return notification_message(
        token=token,
        title=NOTIFICATION_TITLE,
        body=notification_body(kind),
        data={"prompt_id": prompt_id, "kind": kind},
        collapse_key=prompt_id,
    )


# One OAuth2 credential and one HTTP session per process: the access token lives an hour, and
# fetching it per message would double FCM's latency. Keyed on the settings that made it, so a
# changed configuration (tests, a rotated key file) builds a fresh one.
_lock = threading.Lock()
_credentials: service_account.Credentials | None = None
_credentials_key: tuple[str, str] | None = None
_session: requests.Session | None = None


def _http() -> requests.Session:
    global _session
    if _session is None:
        _session = requests.Session()
    return _session


def _load_credentials() -> service_account.Credentials:
    with open(settings.FCM_CREDENTIALS_FILE, encoding="utf-8") as handle:
        info = json.load(handle)
    if settings.FCM_TOKEN_URI:
        info["token_uri"] = settings.FCM_TOKEN_URI
    return service_account.Credentials.from_service_account_info(info, scopes=[FCM_SCOPE])


class _TimedRequest(GoogleAuthRequest):
    """google-auth's transport, bounded: its default timeout is 120 s per request, and a refresh
    makes up to three of them (a 5xx is retried after 1 s, then 2 s). Each request gets the time
    left until `until` and none starts after it, so a slow or hanging token endpoint holds a send
    up to then (and at most one of google-auth's backoff sleeps, which sends nothing)."""

    def __init__(self, *, session: requests.Session, until: float):
        super().__init__(session=session)
        self._until = until

    def __call__(self, url, method="GET", body=None, headers=None, timeout=None, **kwargs):
        bounded = _timeout_until(self._until)
        if bounded is None:
            raise google.auth.exceptions.TransportError("the token endpoint ran out of time")
        return super().__call__(url, method=method, body=body, headers=headers, timeout=bounded, **kwargs)


def _timeout_until(until: float) -> urllib3.Timeout | None:
    """A timeout of the time left until `until` (monotonic), for connecting and the wait for each
    piece of the answer together; None once it has passed. requests' plain number bounds the
    connect and the reads separately. An answer trickling in a byte at a time could still run
    past `until` (urllib3 bounds each read, not the whole body); FCM's answers are small."""
    left = until - time.monotonic()
    return urllib3.Timeout(total=left) if left > 0 else None


def _request_until(deadline: float | None) -> float:
    """When one request to Google must be over: FCM_TIMEOUT_SECONDS from now, or the caller's
    deadline (see delivery.send_deadline) if that comes first."""
    until = time.monotonic() + settings.FCM_TIMEOUT_SECONDS
    return until if deadline is None else min(until, deadline)


def _access_token(*, until: float) -> str:
    global _credentials, _credentials_key
    key = (settings.FCM_CREDENTIALS_FILE, settings.FCM_TOKEN_URI)
    # Another thread's refresh (a threads pool; prefork workers have one) ends by its own bound.
    if not _lock.acquire(timeout=max(0.0, until - time.monotonic())):
        raise google.auth.exceptions.TransportError("another thread is still refreshing the access token")
    try:
        if _credentials is None or _credentials_key != key:
            _credentials, _credentials_key = _load_credentials(), key
        if not _credentials.valid:  # no token yet, or within google-auth's refresh margin of expiry
            _credentials.refresh(_TimedRequest(session=_http(), until=until))
        return _credentials.token
    finally:
        _lock.release()


def credentials_forget() -> None:
    """Drops the cached credential, so the next send fetches a fresh access token (after a 401)."""
    global _credentials, _credentials_key
    with _lock:
        _credentials, _credentials_key = None, None


def _retry_after_seconds(value: str | None) -> float | None:
    if not value:
        return None
    value = value.strip()
    if value.isdigit():
        return float(value)
    try:
        when = email.utils.parsedate_to_datetime(value)
    except (TypeError, ValueError):
        return None
    if when.tzinfo is None:
        when = when.replace(tzinfo=UTC)
    return max(0.0, (when - datetime.now(UTC)).total_seconds())


def _error(response: requests.Response) -> tuple[set[str], set[str]]:
    """FCM's error codes (`error.status` and `error.details[].errorCode`) and the fields named in
    a google.rpc.BadRequest's `fieldViolations`."""
    try:
        error = response.json().get("error") or {}
    except (ValueError, AttributeError):
        return set(), set()
    if not isinstance(error, dict):
        return set(), set()
    codes, fields = {error.get("status")}, set()
    for detail in error.get("details") or []:
        if isinstance(detail, dict):
            codes.add(detail.get("errorCode"))
            for violation in detail.get("fieldViolations") or []:
                if isinstance(violation, dict):
                    fields.add(violation.get("field"))
    return {c for c in codes if isinstance(c, str)}, {f for f in fields if isinstance(f, str)}


def push_send(*, token: str, prompt_id: str, kind: str, deadline: float | None = None) -> PushResult:
    """Sends one prompt's notification to one device token; never raises for FCM or network trouble."""
    return message_send(push_message(token=token, prompt_id=prompt_id, kind=kind), deadline=deadline)


def message_send(message: dict, *, deadline: float | None = None) -> PushResult:
    """Sends one message (see notification_message); never raises for FCM or network trouble.

    The access-token refresh (when one is due) and the push each get FCM_TIMEOUT_SECONDS, cut
    short at `deadline` (monotonic), after which nothing is sent: the caller's lease may have
    passed to another sender by then."""
    if deadline is not None and deadline <= time.monotonic():
        return PushResult(PushOutcome.RETRY, error="send_deadline")
    url = f"{settings.FCM_ENDPOINT.rstrip('/')}/v1/projects/{settings.FCM_PROJECT_ID}/messages:send"
    try:
        access_token = _access_token(until=_request_until(deadline))
    except (google.auth.exceptions.GoogleAuthError, OSError, ValueError) as exc:
        # Every push fails until the credentials are fixed: loud, but the prompts wait and retry.
        logger.error("FCM credentials could not be loaded or refreshed: %s", type(exc).__name__)
        return PushResult(PushOutcome.RETRY, error="fcm_auth")
    timeout = _timeout_until(_request_until(deadline))
    if timeout is None:  # the token refresh took what was left
        return PushResult(PushOutcome.RETRY, error="send_deadline")
    try:
        response = _http().post(url, json=message, headers={"Authorization": f"Bearer {access_token}"}, timeout=timeout)
    except requests.Timeout:
        return PushResult(PushOutcome.RETRY, error="fcm_timeout")
    except requests.RequestException:
        return PushResult(PushOutcome.RETRY, error="fcm_unreachable")

    status = response.status_code
    if status == 200:
        return PushResult(PushOutcome.OK)
    codes, fields = _error(response)
    retry_after = _retry_after_seconds(response.headers.get("Retry-After"))
    if status == 404 and "UNREGISTERED" in codes:
        return PushResult(PushOutcome.INVALID_TOKEN, error="unregistered")
    if "SENDER_ID_MISMATCH" in codes:
        # A 403 about the token, not us: it was issued to another Firebase project (a staging
        # build of the app, say), which this sender can never reach. Logged, since a burst of
        # them means our project is the wrong one; the app registering its token again
        # (device_register) reactivates the device.
        logger.warning("FCM: a device token belongs to another sender; deactivating it")
        return PushResult(PushOutcome.INVALID_TOKEN, error="sender_id_mismatch")
    if status == 400 and "INVALID_ARGUMENT" in codes:
        if fields and "message.token" not in fields:
            # FCM names a field of our message, not the token: deactivating would drop every
            # device over our own bug. Retry (the prompt fails at its expiry) and make noise.
            logger.error("FCM rejected our message format: %s", ",".join(sorted(fields)))
            return PushResult(PushOutcome.RETRY, error="fcm_bad_message")
        return PushResult(PushOutcome.INVALID_TOKEN, error="invalid_argument")
    if status in (401, 403):
        # Our credentials or project, not the device (no token-level code, unlike above): every
        # push fails alike. Retry (the prompt expires if nobody fixes it), start from a fresh
        # access token, and make noise.
        credentials_forget()
        logger.error("FCM refused our credentials (HTTP %s %s)", status, ",".join(sorted(codes)))
        return PushResult(PushOutcome.RETRY, error=f"fcm_{status}", retry_after=retry_after)
    if status == 429 or status >= 500:
        return PushResult(PushOutcome.RETRY, error=f"fcm_{status}", retry_after=retry_after)
    logger.warning("FCM answered HTTP %s %s; retrying later", status, ",".join(sorted(codes)))
    return PushResult(PushOutcome.RETRY, error=f"fcm_{status}", retry_after=retry_after)
