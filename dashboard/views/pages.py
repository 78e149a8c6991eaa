"""The pages a clinician reads: the triage list and a patient's page (issue 6)."""

from django.http import HttpResponse
from django.shortcuts import render

from accounts.models import AccessAction
from accounts.selectors import patients_visible_to
from accounts.services import access_log_record
from dashboard.auth import clinician_required


@clinician_required
def triage(request):
    patients = list(patients_visible_to(request.user).order_by("display_name", "id"))
    access_log_record(request, patients=patients, action=AccessAction.LIST)
    return render(request, "dashboard/triage.html", {"patients": patients, "nav": "triage"})


@clinician_required
def patient(request, patient_id):
    return HttpResponse("Not built yet.", status=501)
