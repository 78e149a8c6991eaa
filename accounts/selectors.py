"""Reads for accounts. `patients_visible_to` is the one access rule for clinical data."""

from django.db.models import QuerySet

from accounts.models import AccessLog, Patient, User


def patients_visible_to(user: User) -> QuerySet[Patient]:
    """Patients whose clinical data this user may see: those on whose care team they are.

    A clinic admin is no exception (SPEC §1): admins manage care teams, they do not read journals.
    Feeds list filtering and detail lookups alike, so the two can never disagree.
    """
    if not getattr(user, "is_clinician", False):
        return Patient.objects.none()
    return Patient.objects.filter(clinic_id=user.clinic_id, care_team_memberships__clinician=user)


def patients_managed_by(user: User) -> QuerySet[Patient]:
    """Patients whose care team this user may manage: every patient of their clinic, for an admin."""
    if not (getattr(user, "is_clinician", False) and user.is_clinic_admin):
        return Patient.objects.none()
    return Patient.objects.filter(clinic_id=user.clinic_id)


def patient_of(user: User) -> Patient | None:
    """The patient record of a signed-in patient (loaded with the user by authentication)."""
    if not user.is_authenticated or not user.is_patient:
        return None
    return getattr(user, "patient", None)


def clinicians_of_clinic(clinic_id) -> QuerySet[User]:
    return User.objects.filter(clinic_id=clinic_id, role="clinician", is_active=True)


def access_log_for_patient(patient: Patient) -> QuerySet[AccessLog]:
    return AccessLog.objects.filter(patient=patient).select_related("actor").order_by("-at", "-id")


def access_log_for_clinic(
    *, admin: User, patient=None, actor=None, from_date=None, to_date=None
) -> QuerySet[AccessLog]:
    queryset = AccessLog.objects.filter(patient__clinic_id=admin.clinic_id).select_related("actor", "patient")
    if patient:
        queryset = queryset.filter(patient_id=patient)
    if actor:
        queryset = queryset.filter(actor_id=actor)
    if from_date:
        queryset = queryset.filter(at__date__gte=from_date)
    if to_date:
        queryset = queryset.filter(at__date__lte=to_date)
    return queryset
