"""Throttles backed by the shared cache (Redis) that fail open.

When Redis is down the API keeps answering: a throttle that cannot count lets the request through
and, for a few seconds, stops asking, so a dead Redis costs one short timeout, not one per request.
"""

import logging
import time
import weakref

from django.core.cache import caches
from django.core.cache.backends.redis import RedisCache
from rest_framework.throttling import AnonRateThrottle, SimpleRateThrottle

from backend.api.client import client_ip

logger = logging.getLogger(__name__)

_CACHE_DOWN_BACKOFF_SECONDS = 5.0
_cache_down_until = 0.0


class FailOpenMixin:
    def allow_request(self, request, view):
        global _cache_down_until
        if time.monotonic() < _cache_down_until:
            return True
        try:
            return super().allow_request(request, view)
        except Exception:  # any cache failure: redis.ConnectionError, TimeoutError, OSError...
            _cache_down_until = time.monotonic() + _CACHE_DOWN_BACKOFF_SECONDS
            logger.warning("throttle cache unavailable; failing open", extra={"event": "throttle_fail_open"})
            return True


# Django's RedisCache builds a new redis.Redis object (and its table of ~170 response callbacks) on
# every call; one per cache client, over the same connection pool, is enough and thread-safe.
_redis_clients: "weakref.WeakKeyDictionary" = weakref.WeakKeyDictionary()


def _redis_client(cache: RedisCache):
    client = _redis_clients.get(cache._cache)
    if client is None:
        client = _redis_clients[cache._cache] = cache._cache.get_client(write=True)
    return client


def _window_count(key: str, window_seconds: int) -> int:
    """Adds one to a counter that lives for one window and returns the new count."""
    cache = caches["default"]
    if isinstance(cache, RedisCache):
        # One round trip: INCR creates the key at 1, EXPIRE bounds it to the window. (Django's own
        # cache.incr asks EXISTS first, and add()+incr() would be three.)
        full_key = cache.make_and_validate_key(key)
        pipe = _redis_client(cache).pipeline(transaction=False)
        pipe.incr(full_key)
        pipe.expire(full_key, window_seconds)
        return pipe.execute()[0]
    cache.add(key, 0, window_seconds)
    return cache.incr(key)


class FixedWindowRateThrottle(SimpleRateThrottle):
    """A rate counted in fixed windows with one atomic increment per request.

    DRF's SimpleRateThrottle keeps a pickled list of every request time, read and rewritten on every
    request; on the entry POST path that was a millisecond of CPU. A fixed window can let through up
    to twice the rate across a window boundary, which is fine for a guard against runaway clients.
    """

    def allow_request(self, request, view):
        if self.rate is None:
            return True
        self.key = self.get_cache_key(request, view)
        if self.key is None:
            return True
        now = self.timer()
        window = int(now // self.duration)
        self.retry_after = (window + 1) * self.duration - now
        return _window_count(f"{self.key}:{window}", self.duration) <= self.num_requests

    def wait(self):
        return self.retry_after


class UserWriteThrottle(FailOpenMixin, FixedWindowRateThrottle):
    """Per-user limit on writes; reads are not throttled here."""

    scope = "user_write"

    def get_cache_key(self, request, view):
        if request.method in ("GET", "HEAD", "OPTIONS") or not request.user.is_authenticated:
            return None
        return self.cache_format % {"scope": self.scope, "ident": request.user.pk}


class PerAddressThrottle(FailOpenMixin, AnonRateThrottle):
    """Counts per caller address as the rest of the app sees it (client_ip: REMOTE_ADDR, or what
    the trusted proxies appended). DRF's own get_ident believes any X-Forwarded-For a caller sends,
    so a fresh header per request would never be counted."""

    def get_ident(self, request):
        return client_ip(request) or "unknown"


class EnrollmentThrottle(PerAddressThrottle):
    scope = "enrollment"


class PasswordResetThrottle(PerAddressThrottle):
    scope = "password_reset"
