"""Liveness and readiness (SPEC §13)."""

from django.db import connection
from django.http import JsonResponse
from django.utils import timezone
from django.views.decorators.http import require_GET

from backend.celery import app as celery_app
from backend.models import Heartbeat


@require_GET
def healthz(request):
    return JsonResponse({"status": "ok"})


def _database_ok() -> bool:
    try:
        with connection.cursor() as cursor:
            cursor.execute("SELECT 1")
        return True
    except Exception:
        return False


def _broker_ok() -> bool:
    try:
        with celery_app.connection_for_write() as conn:
            conn.ensure_connection(max_retries=1, timeout=1)
        return True
    except Exception:
        return False


def beat_age_seconds() -> float | None:
    """Seconds since beat last ran (its heartbeat row); None before the first run or without a database."""
    try:
        beat = Heartbeat.objects.filter(name="beat").first()
    except Exception:
        return None
    return round((timezone.now() - beat.last_run_at).total_seconds(), 1) if beat else None


@require_GET
def readyz(request):
    """200 when this process can serve: database and broker answer.

    Beat's age is reported for monitoring but does not gate readiness: a stopped beat must page
    someone, not take every web process out of the load balancer.
    """
    database, broker = _database_ok(), _broker_ok()
    body = {"database": database, "broker": broker, "beat_last_run_age_s": beat_age_seconds() if database else None}
    return JsonResponse(body, status=200 if database and broker else 503)
