"""Dashboard sign-in (SPEC §12): email and password, then a code from an authenticator app (TOTP,
django-otp) for a clinician who has one, or setting one up when DASHBOARD_REQUIRE_2FA is on and they
have none yet.

Between the two steps nobody is signed in: the session only remembers, for a few minutes, who passed
the password step. Django's login() runs once the code is right, so no page, admin view or session
check elsewhere can mistake a half-finished sign-in for a signed-in user. Every password and every
code counts towards the same per-account lockout as the API's (accounts.services), and only a
finished sign-in clears it.
"""

import math
import time
from base64 import b32encode

import django_otp
import segno
from django.contrib import messages
from django.contrib.auth import login as auth_login
from django.contrib.auth import logout
from django.core.exceptions import PermissionDenied
from django.shortcuts import redirect, render
from django.urls import reverse
from django.utils.http import url_has_allowed_host_and_scheme
from django.views.decorators.cache import never_cache
from django.views.decorators.csrf import csrf_protect
from django.views.decorators.debug import sensitive_post_parameters
from django_otp.plugins.otp_totp.models import TOTPDevice
from rest_framework import exceptions

from accounts import services
from accounts.models import User
from dashboard.auth import is_fully_signed_in

PENDING_KEY = "dashboard_sign_in_pending"
PENDING_SECONDS = 10 * 60  # long enough to install an authenticator app, short enough to be stale
PATIENT_MESSAGE = "This sign-in is for clinic staff. Patients use the Interlude app on their phone."
BAD_CREDENTIALS = "Your email and password did not match. Please try again."
BAD_CODE = "That code did not work. Codes change every 30 seconds and each works once: enter the newest one."


def _safe_next(request, url: str) -> str:
    allowed = {request.get_host()}
    if url and url_has_allowed_host_and_scheme(url, allowed_hosts=allowed, require_https=request.is_secure()):
        return url
    return reverse("dashboard:triage")


def wait_message(seconds: float) -> str:
    if seconds < 60:
        return f"Too many attempts. Try again in {math.ceil(seconds)} seconds."
    return f"Too many attempts. Try again in {math.ceil(seconds / 60)} minutes."


def _pending_start(request, user: User, next_url: str) -> None:
    request.session.cycle_key()  # a session id fixed by someone else must not carry the next step
    request.session[PENDING_KEY] = {
        "user": str(user.pk),
        "hash": user.get_session_auth_hash(),  # a password changed meanwhile ends it
        "at": int(time.time()),
        "next": next_url,
    }


def _second_step_user(request) -> User | None:
    """Who is at the code step: the user who just passed the password step, or a signed-in one whose
    session is not verified (signed in while two-factor was not required, or set-up by choice)."""
    if request.user.is_authenticated:
        if not request.user.is_clinician:
            raise PermissionDenied
        return request.user
    pending = request.session.get(PENDING_KEY)
    if not pending or time.time() - pending["at"] > PENDING_SECONDS:
        return None
    user = User.objects.filter(pk=pending["user"], is_active=True).first()
    if user is None or user.get_session_auth_hash() != pending["hash"]:
        return None
    return user


def _next_url(request) -> str:
    pending = request.session.get(PENDING_KEY) or {}
    return request.POST.get("next") or request.GET.get("next") or pending.get("next") or ""


def _sign_in_finish(request, user: User, device: TOTPDevice | None):
    next_url = _safe_next(request, _next_url(request))
    services.login_attempts_reset(user.email)
    if request.user.is_authenticated and request.user.pk == user.pk:
        request.session.cycle_key()  # signed in before, verified now: a new session id for the new rights
    else:
        auth_login(request, user, backend="django.contrib.auth.backends.ModelBackend")
    if device is not None:
        django_otp.login(request, device)  # from now on request.user.is_verified()
    request.session.pop(PENDING_KEY, None)
    return redirect(next_url)


def _start_again(request):
    messages.info(request, "Your sign-in took too long. Please sign in again.")
    return redirect("dashboard:login")


