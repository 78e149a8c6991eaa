from django.contrib.auth.decorators import login_required
from django.core.exceptions import PermissionDenied
from django.shortcuts import render

from accounts.models import AccessAction
from accounts.selectors import patients_visible_to
from accounts.services import access_log_record


@login_required
def triage(request):
    # The full triage page (badges, sparklines, orderings) comes with the dashboard issue.
    if not request.user.is_clinician:
        raise PermissionDenied
    patients = list(patients_visible_to(request.user).order_by("display_name", "id"))
    access_log_record(request, patients=patients, action=AccessAction.LIST)
    return render(request, "dashboard/triage.html", {"patients": patients})
