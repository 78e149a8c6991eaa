"""GET /metrics (SPEC §13): who may scrape it, and what the numbers say.

The pipeline's numbers are read from the database and this test run's Redis db when scraped; the
latency histogram is this process's (tests run without PROMETHEUS_MULTIPROC_DIR), except in the
one test that starts two processes writing to a multiprocess directory, as gunicorn's workers do.
"""

import os
import subprocess
import sys
import uuid
from datetime import UTC, datetime, timedelta
from datetime import time as wall_time
from pathlib import Path

import pytest
import redis
import time_machine
from django.db import OperationalError
from django.test import Client
from django.utils import timezone
from prometheus_client.parser import text_string_to_metric_families

from backend import metrics
from backend.models import Heartbeat
from backend.tasks import heartbeat
from reminders.models import WEEKDAYS, AlertNotification, Prompt, Schedule
from tests.conftest import client_for
from tests.reminders.test_alert_notifications import open_alert
from tests.support.redis_server import spare_port

pytestmark = pytest.mark.django_db

ROOT = Path(__file__).resolve().parents[2]
REMOTE = "203.0.113.9"  # TEST-NET-3: nowhere near the default allow-list
TOKEN = "t" * 40
TRENDS_ROUTE = "api/v1/patients/<uuid:patient_id>/trends/"
NOW = datetime(2025, 3, 4, 12, 0, tzinfo=UTC)


def scrape(**extra) -> dict:
    """The families of one scrape from loopback (Django's test client), by name."""
    response = Client().get("/metrics", **extra)
    assert response.status_code == 200, response.content
    return {family.name: family for family in text_string_to_metric_families(response.content.decode())}


def value(families: dict, name: str, sample_name: str | None = None, **labels) -> float | None:
    for sample in families[name].samples:
        if sample.name == (sample_name or name) and all(sample.labels.get(k) == v for k, v in labels.items()):
            return sample.value
    return None


def requests_counted(families: dict, **labels) -> float:
    name = "interlude_http_request_duration_seconds"
    if name not in families:
        return 0
    return value(families, name, name + "_count", **labels) or 0


@pytest.fixture
def schedule(cast):
    return Schedule.objects.create(patient=cast.patient, kind="check_in", days=list(WEEKDAYS), time=wall_time(9))


def make_prompt(schedule, *, due: datetime, slot: int, **fields) -> Prompt:
    return Prompt.objects.create(
        patient=schedule.patient,
        schedule=schedule,
        kind="check_in",
        local_date=due.date(),
        slot=slot,
        scheduled_for=due,
        next_attempt_at=due,
        expires_at=due + timedelta(hours=2),
        **fields,
    )


# --- Who may scrape --------------------------------------------------------------------------------


def test_an_anonymous_remote_client_gets_the_404_of_an_unknown_url():
    client = Client(REMOTE_ADDR=REMOTE)
    unknown = client.get("/no-such-page")
    for method in ("get", "post", "head"):
        response = getattr(client, method)("/metrics")
        assert response.status_code == 404, method
    assert client.get("/metrics").json() == unknown.json()


def test_a_remote_client_with_the_token_may_scrape(settings):
    settings.METRICS_TOKEN = TOKEN
    client = Client(REMOTE_ADDR=REMOTE)
    assert client.get("/metrics", HTTP_AUTHORIZATION=f"Bearer {TOKEN}").status_code == 200
    assert client.get("/metrics", HTTP_AUTHORIZATION=f"bearer {TOKEN}").status_code == 200
    assert client.get("/metrics", HTTP_AUTHORIZATION=f"Bearer {TOKEN[:-1]}x").status_code == 404
    assert client.get("/metrics", HTTP_AUTHORIZATION=f"Basic {TOKEN}").status_code == 404


def test_no_token_is_accepted_while_none_is_set(settings):
    settings.METRICS_TOKEN = ""
    client = Client(REMOTE_ADDR=REMOTE)
    assert client.get("/metrics", HTTP_AUTHORIZATION="Bearer ").status_code == 404
    assert client.get("/metrics", HTTP_AUTHORIZATION="Bearer").status_code == 404


def test_loopback_may_scrape_without_a_token():
    assert Client(REMOTE_ADDR="127.0.0.1").get("/metrics").status_code == 200
    assert Client(REMOTE_ADDR="::1").get("/metrics").status_code == 200
    assert Client(REMOTE_ADDR="::ffff:127.0.0.1").get("/metrics").status_code == 200


