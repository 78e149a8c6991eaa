"""Who may open a dashboard page: signed in (and, when DASHBOARD_REQUIRE_2FA is on, verified with a
TOTP code), a clinician, and for some pages a clinic admin. Anonymous visitors go to the sign-in page."""

from functools import wraps

from django.conf import settings
from django.contrib.auth.views import redirect_to_login
from django.core.exceptions import PermissionDenied


def clinician_required(view):
    @wraps(view)
    def wrapper(request, *args, **kwargs):
        user = request.user
        if not user.is_authenticated:
            return redirect_to_login(request.get_full_path())
        if getattr(settings, "DASHBOARD_REQUIRE_2FA", False) and not user.is_verified():
            return redirect_to_login(request.get_full_path())
        if not user.is_clinician:
            raise PermissionDenied
        return view(request, *args, **kwargs)

    return wrapper


def clinic_admin_required(view):
    @wraps(view)
    @clinician_required
    def wrapper(request, *args, **kwargs):
        if not request.user.is_clinic_admin:
            raise PermissionDenied
        return view(request, *args, **kwargs)

    return wrapper
