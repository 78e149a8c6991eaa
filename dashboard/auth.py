"""Who may open a dashboard page: signed in (and, when DASHBOARD_REQUIRE_2FA is on, verified with a
TOTP code), a clinician, and for some pages a clinic admin. Anonymous visitors go to the sign-in page.

The Django admin follows the same rule: its site is a django-otp OTPAdminSite while two-factor is
required, and its own login form is replaced by the dashboard's sign-in (one place with the lockout,
the TOTP step and the set-up page)."""

from functools import wraps
from urllib.parse import urlencode

from django.conf import settings
from django.contrib.admin import AdminSite
from django.contrib.auth.views import PasswordChangeView, redirect_to_login
from django.core.exceptions import PermissionDenied
from django.shortcuts import redirect
from django.urls import reverse
from django.utils.decorators import method_decorator
from django.views.decorators.cache import never_cache
from django_htmx.http import HttpResponseClientRedirect
from django_otp import user_has_device
from django_otp.admin import OTPAdminSite

from accounts.forms import OwnPasswordChangeForm


def is_fully_signed_in(user) -> bool:
    return user.is_authenticated and (not settings.DASHBOARD_REQUIRE_2FA or user.is_verified())


def second_step_redirect(user, next_url: str, request=None):
    """To the code step, or to setting up an authenticator app if the user has none yet."""
    step = "dashboard:two-factor" if user_has_device(user) else "dashboard:two-factor-setup"
    if request is not None and request.htmx:  # see clinician_required: the whole page goes there
        return HttpResponseClientRedirect(f"{reverse(step)}?{urlencode({'next': _page_of(request)})}")
    return redirect(f"{reverse(step)}?{urlencode({'next': next_url})}")


def _page_of(request) -> str:
    """The page an HTMX request was made from (same origin only), else the triage list."""
    return request.htmx.current_url_abs_path or reverse("dashboard:triage")


def clinician_required(view):
    @wraps(view)
    def wrapper(request, *args, **kwargs):
        user = request.user
        if not user.is_authenticated:
            if request.htmx:
                # htmx would follow a 302 and swap the sign-in page into the row or table it
                # was updating; HX-Redirect sends the whole page there, back to where it was.
                return HttpResponseClientRedirect(redirect_to_login(_page_of(request)).url)
            return redirect_to_login(request.get_full_path())
        if not user.is_clinician:
            raise PermissionDenied
        if not is_fully_signed_in(user):
            return second_step_redirect(user, request.get_full_path(), request)
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


class TwoFactorAdminSite(OTPAdminSite):
    """Installed on django.contrib.admin.site by DashboardConfig.ready(). The setting is read per
    request, so switching DASHBOARD_REQUIRE_2FA needs no other change."""

    def has_permission(self, request):
        if settings.DASHBOARD_REQUIRE_2FA:
            return super().has_permission(request)  # staff *and* verified with a TOTP code
        return AdminSite.has_permission(self, request)

    def password_change(self, request, extra_context=None):
        """/admin/password_change/ as AdminSite's, with a form that also ends every sign-in of the
        user (SPEC §4), as the API's password change does. Django 5.2 has no setting for that form
        (6.0 adds AdminSite.password_change_form)."""
        request.current_app = self.name
        return PasswordChangeView.as_view(
            form_class=OwnPasswordChangeForm,
            success_url=reverse("admin:password_change_done", current_app=self.name),
            extra_context={**self.each_context(request), **(extra_context or {})},
        )(request)

    @method_decorator(never_cache)
    def login(self, request, extra_context=None):
        next_url = request.GET.get("next") or reverse("admin:index", current_app=self.name)
        user = request.user
        if not user.is_authenticated:
            return redirect_to_login(next_url, reverse("dashboard:login"))
        if not user.is_clinician:
            raise PermissionDenied
        if not is_fully_signed_in(user):
            return second_step_redirect(user, next_url)
        if self.has_permission(request):
            return redirect("admin:index")
        raise PermissionDenied  # signed in, but not staff: signing in again would not change that
