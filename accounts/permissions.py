"""Who may use which route (SPEC §3). Checked before any lookup, so a patient token on a
clinician route learns nothing about what exists."""

from django.http import Http404
from rest_framework.permissions import BasePermission

from accounts.models import AccessAction, Patient
from accounts.services import care_team_patient_logged


class IsPatient(BasePermission):
    message = "This route is for patients."

    def has_permission(self, request, view) -> bool:
        return bool(request.user and request.user.is_authenticated and request.user.is_patient)


class IsClinician(BasePermission):
    message = "This route is for clinicians."

    def has_permission(self, request, view) -> bool:
        return bool(request.user and request.user.is_authenticated and request.user.is_clinician)


class IsClinicAdmin(BasePermission):
    message = "This route is for clinic admins."

    def has_permission(self, request, view) -> bool:
        user = request.user
        return bool(user and user.is_authenticated and user.is_clinician and user.is_clinic_admin)


_ACTION_BY_METHOD = {
    "GET": AccessAction.VIEW,
    "HEAD": AccessAction.VIEW,
    "POST": AccessAction.CREATE,
    "PUT": AccessAction.UPDATE,
    "PATCH": AccessAction.UPDATE,
    "DELETE": AccessAction.DELETE,
}


class CareTeamPatientMixin:
    """Base of every clinician view under /api/v1/patients/{patient_id}/.

    `get_patient()` is the only way such a view reaches its patient: it applies the care-team
    rule (outsiders get 404) and writes the access-log row, so a new view cannot forget either.
    """

    permission_classes = [IsClinician]
    access_action: str | None = None  # None: derived from the HTTP method

    def get_patient(self) -> Patient:
        if getattr(self, "_patient", None) is None:
            action = self.access_action or _ACTION_BY_METHOD.get(self.request.method, AccessAction.VIEW)
            patient = care_team_patient_logged(self.request, patient_id=self.kwargs["patient_id"], action=action)
            if patient is None:
                raise Http404("No Patient matches the given query.")
            self._patient = patient
        return self._patient