def _code_check(request, user: User, device: TOTPDevice) -> str | None:
    """Counts the attempt and checks the posted code; returns the error to show, if any."""
    code = request.POST.get("code", "")
    if not code.strip():
        return "Enter the 6-digit code from your authenticator app."
    try:
        services.login_attempt_guard(user.email)
        services.second_factor_check(user=user, device=device, otp=code)
    except exceptions.Throttled as exc:
        return wait_message(exc.wait or 1)
    except (services.OtpRequired, services.OtpInvalid):
        return BAD_CODE
    return None


@sensitive_post_parameters("password")
@csrf_protect
@never_cache
def sign_in(request):
    next_url = request.POST.get("next") or request.GET.get("next") or ""
    user = request.user
    if request.method == "GET" and user.is_authenticated and user.is_clinician and is_fully_signed_in(user):
        return redirect(_safe_next(request, next_url))
    email, error = "", None
    if request.method == "POST":
        email = request.POST.get("username", "").strip()[:254]
        password = request.POST.get("password", "")
        if not email or not password:
            error = "Enter your email and password."
        else:
            try:
                user = services.credentials_check(email=email, password=password)
            except exceptions.Throttled as exc:
                error = wait_message(exc.wait or 1)
            except exceptions.AuthenticationFailed:
                error = BAD_CREDENTIALS
            else:
                if not user.is_clinician:
                    services.login_attempts_reset(email)  # the password was right; this is not a guess
                    error = PATIENT_MESSAGE
                else:
                    device = services.totp_device(user)
                    if not services.two_factor_needed(user, device):
                        return _sign_in_finish(request, user, None)
                    if request.user.is_authenticated:
                        logout(request)  # an earlier sign-in in this browser ends before this one starts
                    _pending_start(request, user, next_url)
                    return redirect("dashboard:two-factor" if device else "dashboard:two-factor-setup")
    context = {"next": next_url, "email": email, "error": error}
    return render(request, "dashboard/login.html", context)


@sensitive_post_parameters("code")
@csrf_protect
@never_cache
def two_factor(request):
    user = _second_step_user(request)
    if user is None:
        return _start_again(request)
    if request.user.is_authenticated and request.user.is_verified():
        return redirect(_safe_next(request, _next_url(request)))
    device = services.totp_device(user)
    if device is None:
        return redirect(f"{reverse('dashboard:two-factor-setup')}?{request.GET.urlencode()}")
    error = None
    if request.method == "POST":
        error = _code_check(request, user, device)
        if error is None:
            return _sign_in_finish(request, user, device)
    context = {"next": _next_url(request), "error": error}
    return render(request, "dashboard/two_factor/verify.html", context)


def _device_being_set_up(user: User) -> TOTPDevice:
    device = TOTPDevice.objects.devices_for_user(user, confirmed=False).order_by("pk").first()
    return device or TOTPDevice.objects.create(user=user, name="Authenticator app", confirmed=False)


@sensitive_post_parameters("code")
@csrf_protect
@never_cache
def two_factor_setup(request):
    user = _second_step_user(request)
    if user is None:
        return _start_again(request)
    if services.totp_device(user) is not None:
        # Set up already: the secret is never shown again, and replacing it takes a clinic admin.
        return redirect(f"{reverse('dashboard:two-factor')}?{request.GET.urlencode()}")
    device = _device_being_set_up(user)
    error = None
    if request.method == "POST":
        error = _code_check(request, user, device)
        if error is None:
            TOTPDevice.objects.filter(pk=device.pk).update(confirmed=True)
            device.confirmed = True
            messages.success(request, "Two-factor sign-in is set up. You will be asked for a code each time.")
            return _sign_in_finish(request, user, device)
    secret = b32encode(device.bin_key).decode()
    qr = segno.make(device.config_url, error="m")
    qr_width, qr_height = qr.symbol_size(scale=5, border=4)
    context = {
        "next": _next_url(request),
        "error": error,
        # An image with a data: URI: drawn here, no request leaves the page, and the CSP allows it.
        "qr": {"src": qr.svg_data_uri(scale=5, border=4, light="#fff"), "width": qr_width, "height": qr_height},
        "secret": " ".join(secret[i : i + 4] for i in range(0, len(secret), 4)),
    }
    return render(request, "dashboard/two_factor/setup.html", context)
