"""The page the password-reset email links to (SPEC §4), for a patient on their phone's browser and
for staff alike: the new password, twice, set by the same service as the API's
POST /api/v1/auth/password-reset/confirm/, which ends every sign-in. No script: the form posts here.

It signs nobody in. A patient signs in again in the app; staff at the dashboard sign-in, with their
second factor: a reset link must not be a way around it."""

from django import forms
from django.shortcuts import render
from django.views.decorators.cache import never_cache
from django.views.decorators.csrf import csrf_protect
from django.views.decorators.debug import sensitive_post_parameters
from rest_framework import exceptions

from accounts import services
from backend.api.exceptions import InvalidCode
from backend.api.throttles import PasswordResetThrottle
from dashboard.views.auth import wait_message

LINK_INVALID = "This reset link is not valid or has expired. Ask for a new reset email."


class NewPasswordForm(forms.Form):
    token = forms.CharField(max_length=200, widget=forms.HiddenInput)
    password1 = forms.CharField(
        label="New password",
        max_length=256,
        strip=False,
        widget=forms.PasswordInput(attrs={"autocomplete": "new-password"}),
    )
    password2 = forms.CharField(
        label="New password again",
        max_length=256,
        strip=False,
        widget=forms.PasswordInput(attrs={"autocomplete": "new-password"}),
    )

    def clean(self):
        data = super().clean()
        if data.get("password1") and data.get("password2") and data["password1"] != data["password2"]:
            self.add_error("password2", "The two passwords differ.")
        return data


@sensitive_post_parameters("token", "password1", "password2")
@csrf_protect
@never_cache
def password_reset(request):
    if request.method != "POST":
        form = NewPasswordForm(initial={"token": request.GET.get("token", "")})
        return render(request, "dashboard/password_reset.html", {"form": form})
    form = NewPasswordForm(request.POST)
    if form.is_valid():
        throttle = PasswordResetThrottle()  # the API's confirm counts against the same allowance
        if not throttle.allow_request(request, None):
            form.add_error(None, wait_message(throttle.wait() or 1))
        else:
            try:
                services.password_reset_confirm(
                    token=form.cleaned_data["token"], password=form.cleaned_data["password1"]
                )
            except InvalidCode:
                form.add_error(None, LINK_INVALID)
            except exceptions.ValidationError as exc:  # too short, too common, like the email…
                form.add_error("password1", [str(message) for message in exc.detail.get("password", [])])
            else:
                return render(request, "dashboard/password_reset.html", {"done": True})
    elif "token" in form.errors:
        form.add_error(None, LINK_INVALID)
    return render(request, "dashboard/password_reset.html", {"form": form})
