"""Therapy sessions API (SPEC §6): the care team keeps them, the patient reads their own."""

from django.shortcuts import get_object_or_404
from django.urls import path
from drf_spectacular.utils import extend_schema
from rest_framework import generics, status
from rest_framework.response import Response
from rest_framework.views import APIView

from accounts.permissions import CareTeamPatientMixin, IsPatient
from accounts.selectors import patient_of
from backend.api.pagination import cursor_pagination
from journal.models import TherapySession
from journal.selectors.sessions import sessions_of
from journal.serializers.sessions import PatientSessionSerializer, SessionSerializer
from journal.services.sessions import session_create, session_delete, session_update

_SessionPagination = cursor_pagination("starts_at", "id")
_KETAMINE_RULE = (
    "`route` and `dose_mg` belong to ketamine sessions only (400, field code `only_for_ketamine`): "
    "turning a ketamine session into another kind must set both to null in the same request. "
    "`local_date` is the patient's journal day of `starts_at`, computed by the server."
)


def _valid(data, *, partial: bool = False) -> dict:
    serializer = SessionSerializer(data=data, partial=partial)
    serializer.is_valid(raise_exception=True)
    return serializer.validated_data


class PatientSessionListView(CareTeamPatientMixin, generics.ListAPIView):
    serializer_class = SessionSerializer
    pagination_class = _SessionPagination

    def get_queryset(self):
        return sessions_of(self.get_patient())

    @extend_schema(request=SessionSerializer, responses={201: SessionSerializer}, description=_KETAMINE_RULE)
    def post(self, request, patient_id):
        patient = self.get_patient()  # before the body: an outsider learns nothing from a 400
        session = session_create(patient=patient, created_by=request.user, data=_valid(request.data))
        return Response(SessionSerializer(session).data, status=status.HTTP_201_CREATED)


class PatientSessionDetailView(CareTeamPatientMixin, APIView):
    def _session(self, session_id) -> TherapySession:
        return get_object_or_404(sessions_of(self.get_patient()), pk=session_id)

    @extend_schema(responses={200: SessionSerializer})
    def get(self, request, patient_id, session_id):
        return Response(SessionSerializer(self._session(session_id)).data)

    @extend_schema(request=SessionSerializer, responses={200: SessionSerializer}, description=_KETAMINE_RULE)
    def patch(self, request, patient_id, session_id):
        session = self._session(session_id)
        session = session_update(session=session, data=_valid(request.data, partial=True))
        return Response(SessionSerializer(session).data)

    @extend_schema(responses={204: None})
    def delete(self, request, patient_id, session_id):
        session_delete(session=self._session(session_id))
        return Response(status=status.HTTP_204_NO_CONTENT)


class OwnSessionListView(generics.ListAPIView):
    """The signed-in patient's sessions, without the care team's notes."""

    permission_classes = [IsPatient]
    serializer_class = PatientSessionSerializer
    pagination_class = _SessionPagination

    def get_queryset(self):
        return sessions_of(patient_of(self.request.user), with_notes=False)


urlpatterns = [
    path("patients/<uuid:patient_id>/sessions/", PatientSessionListView.as_view(), name="patient-sessions"),
    path(
        "patients/<uuid:patient_id>/sessions/<uuid:session_id>/",
        PatientSessionDetailView.as_view(),
        name="patient-session-detail",
    ),
    path("sessions/", OwnSessionListView.as_view(), name="own-sessions"),
]