def test_an_allowed_network_may_scrape(settings):
    settings.METRICS_ALLOWED_IPS = ["10.0.0.0/8"]
    assert Client(REMOTE_ADDR="10.1.2.3").get("/metrics").status_code == 200
    assert Client(REMOTE_ADDR="127.0.0.1").get("/metrics").status_code == 404


def test_a_public_request_relayed_by_the_local_proxy_is_not_local(settings):
    settings.TRUSTED_PROXY_COUNT = 1
    client = Client(REMOTE_ADDR="127.0.0.1")
    assert client.get("/metrics", HTTP_X_FORWARDED_FOR=REMOTE).status_code == 404
    # ...and a forged entry in front of the one the proxy appended changes nothing.
    assert client.get("/metrics", HTTP_X_FORWARDED_FOR=f"127.0.0.1, {REMOTE}").status_code == 404
    assert client.get("/metrics", HTTP_X_FORWARDED_FOR="127.0.0.1").status_code == 200


def test_a_plain_http_scrape_is_not_redirected_to_https(settings):
    settings.SECURE_SSL_REDIRECT = True
    client = Client()
    assert client.get("/healthz").status_code == 301
    assert client.get("/metrics").status_code == 200


def test_metrics_are_not_in_the_openapi_schema():
    schema = Client().get("/api/schema/", {"format": "json"}).json()
    assert not [path for path in schema["paths"] if "metrics" in path]


# --- The text --------------------------------------------------------------------------------------


def test_the_scrape_is_prometheus_text_with_every_promised_metric():
    response = Client().get("/metrics")
    assert response["Content-Type"] == "text/plain; version=0.0.4; charset=utf-8"
    families = {f.name: f for f in text_string_to_metric_families(response.content.decode())}
    for name in (
        "interlude_http_request_duration_seconds",
        "interlude_sweep_lag_seconds",
        "interlude_queue_depth",
        "interlude_delivery_failures",
        "interlude_beat_last_run_age_seconds",
        "interlude_redis_up",
        "interlude_database_up",
    ):
        assert name in families, name
    assert families["interlude_http_request_duration_seconds"].type == "histogram"


def test_latency_is_counted_under_the_route_template_never_the_path(cast):
    clinician = client_for(cast.clinician)
    # The series of 200s: earlier tests in the same process may have left other statuses' series.
    labels = {"method": "GET", "route": TRENDS_ROUTE, "status": "200"}
    before = requests_counted(scrape(), **labels)
    response = clinician.get(f"/api/v1/patients/{cast.patient.pk}/trends/")
    assert response.status_code == 200

    response_text = Client().get("/metrics").content.decode()
    families = {f.name: f for f in text_string_to_metric_families(response_text)}
    assert requests_counted(families, **labels) == before + 1
    assert str(cast.patient.pk) not in response_text


def test_unknown_urls_and_methods_share_one_series_each():
    client = Client()
    before = scrape()
    client.get(f"/no-such-page/{uuid.uuid4()}")
    client.generic("BREW", "/healthz")
    after = scrape()
    unmatched = {"method": "GET", "route": "unmatched", "status": "404"}
    assert requests_counted(after, **unmatched) == requests_counted(before, **unmatched) + 1
    other = {"method": "other", "route": "healthz", "status": "405"}
    assert requests_counted(after, **other) == requests_counted(before, **other) + 1


def test_gunicorn_workers_histograms_are_summed_from_the_multiprocess_directory(tmp_path, settings):
    # Two processes, as two gunicorn workers: each writes its own file; any one scrape reads both.
    observe = (
        "import django; django.setup()\n"
        "from django.test import RequestFactory\n"
        "from django.urls import resolve\n"
        "from backend.metrics import request_observe\n"
        "request = RequestFactory().get('/healthz'); request.resolver_match = resolve('/healthz')\n"
        "request_observe(request, 200, 0.02)\n"
    )
    env = {**os.environ, "PROMETHEUS_MULTIPROC_DIR": str(tmp_path)}
    for _ in range(2):
        subprocess.run([sys.executable, "-c", observe], cwd=ROOT, env=env, check=True, timeout=60)
    assert len(list(tmp_path.glob("histogram_*.db"))) == 2

    settings.PROMETHEUS_MULTIPROC_DIR = str(tmp_path)
    families = scrape()
    labels = {"method": "GET", "route": "healthz", "status": "200"}
    assert requests_counted(families, **labels) == 2
    name = "interlude_http_request_duration_seconds"
    assert value(families, name, name + "_sum", **labels) == pytest.approx(0.04)
    assert "interlude_sweep_lag_seconds" in families  # the database's numbers come along


# --- The pipeline --------------------------------------------------------------------------------------


