import pytest
from django.test import Client
from django.utils import timezone

from backend.models import Heartbeat
from backend.tasks import heartbeat


@pytest.mark.django_db
def test_healthz_answers_while_the_process_runs():
    assert Client().get("/healthz").json() == {"status": "ok"}


@pytest.mark.django_db
def test_readyz_reports_database_broker_and_beat_age():
    heartbeat()
    response = Client().get("/readyz")
    assert response.status_code == 200
    body = response.json()
    assert body["database"] is True and body["broker"] is True
    assert 0 <= body["beat_last_run_age_s"] < 60


@pytest.mark.django_db
def test_readyz_is_503_when_the_broker_is_down(private_redis, monkeypatch):
    from backend.celery import app

    private_redis.stop()
    monkeypatch.setattr(app.conf, "broker_url", private_redis.url)
    response = Client().get("/readyz")
    assert response.status_code == 503
    assert response.json()["broker"] is False


@pytest.mark.django_db
def test_readyz_reports_a_stale_beat_without_failing_readiness():
    Heartbeat.objects.create(name="beat", last_run_at=timezone.now() - timezone.timedelta(hours=1))
    body = Client().get("/readyz").json()
    assert body["beat_last_run_age_s"] >= 3600
