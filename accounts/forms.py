"""Forms of the Django admin that set passwords: each ends every sign-in of its user (SPEC §4).
Here, not in accounts.admin, so the admin site's class (dashboard.auth) can use them without
importing the module that registers models on that site."""

from django import forms
from django.contrib.admin.forms import AdminPasswordChangeForm as SitePasswordChangeForm
from django.contrib.auth.forms import AdminPasswordChangeForm
from django.db import transaction
from rest_framework import exceptions

from accounts import services


class _RevokesSignInsOnSave:
    """A password set here ends every sign-in of its user, as the API's password change and reset do
    (SPEC §4): the usual reason to set one is a lost or stolen laptop or phone, whose refresh token
    would otherwise keep working for 30 days."""

    revoked_reason = "password_change"

    def save(self, commit=True):
        if not commit:
            return super().save(commit=False)
        with transaction.atomic():  # the admin's password views are not atomic themselves
            user = super().save()
            services.sign_ins_revoke_all(user=user, reason=self.revoked_reason)
        return user


class StaffPasswordSetForm(_RevokesSignInsOnSave, AdminPasswordChangeForm):
    """A user's password set by an admin, at …/user/<id>/password/."""

    revoked_reason = "admin_password_set"


class OwnPasswordChangeForm(_RevokesSignInsOnSave, SitePasswordChangeForm):
    """A staff user's own password, at /admin/password_change/. A guess at the current password
    counts against the account's sign-in lockout, as at POST /api/v1/me/password/: an unattended
    signed-in browser must not let anyone try passwords without limit."""

    def clean_old_password(self):
        try:
            services.login_attempt_guard(self.user.email)
        except exceptions.Throttled:
            raise forms.ValidationError(
                "Too many wrong passwords for this account; try again later.", code="throttled"
            ) from None
        old_password = super().clean_old_password()
        services.login_attempts_reset(self.user.email)
        return old_password
