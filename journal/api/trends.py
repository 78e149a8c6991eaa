"""Trends API (SPEC §8): the care team's view of a patient, and the patient's own."""

from django.urls import path
from drf_spectacular.utils import OpenApiParameter, extend_schema
from rest_framework.response import Response
from rest_framework.views import APIView

from accounts.permissions import CareTeamPatientMixin, IsPatient
from journal.selectors.trends import journal_today, session_trends_of, trends_of
from journal.serializers.trends import (
    SessionTrendParamsSerializer,
    SessionTrendsSerializer,
    TrendRangeSerializer,
    TrendsSerializer,
)

_RANGE_PARAMETERS = [
    OpenApiParameter("from", str, description="First journal day (YYYY-MM-DD); default 29 days before `to`."),
    OpenApiParameter("to", str, description="Last journal day; default today in the patient's zone. At most 731 days."),
]


def _trends(request, patient) -> Response:
    params = TrendRangeSerializer(data=request.query_params)
    params.is_valid(raise_exception=True)
    first, last = params.resolve(journal_today(patient))
    return Response(trends_of(patient, first=first, last=last))


class PatientTrendsView(CareTeamPatientMixin, APIView):
    @extend_schema(parameters=_RANGE_PARAMETERS, responses={200: TrendsSerializer})
    def get(self, request, patient_id):
        return _trends(request, self.get_patient())


class MyTrendsView(APIView):
    permission_classes = [IsPatient]

    @extend_schema(parameters=_RANGE_PARAMETERS, responses={200: TrendsSerializer})
    def get(self, request):
        return _trends(request, request.user.patient)


class PatientSessionTrendsView(CareTeamPatientMixin, APIView):
    @extend_schema(parameters=[SessionTrendParamsSerializer], responses={200: SessionTrendsSerializer})
    def get(self, request, patient_id):
        params = SessionTrendParamsSerializer(data=request.query_params)
        params.is_valid(raise_exception=True)
        kind = params.validated_data["kind"]
        trends = session_trends_of(
            self.get_patient(),
            before=params.validated_data["before"],
            after=params.validated_data["after"],
            kind=None if kind == "all" else kind,
        )
        return Response(trends)


urlpatterns = [
    path("patients/<uuid:patient_id>/trends/", PatientTrendsView.as_view(), name="patient-trends"),
    path(
        "patients/<uuid:patient_id>/trends/sessions/",
        PatientSessionTrendsView.as_view(),
        name="patient-trends-sessions",
    ),
    path("me/trends/", MyTrendsView.as_view(), name="me-trends"),
]
