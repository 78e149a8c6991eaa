"""Signs a browser session (dashboard, Django admin) out after DASHBOARD_IDLE_TIMEOUT_SECONDS without
a request: a clinic computer left unlocked must not keep patients' records open."""

import time

from django.conf import settings
from django.contrib import messages
from django.contrib.auth import SESSION_KEY, logout

LAST_SEEN_KEY = "dashboard_last_seen"
# Writing the session on every request would cost a database write per page and per htmx call;
# once a minute is enough for a timeout counted in minutes.
_RESOLUTION_SECONDS = 60


def idle_clock_start(sender, request, user, **kwargs):
    """Connected to user_logged_in (DashboardConfig.ready): a fresh sign-in starts the clock, so the
    first page after it need not write the session."""
    if request is not None and hasattr(request, "session"):
        request.session[LAST_SEEN_KEY] = int(time.time())


class IdleTimeoutMiddleware:
    def __init__(self, get_response):
        self.get_response = get_response

    def __call__(self, request):
        # API requests carry a bearer token and no session cookie: nothing to load, nothing to do.
        if SESSION_KEY in request.session:
            now = int(time.time())
            last_seen = request.session.get(LAST_SEEN_KEY)
            if last_seen is not None and now - last_seen > settings.DASHBOARD_IDLE_TIMEOUT_SECONDS:
                logout(request)  # the view then sees an anonymous visitor and sends them to sign in
                minutes = max(1, settings.DASHBOARD_IDLE_TIMEOUT_SECONDS // 60)
                messages.info(request, f"You were signed out after {minutes} minutes without activity.")
            elif last_seen is None or now - last_seen >= _RESOLUTION_SECONDS:
                request.session[LAST_SEEN_KEY] = now
        return self.get_response(request)
