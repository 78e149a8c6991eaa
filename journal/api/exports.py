"""The patient's own export (SPEC §10, first bullet): everything that is theirs, streamed."""

from django.http import StreamingHttpResponse
from django.urls import path
from django.utils import timezone
from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import OpenApiParameter, OpenApiResponse, extend_schema
from rest_framework.exceptions import ValidationError
from rest_framework.renderers import JSONRenderer
from rest_framework.views import APIView

from accounts.permissions import IsPatient
from journal.exports import REDISCLOSURE_NOTICE, stream_csv, stream_json
from journal.selectors.exports import EXPORT_CSV_COLUMNS, own_export_rows, own_export_sections


class StreamingExportView(APIView):
    """`?format=` names the file format here, not a DRF renderer, so negotiation is bypassed."""

    formats: tuple[str, ...] = ()

    def perform_content_negotiation(self, request, force=False):
        return JSONRenderer(), JSONRenderer.media_type

    def export_format(self, request) -> str:
        chosen = request.query_params.get("format", self.formats[0])
        if chosen not in self.formats:
            raise ValidationError({"format": [f"Choose one of: {', '.join(self.formats)}."]}, code="invalid_choice")
        return chosen


def streaming_response(content, *, content_type: str, filename: str) -> StreamingHttpResponse:
    response = StreamingHttpResponse(content, content_type=content_type)
    response["Content-Disposition"] = f'attachment; filename="{filename}"'
    response["Cache-Control"] = "no-store"
    return response


class MyExportView(StreamingExportView):
    permission_classes = [IsPatient]
    formats = ("json", "csv")

    @extend_schema(
        parameters=[OpenApiParameter("format", str, enum=["json", "csv"], description="Default json.")],
        responses={
            (200, "application/json"): OpenApiResponse(OpenApiTypes.OBJECT, description="meta, profile, entries, …"),
            (200, "text/csv"): OpenApiResponse(OpenApiTypes.STR, description="Notice line, header, one row a record."),
        },
    )
    def get(self, request):
        patient = request.user.patient
        stamp = timezone.now().strftime("%Y%m%d")
        if self.export_format(request) == "csv":
            return streaming_response(
                stream_csv(EXPORT_CSV_COLUMNS, own_export_rows(patient)),
                content_type="text/csv; charset=utf-8",
                filename=f"interlude-journal-{stamp}.csv",
            )
        meta = {"notice": REDISCLOSURE_NOTICE, "generated_at": timezone.now(), "patient_id": str(patient.pk)}
        return streaming_response(
            stream_json(meta, own_export_sections(patient)),
            content_type="application/json",
            filename=f"interlude-journal-{stamp}.json",
        )


urlpatterns = [path("me/export/", MyExportView.as_view(), name="me-export")]
