"""GET /api/v1/patients/: the triage list (SPEC §8). POST on the same path is accounts'."""

from django.urls import path
from drf_spectacular.utils import extend_schema
from rest_framework.response import Response

from accounts.api import PatientCreateView
from accounts.models import AccessAction
from accounts.services import access_log_record
from dashboard.selectors import triage_rows
from dashboard.serializers import TriageListSerializer, TriageParamsSerializer


class PatientListCreateView(PatientCreateView):
    @extend_schema(
        operation_id="patients_list", parameters=[TriageParamsSerializer], responses={200: TriageListSerializer}
    )
    def get(self, request):
        params = TriageParamsSerializer(data=request.query_params)
        params.is_valid(raise_exception=True)
        rows = triage_rows(
            request.user,
            query=params.validated_data.get("q", "").strip(),
            ordering=params.validated_data["ordering"],
            limit=params.validated_data["limit"],
        )
        access_log_record(request, patients=[row["id"] for row in rows], action=AccessAction.LIST)
        return Response({"count": len(rows), "results": rows})


urlpatterns = [path("patients/", PatientListCreateView.as_view(), name="patients")]
