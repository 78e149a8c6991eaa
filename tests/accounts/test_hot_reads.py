"""The two hand-written statements every API request or care-team read runs (accounts.selectors):
they must give exactly what the ORM querysets they replace give, for every kind of user."""

import pytest
from django.test import RequestFactory
from django.utils import timezone

from accounts.models import AccessLog, SignIn
from accounts.selectors import live_sign_in, patients_visible_to
from accounts.services import care_team_patient_logged
from tests.factories import PatientFactory, UserFactory

pytestmark = pytest.mark.django_db


def _fields(instance) -> dict:
    return {name: value for name, value in vars(instance).items() if name != "_state"}


def _orm_sign_in(sign_in_id):
    return SignIn.objects.select_related("user", "user__clinic", "user__patient").get(
        id=sign_in_id, revoked_at__isnull=True, user__is_active=True
    )


def _cast_users(cast):
    return [
        cast.patient.user,
        cast.other_patient.user,
        cast.clinician,
        cast.outsider,
        cast.admin,
        cast.foreign_clinician,
        UserFactory(clinic=None, is_staff=True, email="staff@example.org"),  # no clinic: LEFT JOIN
    ]


def test_live_sign_in_loads_what_select_related_loads_for_every_kind_of_user(cast):
    for user in _cast_users(cast):
        sign_in = SignIn.objects.create(user=user, ip="203.0.113.9", user_agent="Phone/2.1")
        expected, loaded = _orm_sign_in(sign_in.id), live_sign_in(sign_in.id)
        assert _fields(loaded) == _fields(expected)
        assert _fields(loaded.user) == _fields(expected.user)
        assert (loaded.user.clinic and _fields(loaded.user.clinic)) == (
            expected.user.clinic and _fields(expected.user.clinic)
        )
        if user.is_patient:
            assert _fields(loaded.user.patient) == _fields(expected.user.patient)
            assert loaded.user.patient.clinic is loaded.user.clinic  # thresholds without a query
        else:
            assert not hasattr(loaded.user, "patient")


def test_live_sign_in_answers_without_further_queries(cast, django_assert_num_queries):
    sign_in = SignIn.objects.create(user=cast.patient.user)
    with django_assert_num_queries(1):
        user = live_sign_in(sign_in.id).user
        assert (user.clinic.name, user.patient.display_name, user.patient.clinic.name) == (
            cast.patient.clinic.name,
            "Pat",
            cast.patient.clinic.name,
        )


def test_a_revoked_sign_in_or_an_inactive_user_is_no_live_sign_in(cast):
    revoked = SignIn.objects.create(user=cast.clinician, revoked_at=timezone.now())
    assert live_sign_in(revoked.id) is None
    live = SignIn.objects.create(user=cast.outsider)
    cast.outsider.is_active = False
    cast.outsider.save(update_fields=["is_active"])
    assert live_sign_in(live.id) is None
    assert live_sign_in(SignIn().id) is None  # an id that names nothing


def test_the_care_team_statement_agrees_with_patients_visible_to_on_every_pair(cast):
    patients = [cast.patient, cast.other_patient, PatientFactory(clinic=cast.foreign_clinician.clinic)]
    request = RequestFactory().get("/api/v1/patients/x/", HTTP_USER_AGENT="Dashboard/1.0")
    for clinician in (cast.clinician, cast.outsider, cast.admin, cast.foreign_clinician, cast.patient.user):
        request.user = clinician
        for patient in patients:
            rows_before = AccessLog.objects.count()
            visible = patients_visible_to(clinician).filter(pk=patient.pk).exists()
            found = care_team_patient_logged(request, patient_id=patient.pk, action="view")
            assert (found is not None) == visible, (clinician.email, patient.display_name)
            assert AccessLog.objects.count() == rows_before + visible  # a row exactly when visible
            if visible:
                assert _fields(found) == _fields(patient.__class__.objects.get(pk=patient.pk))
                row = AccessLog.objects.latest("id")
                assert (row.actor_id, row.patient_id, row.action, row.user_agent) == (
                    clinician.pk,
                    patient.pk,
                    "view",
                    "Dashboard/1.0",
                )
    assert AccessLog.objects.count() == 2  # the clinician's patient and the outsider's own
