"""GET /metrics (SPEC §13): Prometheus text for whoever runs production, never for the public.

Two kinds of numbers:
- Request latency, observed per request by RequestIdMiddleware. Gunicorn runs several worker
  processes and a scrape reaches one of them, so with PROMETHEUS_MULTIPROC_DIR set (the image sets
  it, the start command empties it) every worker writes its histogram to files there and whichever
  worker answers sums them all: prometheus_client's multiprocess mode. Without it (tests,
  `make run`) the histogram lives in this process's memory.
- The pipeline's state (sweep lag, queue depth, delivery failures, beat's age), read from the
  database and Redis when scraped. The database is the source of truth for every pending send, so
  the web process keeps no state of its own and every worker answers the same.
"""

import hmac
import ipaddress
import math

from django.conf import settings
from django.db import DatabaseError
from django.db.models import Count, Min
from django.http import Http404, HttpRequest, HttpResponse, HttpResponseNotAllowed
from django.utils import timezone
from prometheus_client import CollectorRegistry, Histogram, generate_latest
from prometheus_client.exposition import CONTENT_TYPE_PLAIN_0_0_4
from prometheus_client.metrics_core import GaugeMetricFamily
from prometheus_client.multiprocess import MultiProcessCollector

from backend.api.client import client_ip
from backend.health import beat_age_seconds
from backend.queueing import queue_depths
from reminders.models import AlertNotification, NotificationChannel, NotificationStatus, Prompt, PromptStatus

# Not registered anywhere: each scrape builds its registry (see scrape_registry).
REQUEST_DURATION = Histogram(
    "interlude_http_request_duration_seconds",
    "Time from the request reaching Django to its response leaving it (a streamed body is not counted).",
    ["method", "route", "status"],
    registry=None,
)

# A client can send any method name; only these become label values, so the series stay bounded.
_METHODS = frozenset({"GET", "HEAD", "POST", "PUT", "PATCH", "DELETE", "OPTIONS"})


def request_observe(request: HttpRequest, status: int, seconds: float) -> None:
    """Labels by URL pattern (`api/v1/patients/<uuid:patient_id>/trends/`), never by path: a path
    holds ids, and one series per patient would grow without bound."""
    match = request.resolver_match
    route = match.route if match is not None else "unmatched"
    method = request.method if request.method in _METHODS else "other"
    REQUEST_DURATION.labels(method=method, route=route, status=str(status)).observe(seconds)


# --- The pipeline, read when scraped -------------------------------------------------------------


def oldest_due_at(model, *, now):
    """When the oldest row still waiting to be sent fell due; None when nothing is late.

    `status = 'scheduled' AND next_attempt_at <= now` is the sweepers' partial index (prompt_due,
    alert_notification_due), and MIN over it is one probe at the index's start however much history
    the table holds. Rows a sweep already handed to a worker count: a prompt waiting in a stuck
    queue is as late as one no sweep has seen, and leaving it out would hide a dead worker pool.
    """
    due = model.objects.filter(status="scheduled", next_attempt_at__lte=now)
    return due.aggregate(oldest=Min("next_attempt_at"))["oldest"]


def _lag_seconds(oldest, now) -> float:
    return max(0.0, (now - oldest).total_seconds()) if oldest is not None else 0.0


