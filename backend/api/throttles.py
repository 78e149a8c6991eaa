"""Throttles backed by the shared cache (Redis) that fail open.

When Redis is down the API keeps answering: a throttle that cannot count lets the request through
and, for a few seconds, stops asking, so a dead Redis costs one short timeout, not one per request.
"""

import logging
import time

from rest_framework.throttling import AnonRateThrottle, SimpleRateThrottle

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


class UserWriteThrottle(FailOpenMixin, SimpleRateThrottle):
    """Per-user limit on writes; reads are not throttled here."""

    scope = "user_write"

    def get_cache_key(self, request, view):
        if request.method in ("GET", "HEAD", "OPTIONS") or not request.user.is_authenticated:
            return None
        return self.cache_format % {"scope": self.scope, "ident": request.user.pk}


class EnrollmentThrottle(FailOpenMixin, AnonRateThrottle):
    scope = "enrollment"


class PasswordResetThrottle(FailOpenMixin, AnonRateThrottle):
    scope = "password_reset"
