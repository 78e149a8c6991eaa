"""Pages that act: the alert inbox, sessions, enrolling a patient, the access log (issue 6)."""

from django.http import HttpResponse

from dashboard.auth import clinic_admin_required, clinician_required


def _todo(request, *args, **kwargs):
    return HttpResponse("Not built yet.", status=501)


alert_inbox = alert_acknowledge = alert_resolve = clinician_required(_todo)
sessions = session_move = session_cancel = patient_enroll = enrollment_code = clinician_required(_todo)
access_log = clinic_admin_required(_todo)
