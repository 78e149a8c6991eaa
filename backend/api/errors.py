"""The one error shape, for every 4xx and 5xx the API answers.

{"error": {"code": "validation_error", "message": "...",
           "fields": {"craving": ["..."]}, "field_codes": {"craving": ["max_value"]}}}
"""

import sys

from django.core.exceptions import PermissionDenied as DjangoPermissionDenied
from django.core.exceptions import RequestDataTooBig
from django.db import InterfaceError, OperationalError
from django.http import Http404, HttpResponse, JsonResponse
from django.views import defaults
from rest_framework import exceptions
from rest_framework.response import Response

from backend.api.exceptions import InvalidCode, PayloadTooLarge

_NON_API_PREFIXES = ("/dashboard/", "/admin/", "/static/")


def is_api_path(path: str) -> bool:
    return not path.startswith(_NON_API_PREFIXES)


def error_body(code: str, message: str, fields=None, field_codes=None) -> dict:
    error = {"code": code, "message": message}
    if fields is not None:
        error["fields"] = fields
        error["field_codes"] = field_codes or {}
    return {"error": error}


def _flatten(details, prefix: str, messages: dict, codes: dict) -> None:
    """Turns DRF's nested error details into {"a.b": [messages]} and {"a.b": [codes]}."""
    if isinstance(details, dict):
        for key, value in details.items():
            _flatten(value, f"{prefix}.{key}" if prefix else str(key), messages, codes)
    elif isinstance(details, list):
        for index, item in enumerate(details):
            if isinstance(item, dict) and set(item) == {"message", "code"}:
                messages.setdefault(prefix or "non_field_errors", []).append(str(item["message"]))
                codes.setdefault(prefix or "non_field_errors", []).append(str(item["code"]))
            else:
                _flatten(item, f"{prefix}.{index}" if prefix else str(index), messages, codes)
    elif details is not None:
        messages.setdefault(prefix or "non_field_errors", []).append(str(details))
        codes.setdefault(prefix or "non_field_errors", []).append("invalid")


def flatten_details(details) -> tuple[dict, dict]:
    """({"field": [messages]}, {"field": [codes]}) from DRF's get_full_details()."""
    messages: dict = {}
    codes: dict = {}
    _flatten(details, "", messages, codes)
    return messages, codes


_CODE_BY_CLASS = (
    (exceptions.ValidationError, "validation_error"),
    (exceptions.ParseError, "validation_error"),
    (InvalidCode, "invalid_code"),
    (exceptions.NotAuthenticated, "not_authenticated"),
    (exceptions.AuthenticationFailed, "not_authenticated"),
    (exceptions.PermissionDenied, "permission_denied"),
    (exceptions.NotFound, "not_found"),
    (exceptions.MethodNotAllowed, "method_not_allowed"),
    (exceptions.NotAcceptable, "not_acceptable"),
    (exceptions.UnsupportedMediaType, "unsupported_media_type"),
    (exceptions.Throttled, "throttled"),
    (PayloadTooLarge, "payload_too_large"),
)


def exception_handler(exc, context):
    if isinstance(exc, Http404):
        exc = exceptions.NotFound()
    elif isinstance(exc, DjangoPermissionDenied):
        exc = exceptions.PermissionDenied()
    elif isinstance(exc, RequestDataTooBig):
        exc = PayloadTooLarge()
    if not isinstance(exc, exceptions.APIException):
        return None  # a bug: Django's 500 path answers (handler500 below), and it gets logged

    code = next((name for cls, name in _CODE_BY_CLASS if isinstance(exc, cls)), None)
    if code is None:
        code = exc.default_code if isinstance(exc.default_code, str) else "error"

    status = exc.status_code
    headers = {}
    if isinstance(exc, exceptions.NotAuthenticated | exceptions.AuthenticationFailed):
        # DRF turns these into 403 on views without an authenticator; the SPEC says 401 everywhere.
        status = 401
        headers["WWW-Authenticate"] = 'Bearer realm="api"'

    if getattr(exc, "wait", None):
        headers["Retry-After"] = str(max(1, int(exc.wait + 0.999)))

    if isinstance(exc, exceptions.ValidationError):
        messages, codes = flatten_details(exc.get_full_details())
        body = error_body(code, "Some fields are not valid.", messages, codes)
    elif isinstance(exc, exceptions.Throttled):
        body = error_body(code, "Too many requests; retry later.")
    else:
        detail = exc.detail
        message = str(detail) if not isinstance(detail, dict | list) else exc.default_detail
        body = error_body(code, str(message))
    return Response(body, status=status, headers=headers)


# Django-level handlers, for errors raised outside DRF views (unknown URL, crash in middleware).
def _api_or_default(default_view, status: int, code: str, message: str):
    def handler(request, exception=None):
        if not is_api_path(request.path):
            return default_view(request, exception)
        return JsonResponse(error_body(code, message), status=status)

    return handler


handler400 = _api_or_default(defaults.bad_request, 400, "validation_error", "Bad request.")
handler403 = _api_or_default(
    defaults.permission_denied, 403, "permission_denied", "You do not have permission to perform this action."
)
handler404 = _api_or_default(defaults.page_not_found, 404, "not_found", "Not found.")


# While the database restarts or fails over, a request is not a bug: it is worth retrying shortly.
DATABASE_RETRY_AFTER_SECONDS = 5


def _database_unavailable() -> bool:
    # Django calls handler500 inside the `except` that caught the request's exception.
    return isinstance(sys.exc_info()[1], OperationalError | InterfaceError)


def handler500(request):
    if _database_unavailable():
        message = "The service is briefly unavailable; please retry shortly."
        if is_api_path(request.path):
            response = JsonResponse(error_body("unavailable", message), status=503)
        else:
            response = HttpResponse(message, status=503, content_type="text/plain; charset=utf-8")
        response["Retry-After"] = str(DATABASE_RETRY_AFTER_SECONDS)
        return response
    if not is_api_path(request.path):
        return defaults.server_error(request)
    return JsonResponse(error_body("server_error", "Internal server error."), status=500)
