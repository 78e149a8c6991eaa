"""Reads for accounts. `patients_visible_to` is the one access rule for clinical data."""

from functools import cache

from django.db import connection
from django.db.models import QuerySet

from accounts.models import AccessLog, CareTeamMembership, Clinic, Patient, SignIn, User
from backend.db import RowLoader, column_value

# Rows of hand-written SELECTs (live_sign_in, care_team_patient_sql), converted as the ORM would.
_SIGN_IN, _USER, _CLINIC, PATIENT_ROW = (RowLoader(model) for model in (SignIn, User, Clinic, Patient))


def patients_visible_to(user: User) -> QuerySet[Patient]:
    """Patients whose clinical data this user may see: those on whose care team they are.

    A clinic admin is no exception (SPEC §1): admins manage care teams, they do not read journals.
    Feeds list filtering and detail lookups alike, so the two can never disagree.
    """
    if not getattr(user, "is_clinician", False):
        return Patient.objects.none()
    return Patient.objects.filter(clinic_id=user.clinic_id, care_team_memberships__clinician=user)


@cache
def care_team_patient_sql() -> str:
    """`patients_visible_to(clinician).filter(pk=…)` as hand-written SQL, for the one statement that
    both checks the care-team rule and writes the access-log row (accounts.services.
    care_team_patient_logged). The same rule as above, kept beside it; a test holds the two equal.
    Its parameters: the patient's id, the clinician's clinic id, the clinician's id."""
    quote = connection.ops.quote_name
    membership = quote(CareTeamMembership._meta.db_table)
    return (
        f"SELECT {PATIENT_ROW.columns('p')} FROM {quote(Patient._meta.db_table)} p "  # noqa: S608 - names from the models
        "WHERE p.id = %s AND p.clinic_id = %s AND EXISTS ("
        f"SELECT 1 FROM {membership} m WHERE m.patient_id = p.id AND m.clinician_id = %s)"
    )


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
    return queryset.order_by("-at", "-id")  # newest first, as both readers page it


@cache
def _live_sign_in_sql() -> str:
    quote = connection.ops.quote_name
    table = {model: quote(model._meta.db_table) for model in (SignIn, User, Clinic, Patient)}
    return (
        f"SELECT {_SIGN_IN.columns('s')}, {_USER.columns('u')}, {_CLINIC.columns('c')}, {PATIENT_ROW.columns('p')} "  # noqa: S608 - names from the models
        f"FROM {table[SignIn]} s JOIN {table[User]} u ON u.id = s.user_id "
        f"LEFT JOIN {table[Clinic]} c ON c.id = u.clinic_id LEFT JOIN {table[Patient]} p ON p.user_id = u.id "
        "WHERE s.id = %s AND s.revoked_at IS NULL AND u.is_active"
    )


def live_sign_in(sign_in_id) -> SignIn | None:
    """A sign-in that has not been revoked, of an active user, with the user, their clinic and (for
    patients) their patient row loaded: what every API request's authentication needs, in one query.

    Hand-written once rather than `select_related(...).get()`, whose building and compiling cost
    more than PostgreSQL takes to answer (measured in bench/insight.py's floor); RowLoader converts
    the columns exactly as the ORM would."""
    with connection.cursor() as cursor:
        cursor.execute(_live_sign_in_sql(), [column_value(SignIn, "id", sign_in_id)])
        row = cursor.fetchone()
    if row is None:
        return None
    sign_in, user, clinic, patient = RowLoader.load_joined(row, _SIGN_IN, _USER, _CLINIC, PATIENT_ROW)
    sign_in.user = user
    if clinic is not None:
        user.clinic = clinic
    # Cached like select_related caches a missing reverse one-to-one: `user.patient` raises, no query.
    User.patient.related.set_cached_value(user, patient)
    if patient is not None:
        patient.user = user
        if patient.clinic_id == user.clinic_id and clinic is not None:
            patient.clinic = clinic  # the alert rules read the clinic's thresholds
    return sign_in