def test_sweep_lag_is_the_age_of_the_oldest_due_prompt_still_to_send(schedule):
    with time_machine.travel(NOW, tick=False):
        assert value(scrape(), "interlude_sweep_lag_seconds", kind="prompt") == 0
        make_prompt(schedule, due=NOW + timedelta(minutes=5), slot=0)  # not due yet
        make_prompt(schedule, due=NOW - timedelta(minutes=7), slot=1, status="sent")  # done
        make_prompt(schedule, due=NOW - timedelta(minutes=2), slot=2)
        assert value(scrape(), "interlude_sweep_lag_seconds", kind="prompt") == 120
        # One a sweep already handed to a worker is still late: a stuck queue must show.
        leased = make_prompt(schedule, due=NOW - timedelta(minutes=4), slot=3)
        Prompt.objects.filter(pk=leased.pk).update(lease_owner="sweep", lease_until=NOW + timedelta(minutes=10))
        assert value(scrape(), "interlude_sweep_lag_seconds", kind="prompt") == 240


def test_sweep_lag_of_alert_notifications(cast):
    with time_machine.travel(NOW, tick=False):
        open_alert(cast.patient)  # round 0 is due at once
    with time_machine.travel(NOW + timedelta(seconds=90), tick=False):
        assert value(scrape(), "interlude_sweep_lag_seconds", kind="alert_notification") == 90


def test_delivery_failures_count_failed_rows(cast, schedule):
    make_prompt(schedule, due=NOW, slot=0, status="failed", last_error="no_channel")
    make_prompt(schedule, due=NOW, slot=1, status="failed", last_error="expired_retrying")
    make_prompt(schedule, due=NOW, slot=2, status="sent")
    alert = open_alert(cast.patient)
    AlertNotification.objects.filter(alert=alert, channel="email").update(status="failed")
    emails = AlertNotification.objects.filter(alert=alert, channel="email").count()
    assert emails

    families = scrape()
    assert value(families, "interlude_delivery_failures", kind="prompt") == 2
    assert value(families, "interlude_delivery_failures", kind="alert_notification", channel="email") == emails
    assert value(families, "interlude_delivery_failures", kind="alert_notification", channel="push") == 0


def test_queue_depth_counts_messages_waiting_in_each_celery_queue(settings):
    client = redis.Redis.from_url(settings.REDIS_URL)
    before = scrape()
    marker = f"metrics-test-{uuid.uuid4()}"
    try:
        client.lpush("prompts", *[marker] * 3)
        client.lpush("alerts_urgent\x06\x163", marker)  # a message sent with a priority
        after = scrape()
    finally:
        client.lrem("prompts", 0, marker)
        client.lrem("alerts_urgent\x06\x163", 0, marker)
        client.close()
    assert value(after, "interlude_redis_up") == 1
    for queue, added in (("prompts", 3), ("alerts_urgent", 1), ("default", 0)):
        depth_before = value(before, "interlude_queue_depth", queue=queue)
        assert value(after, "interlude_queue_depth", queue=queue) == depth_before + added, queue


def test_the_scrape_answers_with_redis_down(settings):
    settings.REDIS_URL = f"redis://127.0.0.1:{spare_port()}/0"  # nothing listens there
    families = scrape()
    assert value(families, "interlude_redis_up") == 0
    assert "interlude_queue_depth" not in families
    assert value(families, "interlude_database_up") == 1


def test_the_scrape_answers_with_the_database_failing(monkeypatch):
    def fail(*args, **kwargs):
        raise OperationalError("server closed the connection unexpectedly")

    monkeypatch.setattr(metrics, "oldest_due_at", fail)
    families = scrape()
    assert value(families, "interlude_database_up") == 0
    assert value(families, "interlude_redis_up") == 1


def test_beat_age_comes_from_the_heartbeat():
    assert value(scrape(), "interlude_beat_last_run_age_seconds") == float("inf")
    heartbeat()
    assert 0 <= value(scrape(), "interlude_beat_last_run_age_seconds") < 60
    Heartbeat.objects.filter(name="beat").update(last_run_at=timezone.now() - timedelta(hours=1))
    assert value(scrape(), "interlude_beat_last_run_age_seconds") >= 3600


def test_a_scrape_makes_five_queries(django_assert_num_queries, cast, schedule):
    # Oldest due prompt (prompt_due), oldest due alert notification (alert_notification_due), failed
    # prompts, failed alert notifications by channel, beat's heartbeat (primary key). Nothing else,
    # however many rows there are.
    make_prompt(schedule, due=timezone.now(), slot=0, status="failed")
    open_alert(cast.patient)
    with django_assert_num_queries(5):
        scrape()
