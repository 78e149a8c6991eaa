"""Questionnaires API (SPEC §6): the instrument catalogue, a patient's assessments, and the care
team's read of them. Thin views over the catalogue, services and selectors."""

from django.urls import path
from django.utils import timezone
from drf_spectacular.utils import OpenApiParameter, extend_schema
from rest_framework import generics, status
from rest_framework.permissions import IsAuthenticated
from rest_framework.response import Response
from rest_framework.views import APIView

from accounts.permissions import CareTeamPatientMixin, IsPatient
from backend.api.pagination import cursor_pagination
from journal.instruments import instruments
from journal.models import Assessment, Instrument
from journal.selectors.assessments import assessments_of
from journal.serializers.assessments import (
    AssessmentCreatedSerializer,
    AssessmentCreateSerializer,
    AssessmentFilterSerializer,
    AssessmentSerializer,
    InstrumentListSerializer,
    InstrumentSerializer,
)
from journal.services.assessments import assessment_create

_INSTRUMENT_PARAMETER = OpenApiParameter("instrument", str, enum=Instrument.values, description="Only this instrument.")
AssessmentPagination = cursor_pagination("-completed_at", "-id")


def _instrument_filter(request) -> str | None:
    serializer = AssessmentFilterSerializer(data=request.query_params)
    serializer.is_valid(raise_exception=True)
    return serializer.validated_data.get("instrument") or None


class InstrumentListView(APIView):
    permission_classes = [IsAuthenticated]

    @extend_schema(
        operation_id="instruments_list",
        responses={200: InstrumentListSerializer},
        description="Every questionnaire with its items, answer options and scoring. Always one page.",
    )
    def get(self, request):
        return Response(
            {"next": None, "previous": None, "results": InstrumentSerializer(instruments(), many=True).data}
        )


class AssessmentListCreateView(generics.ListAPIView):
    """The signed-in patient's own assessments."""

    permission_classes = [IsPatient]
    serializer_class = AssessmentSerializer
    pagination_class = AssessmentPagination

    @property
    def extra_error_statuses(self) -> tuple[int, ...]:
        return (409,) if self.request.method == "POST" else ()

    @extend_schema(parameters=[_INSTRUMENT_PARAMETER])
    def get(self, request, *args, **kwargs):
        return super().get(request, *args, **kwargs)

    def get_queryset(self):
        if getattr(self, "swagger_fake_view", False):
            return Assessment.objects.none()
        return assessments_of(self.request.user.patient, instrument=_instrument_filter(self.request))

    @extend_schema(
        request=AssessmentCreateSerializer,
        responses={201: AssessmentCreatedSerializer, 200: AssessmentCreatedSerializer},
        description=(
            "201 with score and severity; 200 with the stored assessment when the same id arrives again with "
            "the same content (a safe retry); 409 when the id is taken by other content. `support` appears "
            "only when the assessment fired a high or urgent alert."
        ),
    )
    def post(self, request, *args, **kwargs):
        patient = request.user.patient
        now = timezone.now()
        serializer = AssessmentCreateSerializer(data=request.data, context={"patient": patient, "now": now})
        serializer.is_valid(raise_exception=True)
        assessment, created, support = assessment_create(
            patient=patient, data=serializer.validated_data, request_time=now
        )
        body = AssessmentSerializer(assessment).data
        if support:
            body["support"] = support
        return Response(body, status=status.HTTP_201_CREATED if created else status.HTTP_200_OK)


class PatientAssessmentListView(CareTeamPatientMixin, generics.ListAPIView):
    """A care-team clinician reads a patient's assessments (read-only; access-logged)."""

    serializer_class = AssessmentSerializer
    pagination_class = AssessmentPagination

    @extend_schema(parameters=[_INSTRUMENT_PARAMETER])
    def get(self, request, *args, **kwargs):
        return super().get(request, *args, **kwargs)

    def get_queryset(self):
        if getattr(self, "swagger_fake_view", False):
            return Assessment.objects.none()
        instrument = _instrument_filter(self.request)  # a bad filter is a 400 before anything is read
        return assessments_of(self.get_patient(), instrument=instrument)


urlpatterns = [
    path("instruments/", InstrumentListView.as_view(), name="instrument-list"),
    path("assessments/", AssessmentListCreateView.as_view(), name="assessment-list"),
    path(
        "patients/<uuid:patient_id>/assessments/",
        PatientAssessmentListView.as_view(),
        name="patient-assessment-list",
    ),
]