class PipelineCollector:
    """Sweep lag, delivery failures and beat's age from the database; queue depth from Redis.

    Five queries a scrape. The oldest due prompt and alert notification are one probe each of the
    sweepers' partial indexes, and beat's heartbeat a primary-key read: microseconds at any size.
    Failed prompts are counted over the partial index `prompt_failed` (a few rows; a scan of the
    whole table took 280 ms at 2 M prompts, the index ~2 ms).
    Alert notifications are few (alerts × recipients × rounds), so their scan stays small.
    """

    def collect(self):
        yield from self._from_database()
        if settings.REDIS_URL:  # the embedded demo's filesystem broker has no queue to measure
            yield from self._from_redis()

    def _from_database(self):
        now = timezone.now()
        try:
            prompt_due = oldest_due_at(Prompt, now=now)
            notification_due = oldest_due_at(AlertNotification, now=now)
            failed_prompts = Prompt.objects.filter(status=PromptStatus.FAILED).count()
            failed_notifications = dict(
                AlertNotification.objects.filter(status=NotificationStatus.FAILED)
                .values_list("channel")
                .annotate(count=Count("pk"))
                .order_by()
            )
        except DatabaseError:
            yield GaugeMetricFamily("interlude_database_up", "1 when the database answered this scrape.", value=0)
            return
        yield GaugeMetricFamily("interlude_database_up", "1 when the database answered this scrape.", value=1)

        lag = GaugeMetricFamily(
            "interlude_sweep_lag_seconds",
            "Seconds since the oldest row still waiting to be sent fell due; 0 when none is.",
            labels=["kind"],
        )
        lag.add_metric(["prompt"], _lag_seconds(prompt_due, now))
        lag.add_metric(["alert_notification"], _lag_seconds(notification_due, now))
        yield lag

        failures = GaugeMetricFamily(
            "interlude_delivery_failures",
            "Rows in the failed state (never delivered), over all history: alert on its increase.",
            labels=["kind", "channel"],
        )
        # A failed prompt records no channel (it failed to find or use one); its reason is last_error.
        failures.add_metric(["prompt", ""], failed_prompts)
        for channel in NotificationChannel.values:
            failures.add_metric(["alert_notification", channel], failed_notifications.get(channel, 0))
        yield failures

        age = beat_age_seconds()
        yield GaugeMetricFamily(
            "interlude_beat_last_run_age_seconds",
            "Seconds since beat's heartbeat task last ran (beat, broker and a worker together); +Inf if never.",
            value=math.inf if age is None else age,
        )

    def _from_redis(self):
        depths = queue_depths()
        up = depths is not None
        yield GaugeMetricFamily("interlude_redis_up", "1 when Redis answered this scrape.", value=int(up))
        if not up:
            return
        depth = GaugeMetricFamily(
            "interlude_queue_depth", "Messages waiting in a Celery queue for a worker.", labels=["queue"]
        )
        for queue, size in depths.items():
            depth.add_metric([queue], size)
        yield depth


def scrape_registry() -> CollectorRegistry:
    registry = CollectorRegistry()
    if settings.PROMETHEUS_MULTIPROC_DIR:
        MultiProcessCollector(registry, path=settings.PROMETHEUS_MULTIPROC_DIR)
    else:
        registry.register(REQUEST_DURATION)
    registry.register(PipelineCollector())
    return registry


# --- The view --------------------------------------------------------------------------------------


def _from_allowed_network(request: HttpRequest) -> bool:
    try:
        address = ipaddress.ip_address(client_ip(request) or "")
    except ValueError:
        return False
    if isinstance(address, ipaddress.IPv6Address) and address.ipv4_mapped:
        address = address.ipv4_mapped
    return any(address in ipaddress.ip_network(network, strict=False) for network in settings.METRICS_ALLOWED_IPS)


def _has_token(request: HttpRequest) -> bool:
    expected = settings.METRICS_TOKEN
    scheme, _, presented = request.META.get("HTTP_AUTHORIZATION", "").partition(" ")
    # An unset token must never match an empty one.
    return bool(expected) and scheme.lower() == "bearer" and hmac.compare_digest(presented.encode(), expected.encode())


def metrics(request: HttpRequest) -> HttpResponse:
    """The scrape: a bearer METRICS_TOKEN or a client inside METRICS_ALLOWED_IPS (seen through the
    trusted proxies, so a public request relayed by the local proxy is not "local"). Anyone else
    gets the 404 of an unknown URL, before the method is even looked at: the page is not advertised.
    """
    if not (_has_token(request) or _from_allowed_network(request)):
        raise Http404
    if request.method not in ("GET", "HEAD"):
        return HttpResponseNotAllowed(["GET", "HEAD"])
    return HttpResponse(generate_latest(scrape_registry()), content_type=CONTENT_TYPE_PLAIN_0_0_4)
