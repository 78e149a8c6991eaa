"""Helpers for tests that race real PostgreSQL transactions on threads."""

import time

from django.db import connection


def in_thread(fn):
    """Runs `fn` on a thread's own connection and gives the connection back."""

    def run(*args, **kwargs):
        try:
            return fn(*args, **kwargs)
        finally:
            connection.close()

    return run


def wait_for_a_backend_waiting_on_a_lock(query_start: str, timeout: float = 10) -> None:
    """Until another connection's statement starting with `query_start` waits on a lock."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        with connection.cursor() as cursor:
            cursor.execute(
                "SELECT 1 FROM pg_stat_activity WHERE pid <> pg_backend_pid() AND wait_event_type = 'Lock' "
                "AND query ILIKE %s",
                [query_start + "%"],
            )
            if cursor.fetchone():
                return
        time.sleep(0.02)
    raise AssertionError(f"no statement starting {query_start!r} waited on a lock")
