"""Throttling and caching fail open: with Redis stopped the API keeps answering (SPEC §3)."""

import time

import pytest
from django.core.cache import caches
from rest_framework.test import APIClient

from backend.api import throttles
from tests.conftest import sign_in

pytestmark = [pytest.mark.django_db, pytest.mark.integration]


@pytest.fixture
def cache_on_private_redis(private_redis, settings, monkeypatch):
    settings.CACHES = {
        "default": {
            "BACKEND": "django.core.cache.backends.redis.RedisCache",
            "LOCATION": private_redis.url,
            "OPTIONS": {"socket_connect_timeout": 0.25, "socket_timeout": 0.25},
        }
    }
    monkeypatch.setattr(throttles, "_cache_down_until", 0.0)
    yield private_redis
    caches["default"].close()


def test_cache_really_is_the_private_redis(cache_on_private_redis):
    caches["default"].set("probe", "here")
    assert caches["default"].get("probe") == "here"
    cache_on_private_redis.stop()
    with pytest.raises(Exception):  # noqa: B017 - any redis error proves the cache went through it
        caches["default"].get("probe")


def test_sign_in_me_and_writes_answer_with_redis_stopped(cast, cache_on_private_redis):
    client = APIClient()
    tokens = sign_in(client, cast.patient.user.email)
    client.credentials(HTTP_AUTHORIZATION=f"Bearer {tokens['access']}")
    assert client.patch("/api/v1/me/", {"display_name": "before"}, format="json").status_code == 200

    cache_on_private_redis.stop()

    started = time.monotonic()
    tokens = sign_in(APIClient(), cast.patient.user.email)
    client.credentials(HTTP_AUTHORIZATION=f"Bearer {tokens['access']}")
    assert client.get("/api/v1/me/").status_code == 200
    # Writes pass the (failing-open) write throttle.
    for _ in range(5):
        assert client.patch("/api/v1/me/", {"display_name": "during"}, format="json").status_code == 200
    assert (
        APIClient().post("/api/v1/auth/token/refresh/", {"refresh": tokens["refresh"]}, format="json").status_code
        == 200
    )
    assert (
        APIClient().post("/api/v1/auth/password-reset/", {"email": "x@example.org"}, format="json").status_code == 202
    )
    # One short timeout at most, then the throttle stops asking for a while.
    assert time.monotonic() - started < 5


def test_throttles_count_again_when_redis_returns(cast, cache_on_private_redis, monkeypatch):
    monkeypatch.setattr(throttles.UserWriteThrottle, "THROTTLE_RATES", {"user_write": "2/min"})
    client = APIClient()
    client.credentials(HTTP_AUTHORIZATION=f"Bearer {sign_in(client, cast.patient.user.email)['access']}")
    cache_on_private_redis.stop()
    assert [client.patch("/api/v1/me/", {}, format="json").status_code for _ in range(3)] == [200, 200, 200]
    cache_on_private_redis.start()
    monkeypatch.setattr(throttles, "_cache_down_until", 0.0)
    assert [client.patch("/api/v1/me/", {}, format="json").status_code for _ in range(3)] == [200, 200, 429]
