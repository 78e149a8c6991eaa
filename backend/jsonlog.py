"""JSON-lines logging with a per-request id.

The formatter writes a fixed set of attributes, the message, and for an exception its type and
stack (never its text): a request object, body, note or answer never reaches the output. Where a
library has already put the exception's text into the message (Celery's "Task … raised unexpected:
<repr>"), the formatter puts the exception's type in its place.
"""

import contextvars
import json
import logging
import traceback
from datetime import UTC, datetime

request_id_var: contextvars.ContextVar[str | None] = contextvars.ContextVar("request_id", default=None)

# Extra attributes a log call may pass; anything else given as `extra` is ignored on purpose.
_ALLOWED_EXTRA = ("method", "path", "status", "duration_ms", "user_id", "task", "count", "event")


class RequestIdFilter(logging.Filter):
    def filter(self, record: logging.LogRecord) -> bool:
        record.request_id = request_id_var.get()
        return True


def _without_exception_text(record: logging.LogRecord) -> str:
    """The message, with the text of the record's exception (as repr or str) replaced by its type.

    Only the exception the record carries can be recognised this way; a library that logs an
    exception's text without attaching the exception is not covered, so such paths (an SMTP error
    quoting a recipient) catch and log the type themselves."""
    message = record.getMessage()
    exc = record.exc_info[1] if record.exc_info else None
    if exc is None:
        return message
    name = type(exc).__qualname__
    for render in (repr, str):  # repr first: it usually contains str
        try:
            text = render(exc)
        except Exception:  # noqa: S112 - a broken __repr__ must not lose the log line
            continue
        # Short texts ("1", "0") carry no address or note, and replacing them would garble the line.
        if len(text) >= 8 and text != name:
            message = message.replace(text, name)
    return message


class JsonFormatter(logging.Formatter):
    def format(self, record: logging.LogRecord) -> str:
        line = {
            "ts": datetime.fromtimestamp(record.created, UTC).isoformat().replace("+00:00", "Z"),
            "level": record.levelname,
            "logger": record.name,
            "message": _without_exception_text(record),
            "request_id": getattr(record, "request_id", None),
        }
        for key in _ALLOWED_EXTRA:
            if hasattr(record, key):
                line[key] = getattr(record, key)
        if record.exc_info and record.exc_info[0] is not None:
            exc_type, _, tb = record.exc_info
            # Where it failed and what kind of error, but not the exception's message: messages can
            # quote the input (a note, an answer), and those must never reach a log.
            line["exc_type"] = f"{exc_type.__module__}.{exc_type.__qualname__}"
            line["exc_trace"] = "".join(traceback.format_tb(tb))
        return json.dumps(line, default=str)
