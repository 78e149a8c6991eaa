"""Fixtures of the backend tests."""

import io
import json
import logging

import pytest

from backend.jsonlog import JsonFormatter, RequestIdFilter


@pytest.fixture
def log_lines():
    """The JSON lines the app's formatter writes while the test runs (root logger, DEBUG and up)."""
    stream = io.StringIO()
    handler = logging.StreamHandler(stream)
    handler.setFormatter(JsonFormatter())
    handler.addFilter(RequestIdFilter())
    root = logging.getLogger()
    root.addHandler(handler)
    previous = root.level
    root.setLevel(logging.DEBUG)
    yield lambda: [json.loads(line) for line in stream.getvalue().splitlines() if line.strip()]
    root.removeHandler(handler)
    root.setLevel(previous)
