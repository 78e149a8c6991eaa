"""Reminder schedules API (SPEC §7): the patient keeps their own, the care team the patient's.
Thin views: the service checks the schedule and moves its prompts."""

from django.shortcuts import get_object_or_404
from django.urls import path
from drf_spectacular.utils import extend_schema
from rest_framework import generics, status
from rest_framework.exceptions import NotFound
from rest_framework.response import Response
from rest_framework.views import APIView

from accounts.models import Patient
from accounts.permissions import CareTeamPatientMixin, IsPatient
from accounts.selectors import patient_of
from backend.api.pagination import cursor_pagination
from reminders.models import Schedule
from reminders.selectors.schedules import schedules_of
from reminders.serializers.schedules import ScheduleSerializer, ScheduleWriteSerializer
from reminders.services.schedules import schedule_create, schedule_delete, schedule_update

_SchedulePagination = cursor_pagination("created_at", "id")
_RULES = (
    "`instrument` belongs to `assessment` schedules (required there), `message` to `custom` ones (required "
    "there): a PATCH changing `kind` must clear the one that no longer applies (field codes `only_for_assessment`, "
    "`only_for_custom`). Exactly one of `time` and `window`: switching sets the other to null in the same "
    "request (`time_and_window`). Saving re-plans the schedule's future prompts."
)


def _valid(data, *, partial: bool = False) -> dict:
    serializer = ScheduleWriteSerializer(data=data, partial=partial)
    serializer.is_valid(raise_exception=True)
    return serializer.validated_data


class _ScheduleListBase(generics.ListAPIView):
    serializer_class = ScheduleSerializer
    pagination_class = _SchedulePagination

    def schedule_patient(self) -> Patient:
        """Whose schedules: the signed-in patient's own, or (care-team views) the URL's patient."""
        raise TypeError(f"{type(self).__name__} must define schedule_patient()")

    def get_queryset(self):
        return schedules_of(self.schedule_patient())

    @extend_schema(request=ScheduleWriteSerializer, responses={201: ScheduleSerializer}, description=_RULES)
    def post(self, request, **kwargs):
        patient = self.schedule_patient()  # before the body: an outsider learns nothing from a 400
        schedule = schedule_create(patient=patient, created_by=request.user, data=_valid(request.data))
        return Response(ScheduleSerializer(schedule).data, status=status.HTTP_201_CREATED)


class _ScheduleDetailBase(APIView):
    def schedule_patient(self) -> Patient:
        """Whose schedules: the signed-in patient's own, or (care-team views) the URL's patient."""
        raise TypeError(f"{type(self).__name__} must define schedule_patient()")

    def _schedule(self, schedule_id) -> Schedule:
        return get_object_or_404(schedules_of(self.schedule_patient()), pk=schedule_id)

    @extend_schema(responses={200: ScheduleSerializer})
    def get(self, request, schedule_id, **kwargs):
        return Response(ScheduleSerializer(self._schedule(schedule_id)).data)

    @extend_schema(request=ScheduleWriteSerializer, responses={200: ScheduleSerializer}, description=_RULES)
    def patch(self, request, schedule_id, **kwargs):
        schedule = self._schedule(schedule_id)
        schedule = schedule_update(schedule=schedule, data=_valid(request.data, partial=True))
        return Response(ScheduleSerializer(schedule).data)

    @extend_schema(
        responses={204: None},
        description=(
            "Deletes the schedule: it is no longer listed or found, and its future prompts are cancelled. "
            "Prompts already sent stay in the inbox and in compliance."
        ),
    )
    def delete(self, request, schedule_id, **kwargs):
        schedule_delete(schedule=self._schedule(schedule_id))
        return Response(status=status.HTTP_204_NO_CONTENT)


class _OwnPatient:
    """The signed-in patient's own record; another patient's schedule is simply not found."""

    permission_classes = [IsPatient]

    def schedule_patient(self) -> Patient:
        patient = patient_of(self.request.user)
        if patient is None:
            raise NotFound()
        return patient


class _CareTeamPatient(CareTeamPatientMixin):
    def schedule_patient(self) -> Patient:
        return self.get_patient()


class OwnScheduleListView(_OwnPatient, _ScheduleListBase):
    pass


class OwnScheduleDetailView(_OwnPatient, _ScheduleDetailBase):
    pass


class PatientScheduleListView(_CareTeamPatient, _ScheduleListBase):
    pass


class PatientScheduleDetailView(_CareTeamPatient, _ScheduleDetailBase):
    pass


urlpatterns = [
    path("reminders/", OwnScheduleListView.as_view(), name="own-reminders"),
    path("reminders/<uuid:schedule_id>/", OwnScheduleDetailView.as_view(), name="own-reminder-detail"),
    path("patients/<uuid:patient_id>/reminders/", PatientScheduleListView.as_view(), name="patient-reminders"),
    path(
        "patients/<uuid:patient_id>/reminders/<uuid:schedule_id>/",
        PatientScheduleDetailView.as_view(),
        name="patient-reminder-detail",
    ),
]
