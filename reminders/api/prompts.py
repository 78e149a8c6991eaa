"""Prompts API (SPEC §7): the patient's in-app inbox and receipts, and compliance for the patient
and their care team. Thin views over reminders' selectors and services."""

from django.urls import path
from django.utils import timezone
from drf_spectacular.utils import OpenApiParameter, extend_schema
from rest_framework import generics
from rest_framework.response import Response
from rest_framework.views import APIView

from accounts.models import Patient
from accounts.permissions import CareTeamPatientMixin, IsPatient
from backend.api.pagination import cursor_pagination
from reminders.models import Prompt
from reminders.selectors.compliance import compliance_of
from reminders.selectors.prompts import INBOX_FILTERS, inbox_of
from reminders.serializers.prompts import (
    ComplianceRangeSerializer,
    ComplianceSerializer,
    InboxFilterSerializer,
    PromptSerializer,
)
from reminders.services.prompts import prompt_receipt

_STATUS_PARAMETER = OpenApiParameter(
    "status",
    str,
    enum=list(INBOX_FILTERS),
    description=(
        "`open`: sent or received, not answered and not yet expired (the inbox). Any other value is a literal "
        "status. Absent: every prompt."
    ),
)
_RANGE_PARAMETERS = [
    OpenApiParameter("from", str, description="First journal day (YYYY-MM-DD); default `to` − 29 days."),
    OpenApiParameter(
        "to", str, description="Last journal day (YYYY-MM-DD); default today in the patient's zone. At most 731 days."
    ),
]
_COMPLIANCE_DESCRIPTION = (
    "The CREMAS funnel over the prompts due (by journal day) from `from` to `to`, both inclusive, with "
    "completion_rate = completed / sent and the median answer latency; `by_kind` repeats it for every prompt kind."
)


class PromptListView(generics.ListAPIView):
    """The signed-in patient's prompts, newest first: the inbox, so a lost push still reaches them."""

    permission_classes = [IsPatient]
    serializer_class = PromptSerializer
    pagination_class = cursor_pagination("-scheduled_for", "-id")

    @extend_schema(operation_id="prompts_list", parameters=[_STATUS_PARAMETER])
    def get(self, request, *args, **kwargs):
        return super().get(request, *args, **kwargs)

    def get_queryset(self):
        if getattr(self, "swagger_fake_view", False):
            return Prompt.objects.none()
        filters = InboxFilterSerializer(data=self.request.query_params)
        filters.is_valid(raise_exception=True)
        return inbox_of(self.request.user.patient, status=filters.validated_data.get("status"), now=timezone.now())


class PromptReceiptView(APIView):
    permission_classes = [IsPatient]

    @extend_schema(
        operation_id="prompts_receipt",
        request=None,
        responses={200: PromptSerializer},
        description=(
            "The phone showed the notification: `sent` becomes `received`. Idempotent; a completed or expired "
            "prompt keeps its status. Another patient's prompt is a 404."
        ),
    )
    def post(self, request, prompt_id):
        prompt = prompt_receipt(patient=request.user.patient, prompt_id=prompt_id, now=timezone.now())
        return Response(PromptSerializer(prompt).data)


def _compliance(patient: Patient, query_params) -> dict:
    today = patient.journal_day(timezone.now())[0]
    dates = ComplianceRangeSerializer(data=query_params, context={"today": today})
    dates.is_valid(raise_exception=True)
    return compliance_of(patient, from_date=dates.validated_data["from"], to_date=dates.validated_data["to"])


class MyComplianceView(APIView):
    permission_classes = [IsPatient]

    @extend_schema(
        operation_id="me_compliance",
        parameters=_RANGE_PARAMETERS,
        responses={200: ComplianceSerializer},
        description=_COMPLIANCE_DESCRIPTION,
    )
    def get(self, request):
        return Response(ComplianceSerializer(_compliance(request.user.patient, request.query_params)).data)


class PatientComplianceView(CareTeamPatientMixin, APIView):
    @extend_schema(
        operation_id="patients_compliance",
        parameters=_RANGE_PARAMETERS,
        responses={200: ComplianceSerializer},
        description=_COMPLIANCE_DESCRIPTION + " Care team only; every read is access-logged.",
    )
    def get(self, request, patient_id):
        return Response(ComplianceSerializer(_compliance(self.get_patient(), request.query_params)).data)


urlpatterns = [
    path("prompts/", PromptListView.as_view(), name="prompts"),
    path("prompts/<uuid:prompt_id>/receipt/", PromptReceiptView.as_view(), name="prompt-receipt"),
    path("me/compliance/", MyComplianceView.as_view(), name="me-compliance"),
    path("patients/<uuid:patient_id>/compliance/", PatientComplianceView.as_view(), name="patient-compliance"),
]
