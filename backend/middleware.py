import json
import logging
import re
import time
import uuid

from django.conf import settings
from django.http import HttpRequest, HttpResponse, JsonResponse
from django.utils.cache import add_never_cache_headers

from backend.api.errors import error_body, is_api_path
from backend.jsonlog import request_id_var
from backend.metrics import request_observe

request_logger = logging.getLogger("interlude.request")

_REQUEST_ID_RE = re.compile(r"^[A-Za-z0-9._-]{8,64}$")


class RequestIdMiddleware:
    """Gives every request an id (the caller's X-Request-ID when sane), logs one line per request.

    The line holds method, path, status, duration and user id: never the body or query values. The
    same duration feeds the latency histogram of /metrics.
    """

    def __init__(self, get_response):
        self.get_response = get_response

    def __call__(self, request: HttpRequest) -> HttpResponse:
        incoming = request.META.get("HTTP_X_REQUEST_ID", "")
        request_id = incoming if _REQUEST_ID_RE.match(incoming) else uuid.uuid4().hex
        request.request_id = request_id
        token = request_id_var.set(request_id)
        started = time.perf_counter()
        try:
            response = self.get_response(request)
            response["X-Request-ID"] = request_id
            elapsed = time.perf_counter() - started
            request_observe(request, response.status_code, elapsed)
            user = getattr(request, "user", None)
            request_logger.info(
                "request",
                extra={
                    "method": request.method,
                    "path": request.path,
                    "status": response.status_code,
                    "duration_ms": round(elapsed * 1000, 2),
                    "user_id": str(user.pk) if user is not None and user.is_authenticated else None,
                },
            )
            return response
        finally:
            request_id_var.reset(token)


class BodySizeLimitMiddleware:
    """Refuses an oversized body from its declared length, before anything reads or parses it.

    The limit counts raw bytes on the wire, so no declared charset or encoding can smuggle more
    past it; compressed bodies are refused outright because their decoded size is unbounded.
    """

    def __init__(self, get_response):
        self.get_response = get_response

    def __call__(self, request: HttpRequest) -> HttpResponse:
        raw_length = request.META.get("CONTENT_LENGTH") or "0"
        try:
            length = int(raw_length)
        except ValueError:
            length = -1
        if length < 0:
            return JsonResponse(error_body("validation_error", "Invalid Content-Length header."), status=400)
        if length > settings.MAX_REQUEST_BODY_BYTES:
            return JsonResponse(
                error_body(
                    "payload_too_large", f"Request bodies are limited to {settings.MAX_REQUEST_BODY_BYTES} bytes."
                ),
                status=413,
            )
        encoding = request.META.get("HTTP_CONTENT_ENCODING", "").strip().lower()
        if encoding not in ("", "identity"):
            return JsonResponse(
                error_body("unsupported_media_type", "Compressed request bodies are not accepted."), status=415
            )
        return self.get_response(request)


class ErrorShapeMiddleware:
    """Rewrites any non-JSON error answer on an API path into the one error shape.

    DRF's handler shapes its own errors; this catches what Django answers by itself (CSRF failure,
    a 405 from a plain view, a bad Host header) so a client never has to parse HTML.
    """

    def __init__(self, get_response):
        self.get_response = get_response

    def __call__(self, request: HttpRequest) -> HttpResponse:
        response = self.get_response(request)
        if response.status_code < 400 or not is_api_path(request.path):
            return response
        if response.get("Content-Type", "").startswith("application/json"):
            return response
        code = _CODES_BY_STATUS.get(response.status_code, "error")
        shaped = HttpResponse(
            json.dumps(error_body(code, _MESSAGES_BY_STATUS.get(response.status_code, "Request failed."))),
            status=response.status_code,
            content_type="application/json",
        )
        for header in ("Allow", "Retry-After", "WWW-Authenticate"):
            if header in response:
                shaped[header] = response[header]
        return shaped


_CODES_BY_STATUS = {
    400: "validation_error",
    401: "not_authenticated",
    403: "permission_denied",
    404: "not_found",
    405: "method_not_allowed",
    409: "conflict",
    412: "precondition_failed",
    413: "payload_too_large",
    415: "unsupported_media_type",
    426: "upgrade_required",
    429: "throttled",
    500: "server_error",
    503: "unavailable",
}
_MESSAGES_BY_STATUS = {
    400: "Bad request.",
    401: "Authentication credentials were not provided or are invalid.",
    403: "You do not have permission to perform this action.",
    404: "Not found.",
    405: "Method not allowed.",
    413: "Request body too large.",
    500: "Internal server error.",
    503: "Service unavailable.",
}


def _parse_version(value: str) -> tuple[int, ...] | None:
    parts = value.strip().split(".")
    if not 1 <= len(parts) <= 4 or not all(part.isdigit() and len(part) <= 6 for part in parts):
        return None
    return tuple(int(part) for part in parts) + (0,) * (4 - len(parts))


class AppVersionMiddleware:
    """Answers 426 to phone apps older than MIN_APP_VERSION, so old apps can be retired."""

    def __init__(self, get_response):
        self.get_response = get_response
        if _parse_version(settings.MIN_APP_VERSION) is None:
            raise ValueError(f"MIN_APP_VERSION={settings.MIN_APP_VERSION!r} is not a dotted version.")

    def __call__(self, request: HttpRequest) -> HttpResponse:
        header = request.META.get("HTTP_X_APP_VERSION")
        if header is not None and request.path.startswith("/api/"):
            version = _parse_version(header)
            minimum = _parse_version(settings.MIN_APP_VERSION)
            if version is None:
                return JsonResponse(
                    error_body("validation_error", "X-App-Version must be a dotted version such as 1.4.2."), status=400
                )
            if version < minimum:
                return JsonResponse(
                    error_body(
                        "upgrade_required",
                        "This app version is no longer supported; "
                        f"please update to {settings.MIN_APP_VERSION} or later.",
                    ),
                    status=426,
                )
        return self.get_response(request)


class NotStoredMiddleware:
    """Every response but a static file may carry a patient's data or a code (the API, the
    dashboard, errors): no browser, proxy or shared cache may keep a copy. A view that sets its own
    Cache-Control (an export, a sign-in page) keeps it."""

    def __init__(self, get_response):
        self.get_response = get_response

    def __call__(self, request: HttpRequest) -> HttpResponse:
        response = self.get_response(request)
        if "Cache-Control" not in response and not request.path.startswith(settings.STATIC_URL):
            add_never_cache_headers(response)
        return response
