"""Forms of the Django admin that set passwords: each ends every sign-in of its user (SPEC §4).
Here, not in accounts.admin, so the admin site's class (dashboard.auth) can use them without
importing the module that registers models on that site."""

from django import forms
from django.contrib.admin.forms import AdminPasswordChangeForm as SitePasswordChangeForm
from django.contrib.auth.forms import AdminPasswordChangeForm
from rest_framework import exceptions

from accounts import services


class _RevokesSignInsOnSave:
    """The form sets the password (or, the admin's choice, an unusable one); services.password_saved
    saves it and ends every sign-in of the user, as the API's password change and reset do."""

    revoked_reason = "password_change"

    def save(self, commit=True):
        user = super().save(commit=False)
        if commit:
            services.password_saved(user=user, reason=self.revoked_reason)
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
